-- delete_session.lua: remove a session record only if it is still the
-- caller's session (a newer owner may have replaced it).
--
-- KEYS[1]  session  hash <tag>:session
-- ARGV[1]  session  the caller's session id
--
-- Returns 1 when deleted, 0 otherwise.
if redis.call('HGET', KEYS[1], 'session') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
