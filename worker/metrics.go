package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics of one worker, on its own registry so several workers can live
// in one process (tests) without colliding in the global one.
type metrics struct {
	reg          *prometheus.Registry
	starts       prometheus.Counter
	restarts     prometheus.Counter
	failovers    prometheus.Counter
	ended        *prometheus.CounterVec
	renewSeconds prometheus.Histogram
	leasesLost   prometheus.Counter
	selfFences   prometheus.Counter
	batchEntries prometheus.Histogram
	outputBytes  prometheus.Counter
	lostBytes    prometheus.Counter
	redisErrors  *prometheus.CounterVec
	inputDropped *prometheus.CounterVec
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
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_sessions_ended_total", Help: "Sessions ended, by final state.",
		}, []string{"state"}),
		renewSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trellis_worker_lease_renew_seconds", Help: "Latency of one batch renewal of all leases.",
			// Up to 26 s: a p99 approaching the lease TTL (10 s by default)
			// must be visible, not clipped at the top bucket.
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 18),
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_worker_leases_lost_total", Help: "Leases found lost at renewal (their sessions were stopped).",
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
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_redis_errors_total", Help: "Redis calls of the worker that failed, by operation.",
		}, []string{"op"}),
		inputDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_worker_input_dropped_total", Help: "Player input dropped, by reason.",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(m.starts, m.restarts, m.failovers, m.ended, m.renewSeconds, m.leasesLost,
		m.selfFences, m.batchEntries, m.outputBytes, m.lostBytes, m.redisErrors, m.inputDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trellis_worker_sessions", Help: "Sessions running on this worker.",
		}, sessions),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
