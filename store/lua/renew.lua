-- renew.lua: extend a lease the caller holds, and keep its session's keys.
--
-- KEYS[1]     lease  hash <tag>:lease
-- KEYS[2...]  the session's keys to keep for ARGV[5] (out, outmeta,
--             outmarks, gmcp, msdp, session); none for a bare renewal
-- ARGV[1]  owner  the caller's instance id
-- ARGV[2]  fence  the caller's fence
-- ARGV[3]  ttl    lease time to live, milliseconds
-- ARGV[4]  now    unix milliseconds
-- ARGV[5]  keep   milliseconds to keep KEYS[2...] from now; "0" leaves them
--
-- Returns 1 when renewed, 0 when the lease is not the caller's any more.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'renewed', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if ARGV[5] ~= '0' then
    for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
  end
  return 1
end
return 0
