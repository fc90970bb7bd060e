-- join: KEYS[7] per-IP join counter.
-- ARGV: user, lane tag, now, 52-bit draw, opens, max joins per IP (-1: unlimited), counter TTL.
local user, lane, now, draw, opens = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local max_joins, counter_ttl = tonumber(ARGV[6]), ARGV[7]

local held = slot(user, now)
if type(held) == 'table' then return held end

local place = waiting(user, now, opens, 0)
if place then
  redis.call('ZADD', HB, now, user)
  return place
end

if max_joins >= 0 then
  local used = tonumber(redis.call('GET', KEYS[7]) or '0')
  if used >= max_joins then return {'LIMIT', '', '', -1, 0} end
  if redis.call('INCR', KEYS[7]) == 1 then redis.call('PEXPIRE', KEYS[7], counter_ttl) end
end

-- A slot that ran out is over: the user starts again at the back.
if held == 'expired' then
  redis.call('ZREM', ADM, user)
  redis.call('HDEL', ADM_LANE, user)
end

local line = NORMAL
if lane == 'v' then line = VIP end
local score = draw
if now >= opens then
  -- 2^52 + sequence stays an exact integer in a Lua double up to 2^53.
  local seq = redis.call('HINCRBY', STATE, 'seq_' .. lane, 1)
  score = string.format('%.0f', 4503599627370496 + seq)
end
redis.call('ZADD', line, score, user)
redis.call('ZADD', HB, now, user)
return waiting(user, now, opens, 1)
