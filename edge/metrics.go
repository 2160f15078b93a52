package edge

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the edge's Prometheus series, on a registry of its own so
// tests can run several edges in one process.
type metrics struct {
	reg           *prometheus.Registry
	connections   prometheus.Gauge
	refused       prometheus.Counter
	subscriptions prometheus.Gauge
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	inputs        prometheus.Counter
	errors        listedCounter // by code: errorCodes
	closes        listedCounter // by code: closeCodes
	resyncs       listedCounter // by cause: resyncCauses
	failovers     prometheus.Counter
	redisErrors   prometheus.Counter
	// inputLost counts lines reported lost, by why (inputLostWhys);
	// inputUntracked the lines forgotten past maxOutstanding, whose loss
	// could not be reported.
	inputLost      listedCounter
	inputUntracked prometheus.Counter
}

// The label values of the labelled counters, one list per metric. Every
// value is exported at 0 from the start (a series that appears only with
// its first event reads as "no data" to rate() and to alerts, not as 0),
// and a value the code counts that is not listed here fails the tests
// (see listedCounter).
var (
	// errorCodes: the error frames' codes (protocol.go).
	errorCodes = []string{
		ErrBadRequest, ErrUnknownGame, ErrUnauthorized, ErrTooManySessions, ErrRateLimited,
		ErrLineTooLong, ErrNoSession, ErrInputLost, ErrInternal,
	}
	// closeCodes: the close codes the edge ends a WebSocket with
	// (protocol.go), as the decimal strings the label carries.
	closeCodes = []string{
		strconv.Itoa(CloseGoingAway), strconv.Itoa(CloseInternal), strconv.Itoa(CloseMessageTooBig),
		strconv.Itoa(CloseProtocol), strconv.Itoa(CloseUnauthorized), strconv.Itoa(CloseUnknownGame),
		strconv.Itoa(CloseTooSlow), strconv.Itoa(CloseTooManySession),
	}
	// resyncCauses: why a stream was re-read. "reconnect" is counted once
	// per pub/sub reconnection by the hub and once per viewer that re-read;
	// "input_check" is the re-read after a lease went, before reporting
	// lost input; "seq_hole" a hole in the sequence numbers of live
	// output; "position_lost" a stream found shorter than the position
	// the browser had.
	resyncCauses = []string{"reconnect", "input_check", "seq_hole", "position_lost"}
	// inputLostWhys: input.go's lost* reasons.
	inputLostWhys = []string{lostStopped, lostEnded, lostTimeout}
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_edge_connections", Help: "Open browser WebSocket connections."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_connections_refused_total", Help: "WebSocket upgrades refused because the edge held TRELLIS_EDGE_MAX_CONNECTIONS."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_edge_subscriptions", Help: "Session output channels subscribed on the shared pub/sub connection."}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_frames_received_total", Help: "Frames received from browsers."}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_frames_sent_total", Help: "Frames sent to browsers."}),
		inputs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_inputs_total", Help: "Input lines and GMCP messages relayed to workers."}),
		errors: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_error_frames_total", Help: "Error frames sent, by code."}, []string{"code"}), errorCodes),
		closes: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_closes_total", Help: "Connections closed by the edge, by close code."}, []string{"code"}), closeCodes),
		resyncs: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_resyncs_total", Help: "Stream re-reads after lost live messages, by cause."}, []string{"cause"}), resyncCauses),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_failover_attaches_total", Help: "Attaches re-published by the watchdog after a lease vanished or changed."}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_redis_errors_total", Help: "Failed Redis calls."}),
		inputLost: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_input_lost_total", Help: "Input lines relayed to a worker that never recorded them (the player was told), by why."}, []string{"why"}), inputLostWhys),
		inputUntracked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_input_untracked_total", Help: "Input lines forgotten unconfirmed because a browser had too many outstanding; their loss would go unreported."}),
	}
	m.reg.MustRegister(m.connections, m.refused, m.subscriptions, m.framesIn, m.framesOut, m.inputs,
		m.errors, m.closes, m.resyncs, m.failovers, m.redisErrors, m.inputLost, m.inputUntracked,
		newBuildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// listedCounter is a CounterVec whose label values are listed up front:
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

// buildInfo is what trellis_build_info says of the running binary.
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
