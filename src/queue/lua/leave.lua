-- leave. ARGV: user. Returns 1 if a place or a slot was given up.
local user = ARGV[1]
local gone = redis.call('ZREM', VIP, user) + redis.call('ZREM', NORMAL, user)
redis.call('ZREM', HB, user)
gone = gone + redis.call('ZREM', ADM, user)
redis.call('HDEL', ADM_LANE, user)
if gone > 0 then
  redis.call('HINCRBY', STATE, 'left_total', 1)
  return 1
end
return 0
