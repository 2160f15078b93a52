package main

import (
	"strings"
	"testing"
)

// The topology flags are judged before anything starts: a bad one is a
// usage error (exit 2) naming the flag, and no Redis is launched.
func TestBenchTopologyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--redis", "cluster:0"}, "--redis"},
		{[]string{"bench", "--redis", "sentinel"}, "--redis"},
		{[]string{"bench", "--cluster", "--cluster-modes", "cluster:1,cluster:1"}, "--cluster-modes"},
		{[]string{"bench", "--cluster", "--cluster-modes", ""}, "--cluster-modes"},
		{[]string{"bench", "--cluster", "--quick"}, "--quick"},
		{[]string{"bench", "--url", "ws://127.0.0.1:1/ws", "--redis", "cluster:3"}, "--redis-url"},
		{[]string{"bench", "--url", "ws://127.0.0.1:1/ws", "--cluster"}, "--redis-url"},
		{[]string{"bench", "--procs", "--url", "ws://127.0.0.1:1/ws"}, "--procs"},
		{[]string{"bench", "--procs", "--redis", "cluster:3"}, "--procs"},
		{[]string{"bench", "--procs", "--cluster"}, "--procs"},
		{[]string{"bench", "--serve-proxy", "127.0.0.1:0"}, "--game-addr"},
		{[]string{"bench", "--cluster", "--redis-cpu", "0"}, "--redis-cpu"},
		{[]string{"bench", "--cluster", "--redis-cpu", "abc"}, "--redis-cpu"},
		{[]string{"bench", "--cluster", "--redis-cpu", "100"}, "--redis-cpu"},
		{[]string{"bench", "--cluster", "--cluster-modes", "cluster:1@0"}, "--cluster-modes"},
		{[]string{"bench", "--procs", "--redis-cpu", "0.1"}, "--redis-cpu"},
		{[]string{"bench", "--url", "ws://127.0.0.1:1/ws", "--redis-cpu", "0.1"}, "--redis-cpu"},
	} {
		code, out := run(t, tc.args...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, want 2 and a message naming %s:\n%s", tc.args, code, tc.want, out)
		}
	}
}
