-- set_viewers.lua: set a session record's viewer count, if the record is
-- still the given fence's (a newer owner's record is left alone).
--
-- KEYS[1]  session  hash <tag>:session
-- ARGV[1]  fence    the caller's fence
-- ARGV[2]  viewers  the viewer count
-- ARGV[3]  now      unix milliseconds
--
-- Returns HSET's reply, or -1 when the record is not the fence's.
if redis.call('HGET', KEYS[1], 'fence') == ARGV[1] then
  return redis.call('HSET', KEYS[1], 'viewers', ARGV[2], 'updated', ARGV[3])
end
return -1
