"""The Lua scripts of the fan-out. Each runs atomically in Redis: the moves between streams and
the acknowledgements that end them happen together or not at all, so a crash at any instant
neither loses nor doubles an entry."""

from __future__ import annotations

#: Intake → export streams. KEYS: the intake stream, the delivery counters, then one export
#: stream per config. ARGV: group, consumer, count, min idle ms, then per config its name,
#: ",skip,keys," and ",skip,sources,". An entry is copied (its id kept as field ``iid``) only
#: if this call's XACK removed it from the group's pending list: an entry fanned out by
#: another consumer meanwhile is not copied twice. Returns {entries, copies}.
FANOUT = """
local intake, stats = KEYS[1], KEYS[2]
local group, consumer, count, idle = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local n = #KEYS - 2
local entries = {}
local claimed = redis.call('XAUTOCLAIM', intake, group, consumer, idle, '0-0', 'COUNT', count)
for _, e in ipairs(claimed[2]) do table.insert(entries, e) end
for _, id in ipairs(claimed[3] or {}) do redis.call('XACK', intake, group, id) end
if #entries < count then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #entries,
    'STREAMS', intake, '>')
  if read then for _, e in ipairs(read[1][2]) do table.insert(entries, e) end end
end
local copies = 0
local queued = {}
for i = 1, n do queued[i] = 0 end
for _, e in ipairs(entries) do
  local id, fields = e[1], e[2]
  if redis.call('XACK', intake, group, id) == 1 then
    local key, source = nil, ''
    for j = 1, #fields, 2 do
      if fields[j] == 'api_key' then key = fields[j + 1]
      elseif fields[j] == 'source' then source = fields[j + 1] end
    end
    for i = 1, n do
      local at = 5 + (i - 1) * 3
      local skipped = (key and string.find(ARGV[at + 1], ',' .. key .. ',', 1, true))
        or string.find(ARGV[at + 2], ',' .. source .. ',', 1, true)
      if not skipped then
        redis.call('XADD', KEYS[2 + i], '*', 'iid', id, unpack(fields))
        queued[i] = queued[i] + 1
        copies = copies + 1
      else
        redis.call('HINCRBY', stats, ARGV[at] .. ':skipped', 1)
      end
    end
    redis.call('XDEL', intake, id)
  end
end
for i = 1, n do
  if queued[i] > 0 then
    redis.call('HINCRBY', stats, ARGV[5 + (i - 1) * 3] .. ':queued', queued[i])
  end
end
return {#entries, copies}
"""

#: Take a batch of an export stream. KEYS: the stream, its batches hash (first id → last id).
#: ARGV: group, consumer, batch size, max age ms, now ms, min idle ms, force (1: take what
#: waits, however few and young). A dead consumer's batch comes first, whole (the same ids as
#: when it was first read, so a retried batch is the same batch); else a new batch once
#: `batch` entries wait or the oldest waiting one is `max age` old. Returns {} or
#: {first id, last id, entries}.
TAKE = """
local stream, batches = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local size, max_age, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[6], '0-0', 'COUNT', 1)
local first = claimed[2][1]
if first then
  local fid = first[1]
  local last = redis.call('HGET', batches, fid) or fid
  local ids = {}
  for _, p in ipairs(redis.call('XPENDING', stream, group, fid, last, 10000)) do
    table.insert(ids, p[1])
  end
  local got = redis.call('XCLAIM', stream, group, consumer, 0, unpack(ids))
  return {fid, last, got}
end
local pending = redis.call('XPENDING', stream, group)[1]
local waiting = redis.call('XLEN', stream) - pending
if waiting <= 0 then return {} end
if waiting < size and ARGV[7] ~= '1' then
  local delivered = '0-0'
  local info = redis.call('XINFO', 'GROUPS', stream)
  for _, g in ipairs(info) do
    local name, last = nil, nil
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1]
      elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
    end
    if name == group then delivered = last end
  end
  local oldest = redis.call('XRANGE', stream, '(' .. delivered, '+', 'COUNT', 1)[1]
  if not oldest then return {} end
  local millis = tonumber(string.match(oldest[1], '^(%d+)'))
  if now - millis < max_age then return {} end
end
local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', size,
  'STREAMS', stream, '>')
if not read then return {} end
local got = read[1][2]
local fid, last = got[1][1], got[#got][1]
redis.call('HSET', batches, fid, last)
return {fid, last, got}
"""

#: Keep a batch's entries in this consumer's hands (reset their idle time) during retries.
TOUCH = """
local ids = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[4], 10000)) do
  table.insert(ids, p[1])
end
if #ids > 0 then redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids), 'JUSTID') end
return #ids
"""

_END = """
local stream, batches, attempts, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, fid, last, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HDEL', batches, fid) == 0 then return -1 end
redis.call('HDEL', attempts, fid, fid .. ':reason')
local ids = {}
for _, p in ipairs(redis.call('XPENDING', stream, group, fid, last, 10000)) do
  table.insert(ids, p[1])
end
if #ids == 0 then return 0 end
"""

#: A batch delivered: acknowledge and delete its entries, count them. KEYS: stream, batches,
#: attempts, counters. ARGV: group, first id, last id, export name, retried (reports re-sent).
#: -1 when the batch was already ended (by a consumer that had taken it over).
DONE = (
    _END
    + """
redis.call('XACK', stream, group, unpack(ids))
redis.call('XDEL', stream, unpack(ids))
redis.call('HINCRBY', stats, name .. ':delivered', #ids)
redis.call('HINCRBY', stats, name .. ':batches', 1)
return #ids
"""
)

#: A batch given up: its entries move to the dead-letter stream (KEYS[5]) with the reason and
#: the attempts, in the same step as they leave the export stream. ARGV: as DONE, then the
#: reason, the attempts and the time (ms).
BURY = (
    _END
    + """
for _, e in ipairs(redis.call('XRANGE', stream, fid, last)) do
  redis.call('XADD', KEYS[5], '*', 'reason', ARGV[5], 'attempts', ARGV[6], 'failed_at', ARGV[7],
    unpack(e[2]))
end
redis.call('XACK', stream, group, unpack(ids))
redis.call('XDEL', stream, unpack(ids))
redis.call('HINCRBY', stats, name .. ':dead_lettered', #ids)
return #ids
"""
)

#: Dead letters back onto the export stream, without their failure fields. KEYS: dead-letter
#: stream, export stream, counters. ARGV: how many at most, export name. Returns how many.
REDRIVE = """
local moved = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[1]))) do
  local kept = {}
  for j = 1, #e[2], 2 do
    local f = e[2][j]
    if f ~= 'reason' and f ~= 'attempts' and f ~= 'failed_at' then
      table.insert(kept, f)
      table.insert(kept, e[2][j + 1])
    end
  end
  redis.call('XADD', KEYS[2], '*', unpack(kept))
  redis.call('XDEL', KEYS[1], e[1])
  moved = moved + 1
end
if moved > 0 then redis.call('HINCRBY', KEYS[3], ARGV[2] .. ':redriven', moved) end
return moved
"""
