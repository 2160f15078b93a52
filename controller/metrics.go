package controller

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	commands    *prometheus.CounterVec
	deadLetters prometheus.Counter
	claimed     prometheus.Counter
	forwarded   prometheus.Counter
	dropped     prometheus.Counter
	acquired    prometheus.Counter
	redisErrors prometheus.Counter
	lag         prometheus.Gauge
	pending     prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) metrics {
	m := metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_controller_commands_total",
			Help: "Control commands handled, by type and outcome (ok, retry, rejected).",
		}, []string{"type", "outcome"}),
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
