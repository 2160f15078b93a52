// Package store is the only package that knows Redis: every key, script and
// stream of Trellis is named and used here and nowhere else.
//
// The schema (see keys.go) is hash-tagged so that everything belonging to one
// (user, game) session lives in one Redis Cluster slot, and everything
// belonging to one worker in another:
//
//	trellis:ctl                     stream, group "workers": attach / detach / stop
//	trellis:ctl:dead                stream: control events that kept failing
//	trellis:{w:<worker>}:inbox      stream: commands for one worker (attach, detach, resize, stop)
//	trellis:{w:<worker>}:input      pub/sub channel: player input for one worker (never persisted)
//	trellis:{ug:<user>:<game>}:lease  hash + TTL: the ownership lease
//	trellis:{ug:<user>:<game>}:fence  counter: fences only go up, across expiry
//	trellis:{ug:<user>:<game>}:out    stream (bounded in bytes, MAXLEN ~ as a backstop) and pub/sub channel: output
//	trellis:{ug:<user>:<game>}:outmeta  hash: bytes counted for the output stream (its byte bound)
//	trellis:{ug:<user>:<game>}:outmarks list: trim points of the byte bound, "<id> <bytes before id>"
//	trellis:{ug:<user>:<game>}:gmcp   hash: last GMCP message per package
//	trellis:{ug:<user>:<game>}:msdp   hash: last MSDP value per variable
//	trellis:{ug:<user>:<game>}:session hash: what runs where
//	trellis:sessions                set: index of session records
//	trellis:games                   hash: game id -> JSON game
//	trellis:game:<id>:mssp          string + TTL: last MSSP report of a game
//	trellis:edge:<id>               string + TTL: an edge's heartbeat
//	trellis:events                  stream (MINID ~): lifecycle event log
//
// The Lua scripts are in lua/, embedded; each names its KEYS and ARGV at
// its top.
//
// Leases follow the fencing-token argument: acquiring one yields a fence that
// only ever goes up for its (user, game). Renewals, releases, output appends
// and player input all carry it; Lua scripts refuse stale fences for
// renewals, releases and appends, and the owning worker drops input with a
// stale fence.
//
// All calls take a context and return errors wrapped with what was being
// done; when Redis is unreachable they fail fast (the client's dial and read
// timeouts) and work again once it is back, with no restart.
package store
