-- status. ARGV: user, now, opens, refresh heartbeats older than this many ms.
local user, now, opens, refresh = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local held = slot(user, now)
if type(held) == 'table' then return held end
if held == 'expired' then return {'', '', '', -1, 0} end

local place = waiting(user, now, opens, 0)
if not place then return {'', '', '', -1, 0} end
-- Most polls write nothing: the heartbeat moves only when it is getting old.
local seen = redis.call('ZSCORE', HB, user)
if not seen or now - tonumber(seen) > refresh then
  redis.call('ZADD', HB, now, user)
end
return place
