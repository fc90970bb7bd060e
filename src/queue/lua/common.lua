-- Prepended to every waiting-room script. Key layout (all under one {ev:ID} hash tag):
-- KEYS[1] VIP line, KEYS[2] normal line (score: 52-bit draw, or 2^52 + sequence),
-- KEYS[3] heartbeats (score: last seen ms), KEYS[4] admitted slots (score: expiry ms),
-- KEYS[5] admitted user -> lane tag, KEYS[6] state hash (sequences, credit, last tick, totals).
-- Time and chance come in ARGV: scripts never call TIME or math.random.

local VIP, NORMAL, HB, ADM, ADM_LANE, STATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

-- Lua 5.1 cannot unpack more than a few thousand values: send long lists in slices.
local function chunked(cmd, key, list, step)
  step = step or 500
  for i = 1, #list, step do
    redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
  end
end

-- The user's lane tag, score (as Redis prints it, exact below 2^53) and line, if waiting.
local function find(user)
  local score = redis.call('ZSCORE', VIP, user)
  if score then return 'v', score, VIP end
  score = redis.call('ZSCORE', NORMAL, user)
  if score then return 'n', score, NORMAL end
  return nil
end

-- Admitted with a live slot: {'A', lane, expiry}; a slot that ran out: 'expired'; none: nil.
local function slot(user, now)
  local expiry = redis.call('ZSCORE', ADM, user)
  if not expiry then return nil end
  if tonumber(expiry) > now then
    return {'A', redis.call('HGET', ADM_LANE, user) or 'n', expiry, -1, 0}
  end
  return 'expired'
end

-- {'W', lane, score, 0-based rank or -1 before opening, new}.
local function waiting(user, now, opens, new)
  local lane, score, line = find(user)
  if not lane then return nil end
  local rank = -1
  if now >= opens then rank = redis.call('ZRANK', line, user) end
  return {'W', lane, score, rank, new}
end
