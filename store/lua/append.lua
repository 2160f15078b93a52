-- append.lua: append entries of one session, in order, to its output stream.
-- (output_bound.lua is prepended to this file: it defines bound_output.)
--
-- KEYS[1]  out       stream <tag>:out (also the name of the pub/sub channel)
-- KEYS[2]  lease     hash   <tag>:lease: fence
-- KEYS[3]  gmcp      hash   <tag>:gmcp: GMCP package -> "<id> <json>"
-- KEYS[4]  session   hash   <tag>:session: the session record
-- KEYS[5]  outmeta   hash   <tag>:outmeta: byte count of the stream
-- KEYS[6]  outmarks  list   <tag>:outmarks: trim points of the byte bound
-- KEYS[7]  msdp      hash   <tag>:msdp: MSDP variable -> "<id> <json>"
-- ARGV[1]  maxlen    entries kept at most (MAXLEN ~), a backstop
-- ARGV[2]  fence     the writer's fence; "0" for an unfenced write
-- ARGV[3]  now       unix milliseconds, for the session record
-- ARGV[4]  maxbytes  bytes kept at most (payload + overhead per entry)
-- ARGV[5]  overhead  bytes counted per entry besides its payload
-- ARGV[6]  retry     "1" when these entries were sent before, by a round
--                    trip whose outcome is unknown: the numbered ones already
--                    in the stream are not written again; "0" on a first
--                    attempt
-- ARGV[7]  n         how many entries follow
-- ARGV[8...]         the entries, each as 7 values and then its drops:
--   payload  the entry's JSON
--   seq      its sequence number within its fence, "0" for none
--   package  GMCP package (in KEYS[3]) or MSDP variable (in KEYS[7]) to
--            remember this entry under, or ""
--   hash     "m": package names an MSDP variable, else a GMCP package
--   state    session state to record for a status entry, or ""
--   ngmcp    how many GMCP packages to forget from KEYS[3] follow
--   nmsdp    how many MSDP variables to forget from KEYS[7] follow
--   (both forgotten after package is set, so a name both set and dropped
--   is not kept)
--
-- Returns one value per entry, in order: its new id, or "DUP" for a retried
-- entry written before (its first reply was lost: nothing is written again);
-- or an error "STALE ..." when the fence is not the live lease's (fence 0:
-- when a lease is held), and then nothing is written. The entries written
-- are published as one message, "<id> <json>" lines joined by "\n" (the JSON
-- holds no raw newline: output.go).

-- newest(out, fence): the number of the newest numbered entry of this fence
-- in the stream, 0 if none. Only a retry asks. The live fence's entries are
-- written in the order of their numbers, and the newest entry of a stream is
-- never trimmed, so every number of this fence up to that one was written.
-- Newer entries can only be ones without a number (gap entries of writers
-- that lost their lease, unfenced entries written while no lease was held):
-- they are skipped. An entry numbered by another fence is older than every
-- entry of this one (no other fence writes while this one is live): if it
-- comes first, this fence wrote nothing that is still kept.
-- The payload starts as Go's encoding/json writes store.Output:
-- {"k":"<kind>","f":<fence>,"n":<seq>,... (output_test.go pins that).
-- The first page almost always decides; pages grow, so that even a stream
-- of nothing but unnumbered entries is read in a few calls.
local function newest(out, fence)
  local from, count = '+', 8
  while true do
    local page = redis.call('XREVRANGE', out, from, '-', 'COUNT', count)
    for _, e in ipairs(page) do
      local ef, en = string.match(e[2][2], '^{"k":"%a+","f":(%d+),"n":(%d+)[,}]')
      if en then
        if tonumber(ef) == fence then return tonumber(en) end
        return 0
      end
    end
    if #page < count then return 0 end
    from, count = '(' .. page[#page][1], math.min(count * 8, 1024)
  end
end

local f = redis.call('HGET', KEYS[2], 'fence')
if ARGV[2] == '0' then
  if f then return redis.error_reply('STALE lease is held') end
elseif f ~= ARGV[2] then
  return redis.error_reply('STALE fence')
end
local written = 0
if ARGV[6] == '1' and ARGV[2] ~= '0' then
  written = newest(KEYS[1], tonumber(ARGV[2]))
end
local overhead = tonumber(ARGV[5])
local record -- the session record's fence, read once, if a status asks
local ret, ids, sizes, msgs = {}, {}, {}, {}
local a = 8
for e = 1, tonumber(ARGV[7]) do
  local payload, seq, pkg, hash, state = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local ngmcp, nmsdp = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local drops = a + 7
  a = drops + ngmcp + nmsdp
  if seq > 0 and seq <= written then
    ret[e] = 'DUP'
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'v', payload)
    ret[e] = id
    ids[#ids + 1], sizes[#sizes + 1] = id, #payload + overhead
    local msg = id .. ' ' .. payload
    msgs[#msgs + 1] = msg
    if pkg ~= '' then
      redis.call('HSET', hash == 'm' and KEYS[7] or KEYS[3], pkg, msg)
    end
    for i = drops, drops + ngmcp - 1, 100 do
      redis.call('HDEL', KEYS[3], unpack(ARGV, i, math.min(i + 99, drops + ngmcp - 1)))
    end
    for i = drops + ngmcp, a - 1, 100 do
      redis.call('HDEL', KEYS[7], unpack(ARGV, i, math.min(i + 99, a - 1)))
    end
    if state ~= '' then
      if record == nil then record = redis.call('HGET', KEYS[4], 'fence') or false end
      if record == ARGV[2] then
        redis.call('HSET', KEYS[4], 'state', state, 'updated', ARGV[3])
      end
    end
  end
end
if #ids > 0 then
  bound_output(KEYS[1], KEYS[5], KEYS[6], ids, sizes, tonumber(ARGV[4]))
  redis.call('PUBLISH', KEYS[1], table.concat(msgs, '\n'))
end
return ret
