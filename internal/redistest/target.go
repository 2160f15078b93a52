package redistest

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// ModeEnv selects the Redis the suites run on: unset or "single" for a
// single node (each test gets a logical database of its own), "cluster"
// for the shared local cluster (3 primaries, 3 replicas), where there is
// only database 0 and each test gets a namespace of its own instead.
// `make test` runs the Redis-backed suites once in each mode.
const ModeEnv = "TRELLIS_TEST_REDIS"

// ClusterMode reports whether this test binary runs on the cluster.
func ClusterMode() bool { return strings.EqualFold(os.Getenv(ModeEnv), "cluster") }

// Target is one test's share of Redis: a client, the URL a component's
// TRELLIS_REDIS_URL takes, and the namespace (TRELLIS_REDIS_NAMESPACE) that
// keeps it apart from the other tests on the same server.
type Target struct {
	Client    redis.UniversalClient
	URL       string
	Namespace string
	Cluster   bool
}

var nsSeq atomic.Int64

// Isolated returns a fresh share of the mode's Redis for one test: on a
// single node a flushed logical database and the default namespace
// "trellis", on the cluster a namespace no other test uses.
func Isolated(tb testing.TB) Target {
	tb.Helper()
	if !ClusterMode() {
		srv := Shared(tb)
		rdb := srv.Client(tb)
		return Target{Client: rdb, URL: srv.URL(rdb.Options().DB), Namespace: "trellis"}
	}
	c := SharedCluster(tb)
	ns := fmt.Sprintf("t%d-%d", os.Getpid(), nsSeq.Add(1))
	return Target{Client: c.Client(tb), URL: c.URL(), Namespace: ns, Cluster: true}
}
