package store

import (
	"context"
	_ "embed"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file each, every file naming its KEYS
// and ARGV at its top. Each touches only keys of one hash tag, so they run
// unchanged on Redis Cluster. Time comes from the caller (milliseconds) to
// keep scripts deterministic for replication.
var (
	//go:embed lua/output_bound.lua
	outputBoundLua string
	//go:embed lua/append.lua
	appendLua string
	//go:embed lua/lost_gap.lua
	lostGapLua string
	//go:embed lua/acquire.lua
	acquireLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/delete_session.lua
	deleteSessionLua string
	//go:embed lua/set_viewers.lua
	setViewersLua string
)

var (
	// appendScript: see lua/append.lua (and output.go, AppendOutputs).
	appendScript = redis.NewScript(outputBoundLua + appendLua)
	// lostGapScript: see lua/lost_gap.lua (and output.go, AppendLostGap).
	lostGapScript = redis.NewScript(outputBoundLua + lostGapLua)
	// The same two publishing with SPUBLISH, for Redis Cluster (see
	// Store.sharded). A script may SPUBLISH on a channel of the slot of its
	// keys, and the output channel has the stream's name. Made from the
	// same files, so the two cannot drift apart.
	appendShardedScript  = redis.NewScript(shardedPublish(outputBoundLua + appendLua))
	lostGapShardedScript = redis.NewScript(shardedPublish(outputBoundLua + lostGapLua))
	// acquireScript: see lua/acquire.lua.
	acquireScript = redis.NewScript(acquireLua)
	// renewScript: see lua/renew.lua.
	renewScript = redis.NewScript(renewLua)
	// releaseScript: see lua/release.lua.
	releaseScript = redis.NewScript(releaseLua)
	// deleteSessionScript: see lua/delete_session.lua.
	deleteSessionScript = redis.NewScript(deleteSessionLua)
	// setViewersScript: see lua/set_viewers.lua.
	setViewersScript = redis.NewScript(setViewersLua)
)

// evalBatch runs script once per item in one pipelined round trip. Scripts
// are called by hash (EVALSHA). An item a node answers NOSCRIPT for (first
// use, or that node restarted or was promoted and lost its cache) did not
// run, so it alone is sent again, with the script's body (EVAL): the node
// it goes to caches the script, and only that node is asked.
//
// Not Script.Load: on a cluster go-redis loads a script on every node,
// replicas included, and waits for all of them. One replica that hangs
// (paused, overloaded, partitioned) then fails every first use of a script
// on the whole cluster for the read timeout: the unreplicated failover
// drill's first lease renewal waited out its budget on the replica the drill
// had paused, and the worker self-fenced.
//
// The caller reads each command's own result: a failed item does not fail
// the batch, only a failed round trip does.
func (s *Store) evalBatch(ctx context.Context, script *redis.Script, n int, item func(i int) (keys []string, args []any)) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, n)
	for i := range n {
		keys, args := item(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	_, err := pipe.Exec(ctx)
	if missing := noScript(cmds); len(missing) > 0 {
		pipe := s.rdb.Pipeline()
		for _, i := range missing {
			keys, args := item(i)
			cmds[i] = script.Eval(ctx, pipe, keys, args...)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil && !isCommandError(cmds) {
		return nil, err
	}
	return cmds, nil
}

// noScript lists the items Redis answered NOSCRIPT for.
func noScript(cmds []*redis.Cmd) []int {
	var missing []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	return missing
}

// isCommandError reports whether the pipeline reached Redis and every
// failure is a reply from Redis about one command (so the round trip itself
// worked), as opposed to a network failure that leaves every result unknown.
func isCommandError(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		err := c.Err()
		if err == nil || errors.Is(err, redis.Nil) {
			continue
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) || clusterInFlux(err) {
			return false
		}
	}
	return true
}

// clusterInFlux recognises the replies of a cluster that is moving a slot
// or electing a primary (READONLY: the write reached a node that is a
// replica now): the command was not run, and will be once the cluster
// settles and the slot map is read again. Like a network failure, they say nothing about the
// command, so the caller retries (the worker buffers its output, a lease
// renewal is retried) instead of taking them for an answer: a TRYAGAIN
// taken for an answer dropped output entries and stopped sessions as if
// their lease were lost during a resharding (the reshard drill).
func clusterInFlux(err error) bool {
	msg := err.Error()
	for _, p := range []string{"TRYAGAIN", "ASK ", "MOVED ", "CLUSTERDOWN", "MASTERDOWN", "LOADING", "READONLY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// shardedPublish turns a script's one PUBLISH into SPUBLISH.
func shardedPublish(src string) string {
	const plain, sharded = "redis.call('PUBLISH', ", "redis.call('SPUBLISH', "
	if strings.Count(src, plain) != 1 {
		panic("store: a publishing script must PUBLISH exactly once, as " + plain)
	}
	return strings.Replace(src, plain, sharded, 1)
}

func (s *Store) appendScriptFor() *redis.Script {
	if s.sharded {
		return appendShardedScript
	}
	return appendScript
}

func (s *Store) lostGapScriptFor() *redis.Script {
	if s.sharded {
		return lostGapShardedScript
	}
	return lostGapScript
}
