package metrics

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Listed is a CounterVec whose label values are listed up front:
// NewListed creates every combination at 0, and WithLabelValues hands a
// value outside the lists to Unlisted before counting it anyway.
type Listed struct {
	*prometheus.CounterVec
	name   string
	labels []string
	values [][]string // per label, its values
}

// Unlisted is told of a label value counted that is not in its metric's
// list. Nil in production (the value is counted, in a series that appears
// with its first event); each component's tests make it panic, so a new or
// misspelt value fails every test that reaches it.
var Unlisted func(metric, label, value string)

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// NewListed wraps vec, with values[i] the values of its i-th label, and
// creates every combination of them at 0.
func NewListed(vec *prometheus.CounterVec, values ...[]string) Listed {
	ch := make(chan *prometheus.Desc, 1)
	vec.Describe(ch)
	desc := (<-ch).String()
	l := Listed{CounterVec: vec, values: values}
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
func (l Listed) WithLabelValues(lvs ...string) prometheus.Counter {
	if hook := Unlisted; hook != nil {
		for i, v := range lvs {
			if i < len(l.values) && !slices.Contains(l.values[i], v) {
				hook(l.name, l.labels[i], v)
			}
		}
	}
	return l.CounterVec.WithLabelValues(lvs...)
}

// Build is what trellis_build_info says of the running binary.
type Build struct{ Version, Revision, GoVersion string }

// ReadBuild reads the binary's build information: the main module's
// version ("devel" for a build from a work tree without a version), the
// VCS revision ("unknown" when the build did not stamp one: a build
// outside the repository, or with -buildvcs=false) and the Go version.
func ReadBuild(bi *debug.BuildInfo, ok bool) Build {
	out := Build{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return out
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		out.Version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			out.Revision = s.Value
		}
	}
	if bi.GoVersion != "" {
		out.GoVersion = bi.GoVersion
	}
	return out
}

// BuildInfo is trellis_build_info: always 1, with the build in its
// labels, so a dashboard can tell which version each process runs.
func BuildInfo() prometheus.Collector {
	b := ReadBuild(debug.ReadBuildInfo())
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trellis_build_info", Help: "Always 1; the labels say which build of Trellis this process runs.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	return g
}
