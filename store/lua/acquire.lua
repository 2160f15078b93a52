-- acquire.lua: take a session's lease if nobody holds a live one.
--
-- KEYS[1]  lease  hash <tag>:lease: owner, session, fence, acquired, renewed
-- KEYS[2]  fence  string <tag>:fence: the fence counter (never expires)
-- ARGV[1]  owner    the worker's instance id
-- ARGV[2]  session  the session id
-- ARGV[3]  ttl      lease time to live, milliseconds
-- ARGV[4]  now      unix milliseconds
--
-- Returns {1, fence} when acquired, {0, fence, owner, session} when held.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'session')
if cur[1] then
  return {0, tonumber(cur[2]), cur[1], cur[3]}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'session', ARGV[2], 'fence', fence, 'acquired', ARGV[4], 'renewed', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, fence}
