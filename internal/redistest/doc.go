// Package redistest runs a real redis-server for tests: one per test
// package, on a free loopback port, with no persistence unless a test asks
// for AOF. Tests get clients on their own logical database, and can stop,
// kill and restart the server mid-test to exercise failure handling.
//
// Typical use:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		rdb := redistest.Client(t) // a fresh, empty database
//		...
//	}
//
// The server is killed with the test process even if the process dies
// (Linux parent-death signal), so a crashed test leaves no redis behind.
//
// # Redis Cluster
//
// StartCluster (NewCluster in a test, SharedCluster for one per test
// binary, stopped by Main) runs a real local Redis Cluster: by default 3
// primaries and 3 replicas, each a redis-server with cluster-enabled in its
// own temporary directory, on a free port and a free cluster bus port,
// joined by `redis-cli --cluster create`. It returns once every node
// reports cluster_state:ok, all agree on the owner of each of the 16384
// slots, and every replica has synced. That takes a little over 2 s: a
// Redis primary will not report cluster_state:ok in its first 2 s.
//
//	c := redistest.NewCluster(t, redistest.ClusterOptions{})
//	rdb := c.Client(t)                // *redis.ClusterClient, RESP2
//	cfg := store.Config{URL: c.URL()} // "127.0.0.1:p1,127.0.0.1:p2,..."
//	p, _ := c.PrimaryFor("some-key")  // who serves the key's slot now
//	np, _ := c.KillPrimary(p)         // SIGKILL, wait for the failover
//	rdb.ReloadState(ctx)              // go-redis does not notice by itself
//	_ = c.Restart(p)                  // back, as a replica of np
//	_ = c.MoveSlot(redistest.Slot("some-key"), p2) // live, keys included
//
// A cluster has only database 0: tests that share one isolate with
// FlushAll, or with their own key prefixes when they run in parallel. Tests
// that kill nodes or move slots should own their cluster (NewCluster).
package redistest
