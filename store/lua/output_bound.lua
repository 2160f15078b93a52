-- output_bound.lua: the byte bound of a session's output stream.
--
-- Not a script of its own: it is prepended to append.lua and lost_gap.lua,
-- which call bound_output right after their XADD. It touches only the keys
-- it is handed, all under the session's hash tag.
--
-- bound_output(out, meta, marks, ids, sizes, maxbytes)
--   out       stream  <tag>:out       the output stream; ids were just added
--   meta      hash    <tag>:outmeta   field bytes: running total of the bytes
--                                     counted for the stream's entries
--   marks     list    <tag>:outmarks  trim points, oldest first, each
--                                     "<id> <total before id>"; the oldest is
--                                     where the stream was last trimmed to
--   ids       the new entries' ids, oldest first
--   sizes     the bytes counted for each (#payload + overhead)
--   maxbytes  the bound: what is kept counts at most this many bytes
--
-- With step = maxbytes / 16, a mark is pushed for the first entry and for
-- every entry that takes the total past a multiple of step (the entries of
-- one call are counted one by one, as if appended apart, with one HINCRBY
-- for all of them). Only then is the bound checked: the oldest mark after which at most maxbytes - step are
-- counted becomes the oldest one kept, the older ones go, and the stream is
-- trimmed to it (XTRIM MINID ~: whole stream nodes only, so up to one node
-- of older entries may stay). Between two checks less than one step is
-- added by calls that cross no step, so what is kept after a call counts at
-- most maxbytes, and right after a trim at least maxbytes - 2 * step - one
-- entry. The common call costs one HINCRBY; a check (once per step) an
-- RPUSH, an LRANGE of about 18 marks, an LTRIM and an XTRIM: O(1) amortised.
--
-- Keys created here take the stream's expiry, so none of them outlives the
-- transcript. A count that outlived its stream (evicted or deleted by hand)
-- does no harm: its marks name ids the stream no longer holds (trimming to
-- them removes nothing) and lie before its real start, so what is kept
-- still counts at most maxbytes.
local function bound_output(out, meta, marks, ids, sizes, maxbytes)
  local sum = 0
  for i = 1, #sizes do sum = sum + sizes[i] end
  local total = redis.call('HINCRBY', meta, 'bytes', sum)
  local before = total - sum
  local created = before == 0
  local step = math.max(1, math.floor(maxbytes / 16))
  local new = {}
  for i = 1, #ids do
    local after = before + sizes[i]
    if before == 0 or math.floor(before / step) ~= math.floor(after / step) then
      new[#new + 1] = ids[i] .. ' ' .. string.format('%.0f', before)
    end
    before = after
  end
  if #new > 0 then
    if redis.call('RPUSH', marks, unpack(new)) == #new then
      created = true
    end
    local list = redis.call('LRANGE', marks, 0, -1)
    local keep = #list -- the newest mark, if even it leaves too much (one huge entry)
    for i = 1, #list do
      local sp = string.find(list[i], ' ', 1, true)
      if total - tonumber(string.sub(list[i], sp + 1)) <= maxbytes - step then
        keep = i
        break
      end
    end
    if keep > 1 then
      redis.call('LTRIM', marks, keep - 1, -1)
      local head = list[keep]
      redis.call('XTRIM', out, 'MINID', '~', string.sub(head, 1, string.find(head, ' ', 1, true) - 1))
    end
  end
  if created then
    local ttl = redis.call('PTTL', out)
    if ttl > 0 then
      redis.call('PEXPIRE', meta, ttl)
      redis.call('PEXPIRE', marks, ttl)
    end
  end
end
