package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	shared "github.com/trellis-mud/trellis/internal/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// Every test of the package fails on a label value the lists in metrics.go
// do not hold.
func init() {
	shared.Unlisted = func(metric, label, value string) {
		panic(fmt.Sprintf("metric %s counted %s=%q, which is not in its list in controller/metrics.go: list it there", metric, label, value))
	}
}

// A fresh controller exports every (type, outcome) pair of its commands,
// and its unlabelled counters (dead letters...), at 0.
func TestLabelledCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			got[f.GetName()+"{"+strings.Join(parts, ",")+"}"] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	var want []string
	for _, typ := range commandTypes {
		for _, out := range commandOutcomes {
			want = append(want, fmt.Sprintf("trellis_controller_commands_total{outcome=%q,type=%q}", out, typ))
		}
	}
	for _, name := range []string{"dead_letters_total", "claimed_total", "forwarded_total", "forwarded_dropped_total",
		"leases_acquired_total", "redis_errors_total"} {
		want = append(want, "trellis_controller_"+name+"{}")
	}
	for _, w := range want {
		if n, ok := got[w]; !ok || n != 0 {
			t.Errorf("%s: %v (exported: %t), want 0", w, n, ok)
		}
	}
	var commands int
	for k := range got {
		if strings.HasPrefix(k, "trellis_controller_commands_total{") {
			commands++
		}
	}
	if commands != len(commandTypes)*len(commandOutcomes) {
		t.Errorf("%d command series, want the %d listed pairs", commands, len(commandTypes)*len(commandOutcomes))
	}
}

// outcome only returns listed outcomes.
func TestOutcomesAreListed(t *testing.T) {
	for _, err := range []error{nil, fmt.Errorf("%w: no", errPermanent), errors.New("redis away")} {
		if o := outcome(err); !slices.Contains(commandOutcomes, o) {
			t.Errorf("outcome(%v) = %q, not in %v", err, o, commandOutcomes)
		}
	}
}

func TestUnlistedLabelValueIsReported(t *testing.T) {
	m := newMetrics(nil)
	m.commands.WithLabelValues("attach", "ok").Inc()
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		m.commands.WithLabelValues("attach", "okay").Inc()
		return ""
	}()
	if !strings.Contains(msg, "trellis_controller_commands_total") || !strings.Contains(msg, `outcome="okay"`) {
		t.Fatalf("an unlisted outcome was not reported: %q", msg)
	}
}
