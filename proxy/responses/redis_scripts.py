"""The Lua scripts of the Redis conversation store: each is one round trip, atomic in Redis.

Keys, under [state] key_prefix P: `P resp:t:ID` a hash (p: previous id, c: created, i: the
turn's items as JSON, n: the ids of its named items as JSON) that expires store_ttl_seconds
after the request arrived; `P resp:i:ITEM` the id of the latest turn that brought the item (its
bytes live only in the turn), expiring with it and deleted with it when the bounds evict the
turn; `P resp:order` (sorted set: id by created), `P resp:size` (hash: id -> bytes) and
`P resp:bytes` (their sum) keep the count and size bounds across every gateway.
"""

from __future__ import annotations

# KEYS: order, size, bytes. ARGV: turn key prefix, item key prefix, id, previous, created,
# expire-at (ms), items blob, max turns, max bytes, expired-before, item ids...
# Returns 1 when the turn was filed, 0 when it was already there (never filed twice).
FILE = """
local order, sizes, total = KEYS[1], KEYS[2], KEYS[3]
local tp, ip, id = ARGV[1], ARGV[2], ARGV[3]
local blob = ARGV[7]
local maxn, maxb = tonumber(ARGV[8]), tonumber(ARGV[9])
local function forget(x)
  local s = redis.call('HGET', sizes, x)
  if s then
    redis.call('DECRBY', total, s)
    redis.call('HDEL', sizes, x)
  end
  redis.call('ZREM', order, x)
end
for _, x in ipairs(redis.call('ZRANGEBYSCORE', order, '-inf', '(' .. ARGV[10], 'LIMIT', 0, 100)) do
  forget(x)
end
local filed = 0
if redis.call('EXISTS', tp .. id) == 0 then
  local named = {}
  for k = 11, #ARGV do
    named[#named + 1] = ARGV[k]
  end
  redis.call('HSET', tp .. id, 'p', ARGV[4], 'c', ARGV[5], 'i', blob, 'n', cjson.encode(named))
  redis.call('PEXPIREAT', tp .. id, ARGV[6])
  redis.call('ZADD', order, ARGV[5], id)
  redis.call('HSET', sizes, id, #blob)
  redis.call('INCRBY', total, #blob)
  for k = 11, #ARGV do
    redis.call('SET', ip .. ARGV[k], id, 'PXAT', ARGV[6])
  end
  filed = 1
end
local n = redis.call('ZCARD', order)
local b = tonumber(redis.call('GET', total) or '0')
while n > maxn or b > maxb do
  local oldest = redis.call('ZRANGE', order, 0, 0)
  if #oldest == 0 then break end
  local s = tonumber(redis.call('HGET', sizes, oldest[1]) or '0')
  forget(oldest[1])
  local named = redis.call('HGET', tp .. oldest[1], 'n')
  if named then  -- its items go with it, unless a later turn brought one again
    for _, item in ipairs(cjson.decode(named)) do
      if redis.call('GET', ip .. item) == oldest[1] then
        redis.call('DEL', ip .. item)
      end
    end
  end
  redis.call('DEL', tp .. oldest[1])
  n, b = n - 1, b - s
end
return filed
"""

# ARGV: turn key prefix, item key prefix, first id ('' for none), most turns, item ids...
# Returns {chain, items}: chain flattened as id, previous, created, items blob per turn (newest
# first, stopping at the first turn gone); items one blob of its turn's items per asked id
# ('' when the item or its turn is gone).
RESOLVE = """
local tp, ip = ARGV[1], ARGV[2]
local chain, items = {}, {}
local cur, most = ARGV[3], tonumber(ARGV[4])
while cur ~= '' and most > 0 do
  local t = redis.call('HMGET', tp .. cur, 'p', 'c', 'i')
  if not t[3] then break end
  chain[#chain + 1] = cur
  chain[#chain + 1] = t[1]
  chain[#chain + 1] = t[2]
  chain[#chain + 1] = t[3]
  cur, most = t[1], most - 1
end
for k = 5, #ARGV do
  local holder = redis.call('GET', ip .. ARGV[k])
  local blob = false
  if holder then blob = redis.call('HGET', tp .. holder, 'i') end
  items[#items + 1] = blob or ''
end
return {chain, items}
"""
