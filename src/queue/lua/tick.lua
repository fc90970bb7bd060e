-- tick: one admission step (the arithmetic of src/queue/pace.rs, operation for operation).
-- ARGV: now, opens, paused (1/0), admit per second, capacity, VIP share, slot TTL,
-- heartbeat timeout, sweep limit.
-- Returns {expired, abandoned, admitted (user, lane, ...), VIP head score or '', VIP waiting,
-- normal head score or '', normal waiting, active, admitted total}.
local now, opens, paused = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local rate, capacity, share = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, timeout, limit = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local expired = redis.call('ZRANGEBYSCORE', ADM, '-inf', ARGV[1], 'LIMIT', 0, limit)
chunked('ZREM', ADM, expired)
chunked('HDEL', ADM_LANE, expired)

local silent = redis.call('ZRANGEBYSCORE', HB, '-inf', now - timeout, 'LIMIT', 0, limit)
chunked('ZREM', VIP, silent)
chunked('ZREM', NORMAL, silent)
chunked('ZREM', HB, silent)
if #silent > 0 then redis.call('HINCRBY', STATE, 'abandoned_total', #silent) end

local state = redis.call('HMGET', STATE, 'credit', 'last_tick')
local credit = 0
if not paused and now >= opens then
  local from = opens
  if state[2] then from = math.max(tonumber(state[2]), opens) end
  local elapsed = math.max(now - from, 0)
  credit = math.min(tonumber(state[1] or '0') + rate * elapsed / 1000, rate)
end

local active = redis.call('ZCOUNT', ADM, '(' .. ARGV[1], '+inf')
local n = math.min(math.max(capacity - active, 0), math.floor(math.max(credit, 0)))
local vip_waiting, normal_waiting = redis.call('ZCARD', VIP), redis.call('ZCARD', NORMAL)
share = math.min(math.max(share, 0), 1)
local vip = math.min(math.min(math.ceil(n * share), n), vip_waiting)
local normal = math.min(n - vip, normal_waiting)
vip = math.min(n - normal, vip_waiting)

local admitted, slots, lanes = {}, {}, {}
local expiry = string.format('%.0f', now + ttl)
local function admit(line, tag, count)
  if count <= 0 then return end
  local popped = redis.call('ZPOPMIN', line, count)
  for i = 1, #popped, 2 do
    local user = popped[i]
    admitted[#admitted + 1] = user
    admitted[#admitted + 1] = tag
    slots[#slots + 1] = expiry
    slots[#slots + 1] = user
    lanes[#lanes + 1] = user
    lanes[#lanes + 1] = tag
  end
end
admit(VIP, 'v', vip)
admit(NORMAL, 'n', normal)
local count = #admitted / 2
if count > 0 then
  chunked('ZADD', ADM, slots)
  chunked('HSET', ADM_LANE, lanes)
  local users = {}
  for i = 1, #admitted, 2 do users[#users + 1] = admitted[i] end
  chunked('ZREM', HB, users)
end

redis.call('HSET', STATE, 'credit', string.format('%.17g', credit - count), 'last_tick', ARGV[1])
local total = redis.call('HINCRBY', STATE, 'admitted_total', count)

local function head(line)
  local first = redis.call('ZRANGE', line, 0, 0, 'WITHSCORES')
  return first[2] or ''
end
return {
  expired, silent, admitted,
  head(VIP), redis.call('ZCARD', VIP), head(NORMAL), redis.call('ZCARD', NORMAL),
  active + count, total,
}
