package store

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// A URL of the wrong kind is refused with what to write instead; a Redis
// that is merely down is not refused (components wait for it); the test's
// context bounds the check, so one that hung would fail.
func TestCheckTopology(t *testing.T) {
	t.Parallel()
	single := redistest.Shared(t)
	cluster := redistest.SharedCluster(t)
	open := func(url string) *Store {
		t.Helper()
		st, err := Open(Config{URL: url, DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, url, want string
	}{
		{"single node", single.URL(0), ""},
		{"cluster", cluster.URL(), ""},
		{"one cluster node as a single URL", "redis://" + cluster.Addrs()[0], "list the cluster's nodes"},
		{"a node list naming a single node", single.Addr + "," + single.Addr, "cluster support disabled"},
		{"single node down", "redis://" + down, ""},
		{"cluster nodes down", down + "," + down, ""},
		{"a cluster whose first seed is down", down + "," + cluster.URL(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := open(tc.url)
			err := st.CheckTopology(ctx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckTopology(%s) = %v, want nil", tc.url, err)
				}
			} else if !errors.Is(err, ErrTopology) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "TRELLIS_REDIS_URL") {
				t.Fatalf("CheckTopology(%s) = %v, want ErrTopology naming TRELLIS_REDIS_URL and %q", tc.url, err, tc.want)
			}
			// A seed that is down is no obstacle while another answers.
			if tc.url == down+","+cluster.URL() {
				if err := st.Ping(ctx); err != nil {
					t.Fatalf("ping with the first seed down: %v", err)
				}
			}
		})
	}
}
