-- lost_gap.lua: a gap entry from a writer that lost its lease.
-- (output_bound.lua is prepended to this file: it defines bound_output.)
--
-- KEYS[1]  out       stream <tag>:out (also the name of the pub/sub channel)
-- KEYS[2]  fence     string <tag>:fence: the session's fence counter
-- KEYS[3]  outmeta   hash   <tag>:outmeta: byte count of the stream
-- KEYS[4]  outmarks  list   <tag>:outmarks: trim points of the byte bound
-- ARGV[1]  maxlen    entries kept at most (MAXLEN ~), a backstop
-- ARGV[2]  fence     the fence the writer held
-- ARGV[3]  payload   the gap entry's JSON (it carries no seq)
-- ARGV[4]  maxbytes  bytes kept at most (payload + overhead per entry)
-- ARGV[5]  overhead  bytes counted per entry besides its payload
--
-- The writer holds no lease any more, so the only check is that it did
-- hold this session once: 0 < fence <= the fence counter. Returns the new
-- entry's id; nil when the stream no longer exists (the transcript expired:
-- there is nothing to mark, and a new stream here would have no expiry);
-- or an error "NOFENCE ..." for a fence that was never issued.
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local fence = tonumber(ARGV[2])
if not fence or fence <= 0 or fence > counter then
  return redis.error_reply('NOFENCE fence ' .. ARGV[2] .. ' was never issued (the counter is at ' .. counter .. ')')
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'v', ARGV[3])
bound_output(KEYS[1], KEYS[3], KEYS[4], {id}, {#ARGV[3] + tonumber(ARGV[5])}, tonumber(ARGV[4]))
redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[3])
return id
