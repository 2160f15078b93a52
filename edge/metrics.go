package edge

import (
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
	errors        *prometheus.CounterVec
	closes        *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	failovers     prometheus.Counter
	redisErrors   prometheus.Counter
	// inputLost counts lines reported lost, by why (stopped, timeout);
	// inputUntracked the lines forgotten past maxOutstanding, whose loss
	// could not be reported.
	inputLost      *prometheus.CounterVec
	inputUntracked prometheus.Counter
}

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
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_error_frames_total", Help: "Error frames sent, by code."}, []string{"code"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_closes_total", Help: "Connections closed by the edge, by close code."}, []string{"code"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_resyncs_total", Help: "Stream re-reads after lost live messages, by cause."}, []string{"cause"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_failover_attaches_total", Help: "Attaches re-published by the watchdog after a lease vanished or changed."}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_redis_errors_total", Help: "Failed Redis calls."}),
		inputLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_edge_input_lost_total", Help: "Input lines relayed to a worker that never recorded them (the player was told), by why."}, []string{"why"}),
		inputUntracked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_edge_input_untracked_total", Help: "Input lines forgotten unconfirmed because a browser had too many outstanding; their loss would go unreported."}),
	}
	m.reg.MustRegister(m.connections, m.refused, m.subscriptions, m.framesIn, m.framesOut, m.inputs,
		m.errors, m.closes, m.resyncs, m.failovers, m.redisErrors, m.inputLost, m.inputUntracked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
