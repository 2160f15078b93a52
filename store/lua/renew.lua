-- renew.lua: extend a lease the caller holds, and keep its session's keys.
-- A lease Redis forgot (lost writes: a failover to a replica that had not
-- received them, or a restore from an older snapshot) is restored, fence
-- and all, when nobody can have held it since: no live lease, the fence
-- counter not past the caller's, and no release of that fence on record.
--
-- KEYS[1]     lease     hash <tag>:lease
-- KEYS[2]     fence     string <tag>:fence (the fence counter)
-- KEYS[3]     released  string <tag>:released (fence of the last release)
-- KEYS[4...]  the session's keys to keep for ARGV[5] (out, outmeta,
--             outmarks, gmcp, msdp, session); none for a bare renewal
-- ARGV[1]  owner    the caller's instance id
-- ARGV[2]  fence    the caller's fence
-- ARGV[3]  ttl      lease time to live, milliseconds
-- ARGV[4]  now      unix milliseconds
-- ARGV[5]  keep     milliseconds to keep KEYS[4...] from now; "0" leaves them
-- ARGV[6]  session  the caller's session id; "" never restores
-- ARGV[7]  acquired unix milliseconds the caller acquired the lease
--
-- Returns 1 when renewed, 2 when restored, 0 when the lease is not the
-- caller's any more.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local res = 0
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'renewed', ARGV[4])
  res = 1
elseif not cur[1] and ARGV[6] ~= '' then
  local fence = tonumber(ARGV[2])
  local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
  local released = redis.call('GET', KEYS[3])
  if counter <= fence and released ~= ARGV[2] then
    if counter < fence then redis.call('SET', KEYS[2], ARGV[2]) end
    redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'session', ARGV[6], 'fence', ARGV[2],
      'acquired', ARGV[7], 'renewed', ARGV[4], 'restored', ARGV[4])
    res = 2
  end
end
if res == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '0' then
  for i = 4, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
end
return res
