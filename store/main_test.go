package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// Every test runs against a real redis-server (see internal/redistest); none
// mocks Redis, because the store's correctness lives in Lua scripts and
// stream semantics that only Redis itself can check.
func TestMain(m *testing.M) { redistest.Main(m) }

// newStore returns a store on a fresh share of the suite's Redis (a
// logical database of a single node, or a namespace of the local cluster:
// see redistest.ModeEnv), and the raw client for checks the store's API
// does not expose.
func newStore(t *testing.T, opts ...Option) (*Store, redis.UniversalClient) {
	t.Helper()
	tgt := redistest.Isolated(t)
	return New(tgt.Client, append([]Option{WithNamespace(tgt.Namespace)}, opts...)...), tgt.Client
}

// testContext bounds every Redis call of a test, so that a bug that hangs
// fails the test instead of the whole run.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after a bounded
// number of tries. It is for states that only time brings (expiry, idle
// times); it never asserts how long they took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if i >= 2000 || time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %d tries", what, i+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clock is a settable time source for WithClock, safe for concurrent use.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }

func (c *clock) Now() time.Time  { return *c.now.Load() }
func (c *clock) Set(t time.Time) { c.now.Store(&t) }

// redistestClient is redistest.Client for benchmarks.
func redistestClient(tb testing.TB) *redis.Client { return redistest.Client(tb) }

// namespaceKeys lists the keys of s's namespace on every node (KEYS per
// primary on a cluster, where KEYS sees one node only).
func namespaceKeys(t *testing.T, s *Store, rdb redis.UniversalClient) []string {
	t.Helper()
	ctx := testContext(t)
	pattern := s.Namespace() + ":*"
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var (
		mu   sync.Mutex
		keys []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
