package metrics

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestListedStartsAtZeroAndReportsUnlisted(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_test_total", Help: "test"}, []string{"a", "b"})
	l := NewListed(vec, []string{"x", "y"}, []string{"1", "2", "3"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(vec)
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 || len(fams[0].GetMetric()) != 6 {
		t.Fatalf("series at start: %v %v, want every combination (6)", fams, err)
	}
	var got []string
	Unlisted = func(metric, label, value string) { got = append(got, metric+" "+label+"="+value) }
	defer func() { Unlisted = nil }()
	l.WithLabelValues("x", "4").Inc()
	if len(got) != 1 || got[0] != "trellis_test_total b=4" {
		t.Fatalf("unlisted reported as %v", got)
	}
}

func TestReadBuild(t *testing.T) {
	for _, c := range []struct {
		bi   *debug.BuildInfo
		ok   bool
		want Build
	}{
		{nil, false, Build{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}},
		{&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "e1e5f43abc"},
		}}, true, Build{Version: "v1.4.0", Revision: "e1e5f43abc", GoVersion: "go1.26.1"}},
	} {
		if got := ReadBuild(c.bi, c.ok); got != c.want {
			t.Errorf("ReadBuild(%+v) = %+v, want %+v", c.bi, got, c.want)
		}
	}
}
