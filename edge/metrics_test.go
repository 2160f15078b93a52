package edge

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	shared "github.com/trellis-mud/trellis/internal/metrics"

	dto "github.com/prometheus/client_model/go"
)

// Every test of the package fails on a label value the lists in metrics.go
// do not hold: a misspelt or new value must be listed (and so exported at
// 0) before it is counted.
func init() {
	shared.Unlisted = func(metric, label, value string) {
		panic(fmt.Sprintf("metric %s counted %s=%q, which is not in its list in edge/metrics.go: list it there", metric, label, value))
	}
}

// gather returns the samples of the registry's family name as "labels ->
// value", labels written {k="v",...} in name order.
func gather(t *testing.T, m *metrics, name string) (map[string]float64, *dto.MetricFamily) {
	t.Helper()
	fams, err := m.reg.Gather()
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
			if s.GetGauge() != nil {
				v = s.GetGauge().GetValue()
			}
			out["{"+strings.Join(parts, ",")+"}"] = v
		}
		return out, f
	}
	return nil, nil
}

// A fresh edge exports every listed series of its labelled counters at 0,
// and nothing else: "no series" would read as "no data" to rate() and to
// an alert, which then cannot tell a quiet edge from a broken scrape.
func TestLabelledCountersStartAtZero(t *testing.T) {
	m := newMetrics()
	for _, c := range []struct {
		name, label string
		values      []string
	}{
		{"trellis_edge_error_frames_total", "code", errorCodes},
		{"trellis_edge_closes_total", "code", closeCodes},
		{"trellis_edge_resyncs_total", "cause", resyncCauses},
		{"trellis_edge_input_lost_total", "why", inputLostWhys},
	} {
		got, _ := gather(t, m, c.name)
		if got == nil {
			t.Errorf("%s: not exported by a fresh edge", c.name)
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
	}
}

// The lists hold every code the edge declares (the Err*, Close* and lost*
// constants), so a new error or close code cannot be added without its
// series.
func TestLabelListsCoverTheDeclaredCodes(t *testing.T) {
	declared := map[string][]string{} // prefix -> values
	// The close and error codes are package wire's.
	files, _ := filepath.Glob("*.go")
	wireFiles, _ := filepath.Glob("../internal/wire/*.go")
	files = append(files, wireFiles...)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					for _, prefix := range []string{"Err", "Close", "lost"} {
						if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok {
							t.Errorf("%s: %s is not a literal", f, name.Name)
							continue
						}
						v := lit.Value
						if lit.Kind == token.STRING {
							v, _ = strconv.Unquote(v)
						}
						declared[prefix] = append(declared[prefix], v)
					}
				}
			}
		}
	}
	for prefix, list := range map[string][]string{"Err": errorCodes, "Close": closeCodes, "lost": inputLostWhys} {
		if len(declared[prefix]) == 0 || !sameSet(declared[prefix], list) {
			t.Errorf("the %s* constants are %v; the list has %v", prefix, declared[prefix], list)
		}
	}
	for _, vs := range [][]string{errorCodes, closeCodes, resyncCauses, inputLostWhys} {
		s := slices.Clone(vs)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(vs) {
			t.Errorf("a list repeats a value: %v", vs)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A value outside the list reaches shared.Unlisted (which the tests make
// panic); a listed one does not, and is counted.
func TestUnlistedLabelValueIsReported(t *testing.T) {
	m := newMetrics()
	m.closes.WithLabelValues("4008").Inc()
	if n := counterValue(t, m.closes.WithLabelValues("4008")); n != 1 {
		t.Fatalf("closes{code=4008} = %v, want 1", n)
	}
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		m.closes.WithLabelValues("4999").Inc()
		return ""
	}()
	if !strings.Contains(msg, "trellis_edge_closes_total") || !strings.Contains(msg, `code="4999"`) {
		t.Fatalf("an unlisted close code was not reported: %q", msg)
	}
}

// trellis_build_info is 1, labelled with the build; the fallbacks cover a
// binary without build information or VCS stamps.
func TestBuildInfo(t *testing.T) {
	m := newMetrics()
	got, fam := gather(t, m, "trellis_build_info")
	if len(got) != 1 || fam.GetType() != dto.MetricType_GAUGE {
		t.Fatalf("trellis_build_info: %v (%v), want one gauge series", got, fam.GetType())
	}
	b := shared.ReadBuild(debug.ReadBuildInfo())
	want := fmt.Sprintf("{go_version=%q,revision=%q,version=%q}", b.GoVersion, b.Revision, b.Version)
	if got[want] != 1 {
		t.Errorf("trellis_build_info = %v, want %s 1", got, want)
	}
	if b.GoVersion != runtime.Version() {
		t.Errorf("go_version %q, want %q", b.GoVersion, runtime.Version())
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
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "e1e5f43abc"}, {Key: "vcs.modified", Value: "false"},
		}}, true, shared.Build{Version: "v1.4.0", Revision: "e1e5f43abc", GoVersion: "go1.26.1"}},
	} {
		if got := shared.ReadBuild(c.bi, c.ok); got != c.want {
			t.Errorf("shared.ReadBuild(%+v) = %+v, want %+v", c.bi, got, c.want)
		}
	}
}
