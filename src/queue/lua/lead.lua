-- The ticker lease (its own key, no hash tag). ARGV: holder, now, ttl.
-- The expiry is kept in the value and judged by the caller's clock (the injected one), not by
-- Redis's; the key's own TTL only cleans up after everyone is gone.
local holder, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('HMGET', KEYS[1], 'holder', 'until')
if current[1] and current[1] ~= holder and tonumber(current[2]) > now then
  return 0
end
redis.call('HSET', KEYS[1], 'holder', holder, 'until', string.format('%.0f', now + ttl))
redis.call('PEXPIRE', KEYS[1], math.max(ttl, 0) + 60000)
return 1
