-- append.lua: append one entry to a session's output stream.
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
-- ARGV[3]  payload   the entry's JSON
-- ARGV[4]  package   GMCP package (in KEYS[3]) or MSDP variable (in KEYS[7],
--                    see ARGV[11]) to remember this entry under, or ""
-- ARGV[5]  retry     on a retry (the entry was sent before, by a round trip
--                    whose outcome is unknown): its sequence number within
--                    its fence, checked against the stream; "0" on a first
--                    attempt, or for an entry without a number
-- ARGV[6]  state     session state to record for a status entry, or ""
-- ARGV[7]  now       unix milliseconds, for the session record
-- ARGV[8]  maxbytes  bytes kept at most (payload + overhead per entry)
-- ARGV[9]  overhead  bytes counted per entry besides its payload
-- ARGV[10] ngmcp     how many of ARGV[12...] are GMCP packages
-- ARGV[11] state key "m": ARGV[4] names an MSDP variable, else a GMCP package
-- ARGV[12...]        the first ngmcp: GMCP packages to forget from KEYS[3];
--                    the rest: MSDP variables to forget from KEYS[7] (both
--                    after ARGV[4] is set, so a name both set and dropped is
--                    not kept)
--
-- Returns the new entry's id; the status "DUP" for a retry whose entry was
-- written before (its first reply was lost: nothing is written again); or an error
-- "STALE ..." when the fence is not the live lease's (fence 0: when a lease
-- is held).

-- written(out, fence, seq): whether the stream holds an entry of this fence
-- numbered seq or higher. Only a retry asks. The live fence's entries are
-- written in the order of their numbers, and the newest entry of a stream is
-- never trimmed, so the newest entry of this fence is the highest number it
-- wrote. Newer entries can only be ones without a number (gap entries of
-- writers that lost their lease, unfenced entries written while no lease was
-- held): they are skipped. An entry numbered by another fence is older than
-- every entry of this one (no other fence writes while this one is live): if
-- it comes first, this fence wrote nothing that is still kept.
-- The payload starts as Go's encoding/json writes store.Output:
-- {"k":"<kind>","f":<fence>,"n":<seq>,... (output_test.go pins that).
-- The first page almost always decides; pages grow, so that even a stream
-- of nothing but unnumbered entries is read in a few calls.
local function written(out, fence, seq)
  local from, count = '+', 8
  while true do
    local page = redis.call('XREVRANGE', out, from, '-', 'COUNT', count)
    for _, e in ipairs(page) do
      local ef, en = string.match(e[2][2], '^{"k":"%a+","f":(%d+),"n":(%d+)[,}]')
      if en then return tonumber(ef) == fence and tonumber(en) >= seq end
    end
    if #page < count then return false end
    from, count = '(' .. page[#page][1], math.min(count * 8, 1024)
  end
end

local f = redis.call('HGET', KEYS[2], 'fence')
if ARGV[2] == '0' then
  if f then return redis.error_reply('STALE lease is held') end
elseif f ~= ARGV[2] then
  return redis.error_reply('STALE fence')
elseif ARGV[5] ~= '0' and written(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[5])) then
  return redis.status_reply('DUP')
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'v', ARGV[3])
bound_output(KEYS[1], KEYS[5], KEYS[6], id, #ARGV[3] + tonumber(ARGV[9]), tonumber(ARGV[8]))
local msg = id .. ' ' .. ARGV[3]
if ARGV[4] ~= '' then
  if ARGV[11] == 'm' then
    redis.call('HSET', KEYS[7], ARGV[4], msg)
  else
    redis.call('HSET', KEYS[3], ARGV[4], msg)
  end
end
local split = 11 + tonumber(ARGV[10]) -- the last GMCP drop
for i = 12, split, 100 do
  redis.call('HDEL', KEYS[3], unpack(ARGV, i, math.min(i + 99, split)))
end
for i = split + 1, #ARGV, 100 do
  redis.call('HDEL', KEYS[7], unpack(ARGV, i, math.min(i + 99, #ARGV)))
end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[4], 'fence') == ARGV[2] then
  redis.call('HSET', KEYS[4], 'state', ARGV[6], 'updated', ARGV[7])
end
redis.call('PUBLISH', KEYS[1], msg)
return id
