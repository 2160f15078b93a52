package worker

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/collectors"
	shared "github.com/trellis-mud/trellis/internal/metrics"

	"github.com/trellis-mud/trellis/store"
)

// metrics of one worker, on its own registry so several workers can live
// in one process (tests) without colliding in the global one.
type metrics struct {
	reg          *prometheus.Registry
	starts       prometheus.Counter
	restarts     prometheus.Counter
	failovers    prometheus.Counter
	ended        listedCounter // by state: endedStates
	renewSeconds prometheus.Histogram
	leasesLost   prometheus.Counter
	restored     prometheus.Counter
	selfFences   prometheus.Counter
	batchEntries prometheus.Histogram
	outputBytes  prometheus.Counter
	lostBytes    prometheus.Counter
	redisErrors  listedCounter // by op: redisOps
	inputDropped listedCounter // by reason: dropReasons
	msdpDropped  listedCounter // by reason: msdpDropReasons
}

// The label values of the labelled counters, one list per metric. Every
// value is exported at 0 from the start (a series that appears only with
// its first event reads as "no data" to rate() and to alerts, not as 0),
// and a value the code counts that is not listed here fails the tests
// (see listedCounter).
var (
	// endedStates: a session's final state (lifecycle.go's finish), "lost"
	// when its lease was gone and nothing could be written.
	endedStates = []string{store.StateDisconnected, store.StateFailed, store.StateDraining, "lost"}
	// redisOps: the Redis calls whose failures are counted, by the name
	// each call site gives.
	redisOps = []string{
		"get_session", "put_session", "delete_session", "keep_transcript", "expire_transcript",
		"release_lease", "renew_leases", "set_viewers", "set_mssp", "append_event",
		"append_output", "append_lost_gap", "subscribe_input", "receive_input", "read_inbox", "live_edges",
	}
	// dropReasons: why a line of player input was dropped (loops.go).
	dropReasons = []string{"malformed", "no_session", "stale_fence", "too_long", "not_connected"}
	// msdpDropReasons: why the engine dropped (the rest of) an MSDP block
	// from the game (msdpDropReason).
	msdpDropReasons = []string{"too_deep", "too_many", "malformed"}
)

// msdpDropReason sorts the engine's free-text reason for an
// EventMSDPDropped into msdpDropReasons: its bounds (nesting, element
// count) apart from everything else that broke the block's structure.
func msdpDropReason(reason string) string {
	switch {
	case strings.Contains(reason, "nested deeper than"):
		return "too_deep"
	case strings.Contains(reason, "names and values"):
		return "too_many"
	}
	return "malformed"
}

func newMetrics(sessions func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_session_starts_total", Help: "Game connections established (first connects, reconnects and failovers).",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_session_restarts_total", Help: "Game connections redialled after a failure.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_session_failovers_total", Help: "Sessions taken over from a worker that died or drained.",
		}),
		ended: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_sessions_ended_total", Help: "Sessions ended, by final state.",
		}, []string{"state"}), endedStates),
		renewSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trellis_worker_lease_renew_seconds", Help: "Latency of one batch renewal of all leases.",
			// Up to 26 s: a p99 approaching the lease TTL (10 s by default)
			// must be visible, not clipped at the top bucket.
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 18),
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_leases_lost_total", Help: "Leases found lost at renewal (their sessions were stopped).",
		}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_leases_restored_total",
			Help: "Live leases Redis had forgotten (writes lost in a failover or a restore) that a renewal restored with the same fence.",
		}),
		selfFences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_self_fences_total", Help: "Sessions stopped because lease renewal failed for longer than the TTL.",
		}),
		batchEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trellis_worker_output_batch_entries", Help: "Output entries written per Redis round trip.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		outputBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_output_bytes_total", Help: "Bytes of output text written to Redis.",
		}),
		lostBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_output_lost_bytes_total", Help: "Bytes of output dropped because a session's buffer overflowed while Redis was away.",
		}),
		redisErrors: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_redis_errors_total", Help: "Redis calls of the worker that failed, by operation.",
		}, []string{"op"}), redisOps),
		inputDropped: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_input_dropped_total", Help: "Player input dropped, by reason.",
		}, []string{"reason"}), dropReasons),
		msdpDropped: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_msdp_dropped_total", Help: "MSDP blocks from games cut short (the rest of the block dropped), by reason.",
		}, []string{"reason"}), msdpDropReasons),
	}
	m.reg.MustRegister(m.starts, m.restarts, m.failovers, m.ended, m.renewSeconds, m.leasesLost, m.restored,
		m.selfFences, m.batchEntries, m.outputBytes, m.lostBytes, m.redisErrors, m.inputDropped, m.msdpDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trellis_worker_sessions", Help: "Sessions running on this worker.",
		}, sessions),
		shared.BuildInfo(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// listedCounter and listed are internal/metrics's, under the names the
// label check in deploy/labels_test.go looks for.
type listedCounter = shared.Listed

func listed(vec *prometheus.CounterVec, values ...[]string) listedCounter {
	return shared.NewListed(vec, values...)
}
