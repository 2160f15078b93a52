package redistest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// URL is what TRELLIS_REDIS_URL takes for a cluster: store.Connect makes a
// cluster client of it that reaches every primary.
func TestClusterURLForStore(t *testing.T) {
	c := redistest.SharedCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rdb, err := store.Connect(store.Config{URL: c.URL(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("store.Connect(%q) made a %T, want a cluster client", c.URL(), rdb)
	}
	var primaries atomic.Int32 // ForEachMaster calls fn concurrently
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		primaries.Add(1)
		return n.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	if got := primaries.Load(); got != 3 {
		t.Errorf("the store's client sees %d primaries, want 3", got)
	}
	for i := range 50 {
		k := fmt.Sprintf("store-url:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
