package controller

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

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
