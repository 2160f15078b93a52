-- release.lua: delete a lease if, and only if, it is still the caller's.
--
-- KEYS[1]  lease  hash <tag>:lease
-- ARGV[1]  owner  the caller's instance id
-- ARGV[2]  fence  the caller's fence
--
-- Returns 1 when deleted, 0 otherwise.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
