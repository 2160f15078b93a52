package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	shared "github.com/trellis-mud/trellis/internal/metrics"

	"github.com/trellis-mud/trellis/store"
)

type metrics struct {
	commands    listedCounter // by type (commandTypes) and outcome (commandOutcomes)
	deadLetters prometheus.Counter
	claimed     prometheus.Counter
	forwarded   prometheus.Counter
	dropped     prometheus.Counter
	acquired    prometheus.Counter
	redisErrors prometheus.Counter
	lag         prometheus.Gauge
	pending     prometheus.Gauge
}

// The label values of trellis_controller_commands_total. Every pair is
// exported at 0 from the start (a series that appears only with its first
// event reads as "no data" to rate() and to alerts, not as 0), and a value
// the code counts that is not listed here fails the tests (see
// listedCounter).
var (
	// commandTypes: the commands of the control path (Handle). Another
	// type the store accepts (input, gmcp) on the control stream is
	// rejected, and counted in a series of its own from then on.
	commandTypes = []string{string(store.CmdAttach), string(store.CmdDetach), string(store.CmdStop), string(store.CmdResize)}
	// commandOutcomes: outcome's results, and "expired" for a command
	// older than MaxAge.
	commandOutcomes = []string{"ok", "retry", "rejected", "expired"}
)

func newMetrics(r prometheus.Registerer) metrics {
	m := metrics{
		commands: listed(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_controller_commands_total",
			Help: "Control commands handled, by type and outcome (ok, retry, rejected, expired).",
		}, []string{"type", "outcome"}), commandTypes, commandOutcomes),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_dead_letters_total",
			Help: "Control entries moved to the dead-letter stream.",
		}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_claimed_total",
			Help: "Control entries claimed from idle consumers (XAUTOCLAIM).",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_forwarded_total",
			Help: "Commands forwarded to the inbox of the worker holding the lease.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_forwarded_dropped_total",
			Help: "Forwarded commands dropped because the session had moved again.",
		}),
		acquired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_leases_acquired_total",
			Help: "Leases acquired to start sessions.",
		}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_controller_redis_errors_total",
			Help: "Redis calls of the controller that failed.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_controller_stream_lag",
			Help: "Control entries not yet delivered to any worker (last sample).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_controller_stream_pending",
			Help: "Control entries delivered but not acknowledged (last sample).",
		}),
	}
	if r != nil {
		r.MustRegister(m.commands, m.deadLetters, m.claimed, m.forwarded, m.dropped,
			m.acquired, m.redisErrors, m.lag, m.pending)
	}
	return m
}

// listedCounter and listed are internal/metrics's, under the names the
// label check in deploy/labels_test.go looks for.
type listedCounter = shared.Listed

func listed(vec *prometheus.CounterVec, values ...[]string) listedCounter {
	return shared.NewListed(vec, values...)
}
