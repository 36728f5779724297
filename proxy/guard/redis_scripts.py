"""The Lua scripts of the Redis guard store: each one round trip, atomic on the Redis server.

Keys (under the prefix): `resv` (sorted set: reservation id -> expiry), `resv:info` (hash:
id -> "backend<TAB>usd"), `held` (hash: "total" / "b:NAME" -> USD in flight),
`spend:WHO:SECONDS` (list of "ts usd" oldest first: settled spend of one sliding window, ts the
newest of the spend an entry sums), `sums` (hash: window list -> its running total, and
"LIST|first" -> when the spend its last entry sums began), `windows` (set of window lists), `settled` (sorted
set: settlement batch id -> until when it is remembered) and `halt` (hash: reason, since, until). A
window is trimmed from its head when it is read, as the embedded store's windows are, so a
reservation costs O(1) amortised however many requests the day saw.

A lease (a gateway's slice of a budget, see redis_store) is a reservation like any other in
`resv` and `resv:info`; the settlements of the requests drawn from it give back their share.

Ids are made by the gateways (unique per process), so a call whose reply was lost can be sent
again: a reservation already held is answered as held, and a batch of settlements already
counted (sent again as it was) is not counted twice.

A call carries many requests' reservations and settlements, so the scripts read each hash field
and window once per call, keep what they change in Lua tables, and write it back with one
variadic command per key at the end: the cost of a call grows by a lookup or two per request,
not by a dozen commands. Settlements come summed (one amount per backend and time, one per
lease): a batch drawn from leases costs Redis the same however many requests it settles.
"""

from __future__ import annotations

# Functions every script shares (Lua, prepended to each script).
PRELUDE = r"""
local CHUNK = 1000  -- arguments per variadic command (Lua's unpack has a limit)

local function many(cmd, key, list, extra)
  for i = 1, #list, CHUNK do
    local last = math.min(i + CHUNK - 1, #list)
    if extra then
      redis.call(cmd, key, extra, unpack(list, i, last))
    else
      redis.call(cmd, key, unpack(list, i, last))
    end
  end
end

local function window_sum(sums, key, start)
  local total = tonumber(redis.call('HGET', sums, key) or '0')
  local trimmed = false
  while true do
    local head = redis.call('LINDEX', key, 0)
    if not head then
      if total ~= 0 or trimmed then redis.call('HDEL', sums, key, key .. '|first') end
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

-- Spend at `ts` within width/1000 seconds of the first spend of the window's last entry joins
-- that entry, which leaves the window with its newest spend, as the embedded store's buckets do:
-- a window holds ~1,000 entries however many batches a day sees, and counts an entry's older
-- spend at most width/1000 seconds longer than an exact window would (more, never less). The
-- last entry's first time is kept in `sums` beside the window's total.
local function add_spend(sums, key, seconds, ts, usd)
  local mark = key .. '|first'
  local last = redis.call('LINDEX', key, -1)
  local t = tonumber(ts)
  if last then
    local first = tonumber(redis.call('HGET', sums, mark) or '')
    if first and t >= first and t - first < seconds / 1000 then
      local sp = string.find(last, ' ', 1, true)
      local newest = math.max(tonumber(string.sub(last, 1, sp - 1)), t)
      local merged = tonumber(string.sub(last, sp + 1)) + usd
      redis.call('LSET', key, -1, string.format('%.17g %.17g', newest, merged))
      return
    end
  else
    -- No list: it expired (nothing was written to it for its width and a minute) or never was;
    -- the total kept for it in `sums` is of spend no longer there, and starts again from zero.
    redis.call('HDEL', sums, key)
  end
  redis.call('RPUSH', key, ts .. ' ' .. string.format('%.17g', usd))
  redis.call('HSET', sums, mark, ts)
end

-- What is in flight, per `held` field, read once and written back by write_held.
local function new_held(key) return {key = key, v = {}, dirty = {}} end

local function held_of(H, field)
  local v = H.v[field]
  if v == nil then
    v = tonumber(redis.call('HGET', H.key, field) or '0')
    H.v[field] = v
  end
  return v
end

local function hold(H, field, usd)
  H.v[field] = held_of(H, field) + usd
  H.dirty[field] = true
end

local function unhold(H, entry)
  local tab = string.find(entry, '\t', 1, true)
  local usd = -tonumber(string.sub(entry, tab + 1))
  hold(H, 'total', usd)
  hold(H, 'b:' .. string.sub(entry, 1, tab - 1), usd)
end

-- Nothing in flight: the hash goes (it would only keep rounding residue).
local function write_held(H, resv)
  if redis.call('ZCARD', resv) == 0 then
    redis.call('DEL', H.key)
    H.v, H.dirty = {}, {}
    return
  end
  local fields = {}
  for field in pairs(H.dirty) do
    fields[#fields + 1] = field
    fields[#fields + 1] = string.format('%.17g', H.v[field])
  end
  if #fields > 0 then many('HSET', H.key, fields) end
end

-- Reservations whose expiry has passed belong to requests that died with their gateway.
local function reclaim(resv, info, H, now)
  local dead = redis.call('ZRANGEBYSCORE', resv, '-inf', now, 'LIMIT', 0, 256)
  if #dead == 0 then return end
  for _, id in ipairs(dead) do
    local entry = redis.call('HGET', info, id)
    if entry then unhold(H, entry) end
  end
  many('HDEL', info, dead)
  many('ZREM', resv, dead)
end

-- A lease (an instance's slice of the budget, spent locally) gives back `amount` of what it holds,
-- or everything ('*': its last request settled, or it was given up with none in flight).
local function give_back(k, H, gives, drops)
  for id, amount in pairs(gives) do
    local entry = redis.call('HGET', k.info, id)
    if entry then
      local tab = string.find(entry, '\t', 1, true)
      local backend, usd = string.sub(entry, 1, tab - 1), tonumber(string.sub(entry, tab + 1))
      local g = usd
      if not drops[id] then g = math.min(usd, amount) end
      hold(H, 'total', -g)
      hold(H, 'b:' .. backend, -g)
      if drops[id] then
        redis.call('HDEL', k.info, id)
        redis.call('ZREM', k.resv, id)
      else
        redis.call('HSET', k.info, id, backend .. '\t' .. string.format('%.17g', usd - g))
      end
    end
  end
end

-- A batch of settlements from ARGV[first] on, summed by the gateway: the batch's id ("" when it
-- adds and gives back nothing), how many reservation ids, spend entries and give-backs follow,
-- then the ids of the requests reserved one by one (each reservation goes), the spend (3 each:
-- window lists as "held field<TAB>seconds" a line each, ts, usd) and the give-backs to leases
-- (2 each: lease id, amount or "*" for all it holds). A reservation already reclaimed still
-- records its spend; a batch id already in `settled` (a call sent again after its reply was lost)
-- records and gives back nothing.
local function settle(k, H, prefix, now, keep, first)
  redis.call('ZREMRANGEBYSCORE', k.settled, '-inf', now)
  local id = ARGV[first]
  local nids, nspend, ngives = tonumber(ARGV[first + 1]), tonumber(ARGV[first + 2]),
    tonumber(ARGV[first + 3])
  local i = first + 4
  local done = {}
  for j = i, i + nids - 1 do
    local entry = redis.call('HGET', k.info, ARGV[j])
    if entry then
      unhold(H, entry)
      done[#done + 1] = ARGV[j]
    end
  end
  if #done > 0 then
    many('HDEL', k.info, done)
    many('ZREM', k.resv, done)
  end
  if id == '' or redis.call('ZADD', k.settled, 'NX', keep, id) == 0 then return end
  i = i + nids
  local windows, order = {}, {}
  for j = i, i + 3 * (nspend - 1), 3 do
    local ts, usd = ARGV[j + 1], ARGV[j + 2]
    for field, seconds in string.gmatch(ARGV[j], '([^\t\n]*)\t(%d+)') do
      local key = prefix .. field .. ':' .. seconds
      local w = windows[key]
      if not w then
        w = {seconds = tonumber(seconds), sum = 0, items = {}}
        windows[key] = w
        order[#order + 1] = key
      end
      w.items[#w.items + 1] = {ts, tonumber(usd)}
      w.sum = w.sum + tonumber(usd)
    end
  end
  i = i + 3 * nspend
  local gives, drops = {}, {}
  for j = i, i + 2 * (ngives - 1), 2 do
    if ARGV[j + 1] == '*' then
      drops[ARGV[j]] = true
      gives[ARGV[j]] = 0
    else
      gives[ARGV[j]] = tonumber(ARGV[j + 1])
    end
  end
  if ngives > 0 then give_back(k, H, gives, drops) end
  for _, key in ipairs(order) do
    local w = windows[key]
    for _, item in ipairs(w.items) do add_spend(k.sums, key, w.seconds, item[1], item[2]) end
    redis.call('HINCRBYFLOAT', k.sums, key, string.format('%.17g', w.sum))
    -- A window nobody wrote to for longer than its width holds nothing that counts (its total
    -- in `sums` goes with it: read as 0 when the list is gone, reset when spend comes again).
    redis.call('PEXPIRE', key, (w.seconds + 60) * 1000)
    redis.call('SADD', k.windows, key)
  end
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
# round trip; then the leases asked for, after every request is answered (so a lease never changes
# an answer in the call that grants it). KEYS: resv, info, held, sums, halt, windows, settled.
# ARGV: the window lists' prefix, now, expires_at, then as SETTLE takes them the gateway's clock
# and until when a batch id is remembered, how many arguments the batch of settlements takes (0:
# none), the number of leases, when a lease granted now expires, the batch (as `settle` reads
# it), the leases (5 each: lease id, backend, limits, usd wanted, least worth granting), then per
# request: its reservation id, usd,
# backend, respect_halt (1/0), its limits ("held field<TAB>seconds<TAB>usd" a line each; the
# window list is PREFIX .. field .. ':' .. seconds).
# -> per request "o" | "l<TAB>limit (1-based)<TAB>spent" | "h<TAB>since<TAB>until<TAB>reason",
#    then per lease the USD granted ("0": none).
RESERVE = (
    PRELUDE
    + r"""
local k = {resv = KEYS[1], info = KEYS[2], sums = KEYS[4], windows = KEYS[6], settled = KEYS[7]}
local H = new_held(KEYS[3])
local now = tonumber(ARGV[2])
local leases = 9 + tonumber(ARGV[6])
local asks = leases + 5 * tonumber(ARGV[7])
if leases > 9 then settle(k, H, ARGV[1], ARGV[4], ARGV[5], 9) end
reclaim(KEYS[1], KEYS[2], H, ARGV[2])
local h = current_halt(KEYS[5], now)
local halted = h and ('h\t' .. h[2] .. '\t' .. h[3] .. '\t' .. h[1])
local sums = {}  -- window list -> its settled sum (nothing settles during the loop)
local function spent_of(field, seconds)
  local key = ARGV[1] .. field .. ':' .. seconds
  local sum = sums[key]
  if not sum then
    sum = window_sum(KEYS[4], key, now - tonumber(seconds))
    sums[key] = sum
  end
  return sum + held_of(H, field)
end
local held, infos, out = {}, {}, {}
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
      local spent = spent_of(field, seconds)
      if spent + usd > tonumber(budget) then
        answer = 'l\t' .. n .. '\t' .. string.format('%.17g', spent)
        break
      end
    end
    if not answer then
      held[#held + 1] = ARGV[3]
      held[#held + 1] = id
      infos[#infos + 1] = id
      infos[#infos + 1] = backend .. '\t' .. usd_s
      hold(H, 'total', usd)
      hold(H, 'b:' .. backend, usd)
      answer = 'o'
    end
  end
  out[#out + 1] = answer
end
-- A lease takes at most an eighth of the room left under each of its limits, and none while
-- halted: near the end of a budget leases shrink, then stop, and requests reserve one by one.
for i = leases, asks - 1, 5 do
  local id, backend = ARGV[i], ARGV[i + 1]
  local grant = 0
  local again = redis.call('HGET', KEYS[2], id)  -- the call is a retry: the lease is held already
  if again then
    out[#out + 1] = string.sub(again, string.find(again, '\t', 1, true) + 1)
  elseif not halted then
    local room = nil
    for field, seconds, budget in string.gmatch(ARGV[i + 2], '([^\t\n]*)\t(%d+)\t([^\n]*)') do
      local left = tonumber(budget) - spent_of(field, seconds)
      if room == nil or left < room then room = left end
    end
    if room ~= nil then
      grant = math.min(tonumber(ARGV[i + 3]), room / 8)
      if grant < tonumber(ARGV[i + 4]) then grant = 0 end
    end
  end
  if again then
    grant = 0
  elseif grant > 0 then
    held[#held + 1] = ARGV[8]
    held[#held + 1] = id
    infos[#infos + 1] = id
    infos[#infos + 1] = backend .. '\t' .. string.format('%.17g', grant)
    hold(H, 'total', grant)
    hold(H, 'b:' .. backend, grant)
    out[#out + 1] = string.format('%.17g', grant)
  else
    out[#out + 1] = '0'
  end
end
if #held > 0 then
  many('ZADD', KEYS[1], held)
  many('HSET', KEYS[2], infos)
end
write_held(H, KEYS[1])
return out
"""
)

# Settlements alone (when no reservation is asked to carry them). KEYS: resv, info, held, sums,
# windows, settled. ARGV: the window lists' prefix, the gateway's clock (ids remembered until
# before it are forgotten), until when these ids are remembered, then the batch of settlements
# (as `settle` reads it).
SETTLE = (
    PRELUDE
    + r"""
local k = {resv = KEYS[1], info = KEYS[2], sums = KEYS[4], windows = KEYS[5], settled = KEYS[6]}
local H = new_held(KEYS[3])
settle(k, H, ARGV[1], ARGV[2], ARGV[3], 4)
write_held(H, KEYS[1])
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
local H = new_held(KEYS[3])
reclaim(KEYS[1], KEYS[2], H, ARGV[1])
write_held(H, KEYS[1])
local h = current_halt(KEYS[5], now)
local out
if h then out = {h[1], h[2], h[3], '1'} else out = {'', '', '', '0'} end
table.insert(out, string.format('%.17g', held_of(H, 'total')))
for i = 6, #KEYS do
  local a = 2 + (i - 6) * 2
  local spent = window_sum(KEYS[4], KEYS[i], now - tonumber(ARGV[a + 1])) + held_of(H, ARGV[a])
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
