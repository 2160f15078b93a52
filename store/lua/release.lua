-- release.lua: delete a lease if, and only if, it is still the caller's,
-- and record the release so that a renewal already in flight for it
-- cannot restore it (see renew.lua).
--
-- KEYS[1]  lease     hash <tag>:lease
-- KEYS[2]  released  string <tag>:released
-- ARGV[1]  owner  the caller's instance id
-- ARGV[2]  fence  the caller's fence
-- ARGV[3]  keep   milliseconds to keep the release on record (the lease TTL
--                 is enough: a renewal older than that is refused anyway)
--
-- Returns 1 when deleted, 0 otherwise.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return redis.call('DEL', KEYS[1])
end
return 0
