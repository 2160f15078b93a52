package worker

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	selfFences   prometheus.Counter
	batchEntries prometheus.Histogram
	outputBytes  prometheus.Counter
	lostBytes    prometheus.Counter
	redisErrors  listedCounter // by op: redisOps
	inputDropped listedCounter // by reason: dropReasons
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
)

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
	}
	m.reg.MustRegister(m.starts, m.restarts, m.failovers, m.ended, m.renewSeconds, m.leasesLost,
		m.selfFences, m.batchEntries, m.outputBytes, m.lostBytes, m.redisErrors, m.inputDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trellis_worker_sessions", Help: "Sessions running on this worker.",
		}, sessions),
		newBuildInfo(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// listedCounter is a CounterVec whose label values are listed up front
// (the same as edge/metrics.go's: keep the copies alike):
// listed creates every combination at 0, and WithLabelValues hands a value
// outside the lists to unlistedLabel before counting it anyway.
type listedCounter struct {
	*prometheus.CounterVec
	name   string
	labels []string
	values [][]string // per label, its values
}

// unlistedLabel is told of a label value counted that is not in its
// metric's list. Nil in production (the value is counted, in a series that
// appears with its first event); the package's tests make it panic, so a
// new or misspelt value fails every test that reaches it.
var unlistedLabel func(metric, label, value string)

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// listed wraps vec, with values[i] the values of its i-th label, and
// creates every combination of them at 0.
func listed(vec *prometheus.CounterVec, values ...[]string) listedCounter {
	ch := make(chan *prometheus.Desc, 1)
	vec.Describe(ch)
	desc := (<-ch).String()
	l := listedCounter{CounterVec: vec, values: values}
	if m := descName.FindStringSubmatch(desc); m != nil {
		l.name = m[1]
	}
	if m := descLabels.FindStringSubmatch(desc); m != nil && m[1] != "" {
		l.labels = strings.Split(m[1], ",")
	}
	if len(l.labels) != len(values) {
		panic(fmt.Sprintf("metric %s: %d labels %v, %d value lists", l.name, len(l.labels), l.labels, len(values)))
	}
	combos := [][]string{nil}
	for _, vs := range values {
		var next [][]string
		for _, c := range combos {
			for _, v := range vs {
				next = append(next, append(slices.Clip(c), v))
			}
		}
		combos = next
	}
	for _, c := range combos {
		vec.WithLabelValues(c...).Add(0)
	}
	return l
}

// WithLabelValues is the CounterVec's, after checking the values against
// the lists.
func (l listedCounter) WithLabelValues(lvs ...string) prometheus.Counter {
	if hook := unlistedLabel; hook != nil {
		for i, v := range lvs {
			if i < len(l.values) && !slices.Contains(l.values[i], v) {
				hook(l.name, l.labels[i], v)
			}
		}
	}
	return l.CounterVec.WithLabelValues(lvs...)
}

// buildInfo is what trellis_build_info says of the running binary (the
// same as edge/metrics.go's: keep the copies alike).
type buildInfo struct{ version, revision, goVersion string }

// readBuildInfo reads the binary's build information: the main module's
// version ("devel" for a build from a work tree without a version), the
// VCS revision ("unknown" when the build did not stamp one: a build
// outside the repository, or with -buildvcs=false) and the Go version.
func readBuildInfo(bi *debug.BuildInfo, ok bool) buildInfo {
	out := buildInfo{version: "devel", revision: "unknown", goVersion: runtime.Version()}
	if !ok || bi == nil {
		return out
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		out.version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			out.revision = s.Value
		}
	}
	if bi.GoVersion != "" {
		out.goVersion = bi.GoVersion
	}
	return out
}

// newBuildInfo is trellis_build_info: always 1, with the build in its
// labels, so a dashboard can tell which version each process runs.
func newBuildInfo() prometheus.Collector {
	b := readBuildInfo(debug.ReadBuildInfo())
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trellis_build_info", Help: "Always 1; the labels say which build of Trellis this process runs.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(b.version, b.revision, b.goVersion).Set(1)
	return g
}
