-- GCRA (generic cell rate algorithm) in one round trip.
-- KEYS[1]: the bucket. It holds the theoretical arrival time (TAT) in microseconds and
-- expires when the bucket is full again, so idle keys vanish.
-- ARGV[1]: now in microseconds, from the application's clock (Redis TIME would ignore the
--          injected clock, and instances must agree on one time line with their peers).
-- ARGV[2]: emission interval T in microseconds (period / limit).
-- ARGV[3]: burst (the limit).
-- Returns {allowed 0/1, remaining, retry_after_us, reset_after_us}.
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tau = interval * (burst - 1)

local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end

local allow_at = tat - tau
if now < allow_at then
  -- Refused: nothing is written, so refusals do not push the next allowed time back.
  return {0, 0, allow_at - now, tat - now}
end

local new_tat = tat + interval
local reset_after = new_tat - now
-- %d: tostring() would print 1.7e+15 and lose microseconds.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(reset_after / 1000))
return {1, math.floor((tau + interval - reset_after) / interval), 0, reset_after}
