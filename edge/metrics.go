package edge

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/collectors"
	shared "github.com/trellis-mud/trellis/internal/metrics"
	"github.com/trellis-mud/trellis/internal/wire"
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
	// badOutput counts output entries from Redis the edge could not
	// decode or turn into a frame: skipped, never sent half-made.
	badOutput prometheus.Counter
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
	// errorCodes: the error frames' codes (package wire).
	errorCodes = wire.ErrorCodes
	// closeCodes: the close codes the edge ends a WebSocket with, as the
	// decimal strings the label carries.
	closeCodes = closeLabels(wire.CloseCodes)
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
		badOutput: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_bad_output_total", Help: "Output entries read from Redis (live or from the stream) that could not be decoded or framed, and were skipped."}),
		inputLost: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_input_lost_total", Help: "Input lines relayed to a worker that never recorded them (the player was told), by why."}, []string{"why"}), inputLostWhys),
		inputUntracked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_input_untracked_total", Help: "Input lines forgotten unconfirmed because a browser had too many outstanding; their loss would go unreported."}),
	}
	m.reg.MustRegister(m.connections, m.refused, m.subscriptions, m.framesIn, m.framesOut, m.inputs,
		m.errors, m.closes, m.resyncs, m.failovers, m.redisErrors, m.badOutput, m.inputLost, m.inputUntracked,
		shared.BuildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// listedCounter and listed are internal/metrics's, under the names the
// label check in deploy/labels_test.go looks for.
type listedCounter = shared.Listed

func listed(vec *prometheus.CounterVec, values ...[]string) listedCounter {
	return shared.NewListed(vec, values...)
}

func closeLabels(codes []int) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = strconv.Itoa(c)
	}
	return out
}
