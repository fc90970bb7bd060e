-- release. ARGV: user. Returns 1 if the user held a slot.
redis.call('HDEL', ADM_LANE, ARGV[1])
return redis.call('ZREM', ADM, ARGV[1])
