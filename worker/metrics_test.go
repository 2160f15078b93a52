package worker

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	shared "github.com/trellis-mud/trellis/internal/metrics"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Every test of the package fails on a label value the lists in metrics.go
// do not hold: a misspelt or new value must be listed (and so exported at
// 0) before it is counted.
func init() {
	shared.Unlisted = func(metric, label, value string) {
		panic(fmt.Sprintf("metric %s counted %s=%q, which is not in its list in worker/metrics.go: list it there", metric, label, value))
	}
}

// series returns the samples of family name in g as "{k="v",...} ->
// value", labels in name order; nil if the family is absent.
func series(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		out := map[string]float64{}
		for _, s := range f.GetMetric() {
			var parts []string
			for _, l := range s.GetLabel() {
				parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := s.GetCounter().GetValue()
			if f.GetType() == dto.MetricType_GAUGE {
				v = s.GetGauge().GetValue()
			}
			out["{"+strings.Join(parts, ",")+"}"] = v
		}
		return out
	}
	return nil
}

// A fresh worker exports every listed series of its labelled counters at
// 0, and nothing else: "no series" reads as "no data" to rate() and to an
// alert, which then cannot tell a quiet worker from a broken scrape.
func TestLabelledCountersStartAtZero(t *testing.T) {
	m := newMetrics(func() float64 { return 0 })
	for _, c := range []struct {
		name, label string
		values      []string
	}{
		{"trellis_worker_sessions_ended_total", "state", endedStates},
		{"trellis_worker_redis_errors_total", "op", redisOps},
		{"trellis_worker_input_dropped_total", "reason", dropReasons},
		{"trellis_worker_msdp_dropped_total", "reason", msdpDropReasons},
	} {
		got := series(t, m.reg, c.name)
		if got == nil {
			t.Errorf("%s: not exported by a fresh worker", c.name)
			continue
		}
		for _, v := range c.values {
			key := fmt.Sprintf("{%s=%q}", c.label, v)
			if n, ok := got[key]; !ok || n != 0 {
				t.Errorf("%s%s: %v (exported: %t), want 0", c.name, key, n, ok)
			}
		}
		if len(got) != len(c.values) {
			t.Errorf("%s: %d series, want the %d listed: %v", c.name, len(got), len(c.values), got)
		}
		s := slices.Clone(c.values)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(c.values) {
			t.Errorf("%s: the list repeats a value: %v", c.name, c.values)
		}
	}
}

// A value outside the list reaches shared.Unlisted (which the tests make
// panic).
func TestUnlistedLabelValueIsReported(t *testing.T) {
	m := newMetrics(func() float64 { return 0 })
	m.redisErrors.WithLabelValues("renew_leases").Inc()
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		m.redisErrors.WithLabelValues("renew_lease").Inc()
		return ""
	}()
	if !strings.Contains(msg, "trellis_worker_redis_errors_total") || !strings.Contains(msg, `op="renew_lease"`) {
		t.Fatalf("a misspelt op was not reported: %q", msg)
	}
}

// trellis_build_info is 1 on the worker's registry, labelled with the
// build; the fallbacks cover a binary without build information or VCS
// stamps.
func TestBuildInfo(t *testing.T) {
	m := newMetrics(func() float64 { return 0 })
	got := series(t, m.reg, "trellis_build_info")
	b := shared.ReadBuild(debug.ReadBuildInfo())
	want := fmt.Sprintf("{go_version=%q,revision=%q,version=%q}", b.GoVersion, b.Revision, b.Version)
	if len(got) != 1 || got[want] != 1 {
		t.Fatalf("trellis_build_info = %v, want %s 1", got, want)
	}
	if b.Version == "" || b.Revision == "" || b.GoVersion == "" {
		t.Errorf("empty build label: %+v", b)
	}
	for _, c := range []struct {
		bi   *debug.BuildInfo
		ok   bool
		want shared.Build
	}{
		{nil, false, shared.Build{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}},
		{&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}}, true,
			shared.Build{Version: "devel", Revision: "unknown", GoVersion: "go1.26.1"}},
		{&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "e1e5f43abc"},
		}}, true, shared.Build{Version: "v1.4.0", Revision: "e1e5f43abc", GoVersion: "go1.26.1"}},
	} {
		if got := shared.ReadBuild(c.bi, c.ok); got != c.want {
			t.Errorf("shared.ReadBuild(%+v) = %+v, want %+v", c.bi, got, c.want)
		}
	}
}
