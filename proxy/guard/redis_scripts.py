"""The Lua scripts of the Redis guard store: each one round trip, atomic on the Redis server.

Keys (under the prefix): `resv` (sorted set: reservation id -> expiry), `resv:info` (hash:
id -> "backend<TAB>usd"), `held` (hash: "total" / "b:NAME" -> USD in flight),
`spend:WHO:SECONDS` (list of "ts usd" oldest first: settled spend of one sliding window), `sums`
(hash: window list -> its running total), `windows` (set of window lists), `settled` (sorted
set: settlement id -> until when it is remembered) and `halt` (hash: reason, since, until). A
window is trimmed from its head when it is read, as the embedded store's windows are, so a
reservation costs O(1) amortised however many requests the day saw.

Ids are made by the gateways (unique per process), so a call whose reply was lost can be sent
again: a reservation already held is answered as held, and a settlement already counted is not
counted twice.
"""

from __future__ import annotations

# Functions every script shares (Lua, prepended to each script).
PRELUDE = r"""
local function window_sum(sums, key, start)
  local total = tonumber(redis.call('HGET', sums, key) or '0')
  local trimmed = false
  while true do
    local head = redis.call('LINDEX', key, 0)
    if not head then
      if total ~= 0 or trimmed then redis.call('HDEL', sums, key) end
      return 0
    end
    local sp = string.find(head, ' ', 1, true)
    if tonumber(string.sub(head, 1, sp - 1)) >= start then break end
    redis.call('LPOP', key)
    total = total - tonumber(string.sub(head, sp + 1))
    trimmed = true
  end
  if trimmed then redis.call('HSET', sums, key, string.format('%.17g', total)) end
  return total
end

local function unhold(held, entry)
  local tab = string.find(entry, '\t', 1, true)
  local usd = '-' .. string.sub(entry, tab + 1)
  redis.call('HINCRBYFLOAT', held, 'total', usd)
  redis.call('HINCRBYFLOAT', held, 'b:' .. string.sub(entry, 1, tab - 1), usd)
end

-- Reservations whose expiry has passed belong to requests that died with their gateway.
local function reclaim(resv, info, held, now)
  local dead = redis.call('ZRANGEBYSCORE', resv, '-inf', now, 'LIMIT', 0, 256)
  for _, id in ipairs(dead) do
    local entry = redis.call('HGET', info, id)
    if entry then
      unhold(held, entry)
      redis.call('HDEL', info, id)
    end
    redis.call('ZREM', resv, id)
  end
  if #dead > 0 and redis.call('ZCARD', resv) == 0 then redis.call('DEL', held) end
end

-- Settlements in ARGV[first .. last], 4 each: id, usd, ts, window lists ("held field<TAB>seconds"
-- a line each). A reservation already reclaimed still records its spend; an id already in
-- `settled` (a call sent again after its reply was lost) records nothing.
local function settle(k, prefix, now, keep, first, last)
  redis.call('ZREMRANGEBYSCORE', k.settled, '-inf', now)
  for i = first, last, 4 do
    local id, usd, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    if redis.call('ZREM', k.resv, id) == 1 then
      local entry = redis.call('HGET', k.info, id)
      if entry then
        unhold(k.held, entry)
        redis.call('HDEL', k.info, id)
      end
    end
    if tonumber(usd) > 0 and redis.call('ZADD', k.settled, 'NX', keep, id) == 1 then
      for field, seconds in string.gmatch(ARGV[i + 3], '([^\t\n]*)\t(%d+)') do
        local key = prefix .. field .. ':' .. seconds
        redis.call('RPUSH', key, ts .. ' ' .. usd)
        redis.call('HINCRBYFLOAT', k.sums, key, usd)
        -- A window nobody wrote to for longer than its width holds nothing that counts.
        redis.call('PEXPIRE', key, (tonumber(seconds) + 60) * 1000)
        redis.call('SADD', k.windows, key)
      end
    end
  end
  if redis.call('ZCARD', k.resv) == 0 then redis.call('DEL', k.held) end
end

local function current_halt(halt, now)
  local h = redis.call('HMGET', halt, 'reason', 'since', 'until')
  if not h[1] then return nil end
  if h[3] and h[3] ~= '' and now >= tonumber(h[3]) then
    redis.call('DEL', halt)
    return nil
  end
  return {h[1], h[2] or '0', h[3] or ''}
end
"""

# The settlements waiting, then the reservations of every request that asked during one turn of
# a gateway's event loop, in the order they asked: the same answers as one call each, for one
# round trip. KEYS: resv, info, held, sums, halt, windows, settled. ARGV: the window lists'
# prefix, now, expires_at, then as SETTLE takes them the gateway's clock and until when a
# settlement id is remembered, the number of settlements, the settlements (4 each), then per
# request: its reservation id, usd, backend, respect_halt (1/0), its limits ("held
# field<TAB>seconds<TAB>usd" a line each; the window list is PREFIX .. field .. ':' .. seconds).
# -> per request "o" | "l<TAB>limit (1-based)<TAB>spent" | "h<TAB>since<TAB>until<TAB>reason"
RESERVE = (
    PRELUDE
    + r"""
local k = {resv = KEYS[1], info = KEYS[2], held = KEYS[3], sums = KEYS[4], windows = KEYS[6],
           settled = KEYS[7]}
local now = tonumber(ARGV[2])
local asks = 7 + 4 * tonumber(ARGV[6])
if asks > 7 then settle(k, ARGV[1], ARGV[4], ARGV[5], 7, asks - 1) end
reclaim(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
local h = current_halt(KEYS[5], now)
local halted = h and ('h\t' .. h[2] .. '\t' .. h[3] .. '\t' .. h[1])
local sums = {}  -- window list -> its settled sum (nothing settles during the loop)
local out = {}
for i = asks, #ARGV, 5 do
  local id, usd_s, backend = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local answer
  if redis.call('ZSCORE', KEYS[1], id) then
    answer = 'o'  -- the call is a retry and this request's reservation is held already
  elseif halted and ARGV[i + 3] == '1' then
    answer = halted
  else
    local usd = tonumber(usd_s)
    local n = 0
    for field, seconds, budget in string.gmatch(ARGV[i + 4], '([^\t\n]*)\t(%d+)\t([^\n]*)') do
      n = n + 1
      local key = ARGV[1] .. field .. ':' .. seconds
      local sum = sums[key]
      if not sum then
        sum = window_sum(KEYS[4], key, now - tonumber(seconds))
        sums[key] = sum
      end
      local spent = sum + tonumber(redis.call('HGET', KEYS[3], field) or '0')
      if spent + usd > tonumber(budget) then
        answer = 'l\t' .. n .. '\t' .. string.format('%.17g', spent)
        break
      end
    end
    if not answer then
      redis.call('ZADD', KEYS[1], ARGV[3], id)
      redis.call('HSET', KEYS[2], id, backend .. '\t' .. usd_s)
      redis.call('HINCRBYFLOAT', KEYS[3], 'total', usd_s)
      redis.call('HINCRBYFLOAT', KEYS[3], 'b:' .. backend, usd_s)
      answer = 'o'
    end
  end
  out[#out + 1] = answer
end
return out
"""
)

# Settlements alone (when no reservation is asked to carry them). KEYS: resv, info, held, sums,
# windows, settled. ARGV: the window lists' prefix, the gateway's clock (ids remembered until
# before it are forgotten), until when these ids are remembered, then per settlement: its id,
# usd, ts, its window lists.
SETTLE = (
    PRELUDE
    + r"""
local k = {resv = KEYS[1], info = KEYS[2], held = KEYS[3], sums = KEYS[4], windows = KEYS[5],
           settled = KEYS[6]}
settle(k, ARGV[1], ARGV[2], ARGV[3], 4, #ARGV)
return 1
"""
)

# KEYS: resv, info, held, sums, halt, then one window list per limit.
# ARGV: now, then per limit: held field, seconds.
# -> {reason, since, until, halted (1/0), in flight, spent of each limit...}
SNAPSHOT = (
    PRELUDE
    + r"""
local now = tonumber(ARGV[1])
reclaim(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local h = current_halt(KEYS[5], now)
local out
if h then out = {h[1], h[2], h[3], '1'} else out = {'', '', '', '0'} end
table.insert(out, redis.call('HGET', KEYS[3], 'total') or '0')
for i = 6, #KEYS do
  local a = 2 + (i - 6) * 2
  local held = tonumber(redis.call('HGET', KEYS[3], ARGV[a]) or '0')
  local spent = window_sum(KEYS[4], KEYS[i], now - tonumber(ARGV[a + 1])) + held
  table.insert(out, string.format('%.17g', spent))
end
return out
"""
)

# KEYS: halt, sums, windows. Lifts the halt and forgets settled spend (reservations stay).
RESUME = r"""
redis.call('DEL', KEYS[1])
local lists = redis.call('SMEMBERS', KEYS[3])
for _, key in ipairs(lists) do redis.call('DEL', key) end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""
