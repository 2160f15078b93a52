package bench

import (
	"time"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/internal/config"
	"github.com/trellis-mud/trellis/worker"
)

// edgeHeartbeat is how often an edge refreshes its heartbeat key
// (edge/server.go, heartbeatEvery; not configurable).
const edgeHeartbeat = 5 * time.Second

// maxCostWindow bounds costWindow: settings whose periods share no small
// multiple would make every cost window minutes long.
const maxCostWindow = time.Minute

// costWindow is the period over which the stack's own periodic Redis work
// repeats as a whole with the components' defaults, which every stack the
// bench starts keeps for these settings: a lease renewal round each
// LeaseTTL/3 (three per TTL), the worker's viewer check, the edge's lease
// check and heartbeat. A window of a whole number of such periods holds
// the same number of rounds of each wherever it starts (10 s with the
// defaults: 3 renewal rounds, 5 lease checks, 2 heartbeats, 1 viewer
// check), so the background measured over one of them is what the others
// contain. The worker's blocking reads (a slice of at most 500 ms each)
// divide it too.
func costWindow() time.Duration {
	var wc worker.Config
	wc.SetDefaults()
	var ec edge.Config
	config.SetDefaults(&ec)
	return periodOf(maxCostWindow, wc.LeaseTTL, wc.ViewerCheck, ec.LeaseCheck, edgeHeartbeat)
}

// periodOf is the least common multiple of periods, counted in
// milliseconds, or limit when it is longer than that.
func periodOf(limit time.Duration, periods ...time.Duration) time.Duration {
	l := int64(1)
	for _, p := range periods {
		ms := p.Milliseconds()
		if ms <= 0 {
			continue
		}
		l = l / gcd(l, ms) * ms
		if time.Duration(l)*time.Millisecond > limit {
			return limit
		}
	}
	return time.Duration(l) * time.Millisecond
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
