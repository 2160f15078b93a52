package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// Scripts on a cluster whose nodes lost their script caches: the first use
// of a script must reach only the nodes that run it. A hung replica cannot
// fail it, and an item that did run is not run again for another node's
// NOSCRIPT.

// spreadKeys returns n session keys of user whose tags cover every primary
// of c.
func spreadKeys(t *testing.T, c *redistest.Cluster, s *Store, user string, n int) []SessionKey {
	t.Helper()
	seen := map[string]bool{}
	var keys []SessionKey
	for i := 0; len(keys) < n || len(seen) < 3; i++ {
		if i > 10_000 {
			t.Fatalf("no %d keys over 3 primaries in %d tries", n, i)
		}
		k := SessionKey{User: user, Game: fmt.Sprint("g", i)}
		p, err := c.PrimaryFor(s.ks.lease(k))
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Addr] = true
		keys = append(keys, k)
	}
	return keys
}

func flushScripts(t *testing.T, nodes ...*redistest.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.Client(t).ScriptFlush(testContext(t)).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH on %s: %v", n, err)
		}
	}
}

func TestScriptFirstUseIgnoresAHungReplica(t *testing.T) {
	c := redistest.NewCluster(t, redistest.ClusterOptions{})
	rdb := c.Client(t)
	sent := &nodeCommands{n: map[string]int{}}
	rdb.OnNewNode(func(n *redis.Client) { n.AddHook(countHook{sent, n.Options().Addr}) })
	s := New(rdb)
	ctx := testContext(t)
	keys := spreadKeys(t, c, s, "hung", 9)
	var leases []Lease
	for i, k := range keys {
		l, err := s.AcquireLease(ctx, k, "w1", fmt.Sprint("s", i), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	// Every node forgets its scripts (a restart, a promoted replica that
	// never saw them), then the replicas hang.
	flushScripts(t, c.Nodes()...)
	primaries, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*redistest.Node
	for _, p := range primaries {
		rs, err := c.ReplicasOf(p)
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, rs...)
	}
	// The client knows the replicas before they hang, as a client that has
	// run for a while does. (A replica that has been down for the node
	// timeout leaves CLUSTER SLOTS, and then go-redis stops asking it.)
	// The client knows the replicas before they hang, as a client that has
	// run for a while does. (CLUSTER SLOTS lists a replica once the
	// cluster has gossiped its replication offset, and no longer once it
	// has been down for the node timeout; go-redis asks only those listed.)
	eventually(t, "the client knows every replica", func() bool {
		rdb.ReloadState(ctx)
		var reached atomic.Int32
		err := rdb.ForEachSlave(ctx, func(ctx context.Context, n *redis.Client) error {
			reached.Add(1)
			return n.Ping(ctx).Err()
		})
		return err == nil && int(reached.Load()) == len(replicas)
	})
	for _, r := range replicas {
		if err := r.Pause(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Resume() })
	}
	r, err := s.RenewLeases(ctx, leases, time.Minute, 0)
	if err != nil {
		t.Fatalf("renewal with the replicas hung: %v", err)
	}
	if len(r.Lost) != 0 || len(r.Restored) != 0 {
		t.Fatalf("renewal: lost %d, restored %d of %d; want all renewed", len(r.Lost), len(r.Restored), len(leases))
	}
	for _, r := range replicas {
		if n := sent.count(r.Addr); n > 0 {
			t.Errorf("the renewal sent %d script commands to replica %s; a hung replica would have held it for its read timeout (the worker's renewal budget ran out on one in the unreplicated failover drill)", n, r.Addr)
		}
	}
}

// nodeCommands counts the script commands (EVAL, EVALSHA, SCRIPT) a
// cluster client sends to each node; the client's own slot-map reads may go
// to any node and are not counted.
type nodeCommands struct {
	mu sync.Mutex
	n  map[string]int
}

func (nc *nodeCommands) count(addr string) int {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.n[addr]
}

func (nc *nodeCommands) add(addr string, n int) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	nc.n[addr] += n
}

// countHook is a redis.Hook counting for one node.
type countHook struct {
	nc   *nodeCommands
	addr string
}

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.nc.add(h.addr, scripts(cmd))
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			n += scripts(c)
		}
		h.nc.add(h.addr, n)
		return next(ctx, cmds)
	}
}

func scripts(cmd redis.Cmder) int {
	switch cmd.Name() {
	case "eval", "evalsha", "script":
		return 1
	}
	return 0
}

func TestScriptMissingOnOneNodeRunsEachItemOnce(t *testing.T) {
	c := redistest.NewCluster(t, redistest.ClusterOptions{Replicas: -1})
	rdb := c.Client(t)
	s := New(rdb)
	ctx := testContext(t)
	keys := spreadKeys(t, c, s, "once", 9)
	batch := func(text string) []Append {
		var b []Append
		for _, k := range keys {
			b = append(b, Append{Key: k, Out: Output{Kind: OutText, Text: text}})
		}
		return b
	}
	// The script is known everywhere, then one primary forgets it.
	if _, err := s.AppendOutputs(ctx, batch("first")); err != nil {
		t.Fatal(err)
	}
	primaries, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	flushScripts(t, primaries[0])
	res, err := s.AppendOutputs(ctx, batch("second"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("append %d (%s): %+v", i, keys[i], r)
		}
	}
	for _, k := range keys {
		n, err := rdb.XLen(ctx, s.ks.out(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%s: %d entries after two appends; want 2 (an item that ran was sent again for another node's NOSCRIPT)", k, n)
		}
	}
}
