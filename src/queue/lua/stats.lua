-- stats. ARGV: now. Returns {VIP waiting, normal waiting, active, admitted, abandoned, left}.
local totals = redis.call('HMGET', STATE, 'admitted_total', 'abandoned_total', 'left_total')
return {
  redis.call('ZCARD', VIP),
  redis.call('ZCARD', NORMAL),
  redis.call('ZCOUNT', ADM, '(' .. ARGV[1], '+inf'),
  tonumber(totals[1] or '0'),
  tonumber(totals[2] or '0'),
  tonumber(totals[3] or '0'),
}
