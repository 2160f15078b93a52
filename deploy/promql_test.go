package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-mud/trellis/controller"
)

// metricInfo is one metric the code registers.
type metricInfo struct {
	name   string
	kind   string   // counter, gauge, histogram, summary
	labels []string // variable labels; nil for none
	// labelsKnown is false when the label list is not a literal the scan
	// can read; label checks are then skipped for the metric.
	labelsKnown bool
	where       string // file:line
}

// registeredMetrics reads the metrics the edge, worker and controller
// packages construct, from their source. Constructing them is not an
// option from here: the edge's and worker's newMetrics are unexported and
// their registries private, and what their /metrics handlers expose leaves
// out every labelled metric that has not been used yet (an empty
// CounterVec has no series). TestRegisteredMetricsScan checks the scan
// against what can be seen: the controller's descriptors (its Registerer
// is configurable) and the families the live handlers serve.
func registeredMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	out := map[string]metricInfo{}
	kinds := map[string]string{
		"NewCounter": "counter", "NewCounterVec": "counter", "NewCounterFunc": "counter",
		"NewGauge": "gauge", "NewGaugeVec": "gauge", "NewGaugeFunc": "gauge",
		"NewHistogram": "histogram", "NewHistogramVec": "histogram",
		"NewSummary": "summary", "NewSummaryVec": "summary",
	}
	// internal/metrics registers what every component shares
	// (trellis_build_info).
	for _, dir := range []string{"edge", "worker", "controller", "internal/metrics"} {
		err := filepath.WalkDir(filepath.Join("..", dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || kinds[sel.Sel.Name] == "" {
					return true
				}
				opts, ok := call.Args[0].(*ast.CompositeLit)
				if !ok {
					return true
				}
				if ts, ok := opts.Type.(*ast.SelectorExpr); !ok || !strings.HasSuffix(ts.Sel.Name, "Opts") {
					return true
				}
				where := fset.Position(call.Pos()).String()
				var parts []string
				for _, field := range []string{"Namespace", "Subsystem", "Name"} {
					v, found := optField(opts, field)
					if !found {
						continue
					}
					s, ok := stringLit(v)
					if !ok {
						t.Errorf("%s: metric %s is not a string literal: the scan cannot read it (make it one, or teach registeredMetrics)", where, field)
						return true
					}
					if s != "" {
						parts = append(parts, s)
					}
				}
				name := strings.Join(parts, "_")
				m := metricInfo{name: name, kind: kinds[sel.Sel.Name], labelsKnown: true, where: where}
				if strings.HasSuffix(sel.Sel.Name, "Vec") {
					m.labelsKnown = false
					if len(call.Args) > 1 {
						if lit, ok := call.Args[1].(*ast.CompositeLit); ok {
							m.labelsKnown = true
							for _, e := range lit.Elts {
								s, ok := stringLit(e)
								if !ok {
									m.labelsKnown = false
									break
								}
								m.labels = append(m.labels, s)
							}
						}
					}
				}
				if prev, dup := out[name]; dup && prev.kind != m.kind {
					t.Errorf("%s: metric %s registered as %s here and as %s at %s", where, name, m.kind, prev.kind, prev.where)
				}
				out[name] = m
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatalf("scan ../%s: %v", dir, err)
		}
	}
	if len(out) == 0 {
		t.Fatal("found no metrics in edge/, worker/, controller/")
	}
	return out
}

func optField(lit *ast.CompositeLit, name string) (ast.Expr, bool) {
	for _, e := range lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == name {
				return kv.Value, true
			}
		}
	}
	return nil, false
}

// describer is a Registerer that keeps the descriptors it is given.
type describer struct{ descs []*prometheus.Desc }

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		d.descs = append(d.descs, desc)
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
	typeLine   = regexp.MustCompile(`(?m)^# TYPE (trellis_[a-zA-Z0-9_]+) (\w+)$`)
)

// families are the trellis_* metric families a /metrics handler serves,
// with their types.
func families(t *testing.T, what string, h http.Handler) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s /metrics: %d", what, rec.Code)
	}
	out := map[string]string{}
	for _, m := range typeLine.FindAllStringSubmatch(string(body), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatalf("%s /metrics serves no trellis_* family", what)
	}
	return out
}

// The source scan agrees with everything that can be observed: the
// controller's descriptors exactly (names and labels), and every family
// the edge's and the worker's handlers serve (names and types).
func TestRegisteredMetricsScan(t *testing.T) {
	reg := registeredMetrics(t)

	d := &describer{}
	controller.New(nil, nil, controller.Config{Registerer: d})
	described := map[string][]string{}
	for _, desc := range d.descs {
		s := desc.String()
		n := descName.FindStringSubmatch(s)
		l := descLabels.FindStringSubmatch(s)
		if n == nil || l == nil {
			t.Fatalf("cannot read descriptor %s", s)
		}
		var labels []string
		if l[1] != "" {
			labels = strings.Split(l[1], ",")
		}
		described[n[1]] = labels
	}
	if len(described) == 0 {
		t.Fatal("the controller registered no metrics")
	}
	for name, labels := range described {
		m, ok := reg[name]
		if !ok {
			t.Errorf("controller registers %s, which the source scan missed", name)
		} else if !slices.Equal(m.labels, labels) {
			t.Errorf("controller %s: labels %v, the scan read %v", name, labels, m.labels)
		}
	}
	for name, m := range reg {
		if strings.HasPrefix(name, "trellis_controller_") {
			if _, ok := described[name]; !ok {
				t.Errorf("%s: the scan found %s, which the controller does not register", m.where, name)
			}
		}
	}

	for what, h := range map[string]http.Handler{"edge": testEdgeAdminHandler(t), "worker": testWorkerHandler(t)} {
		for name, kind := range families(t, what, h) {
			m, ok := reg[name]
			if !ok {
				t.Errorf("%s serves %s, which the source scan missed", what, name)
			} else if m.kind != kind {
				t.Errorf("%s serves %s as a %s, the scan read a %s", what, name, kind, m.kind)
			}
		}
	}
}

// Labels every scraped series may carry besides its own: what Prometheus
// adds for the target (static configs, ServiceMonitors, pod annotations).
var targetLabels = []string{"instance", "job", "namespace", "pod", "service", "endpoint", "container"}

// Functions that take a counter's raw value meaningfully.
var counterFuncs = []string{"rate", "irate", "increase", "resets", "absent", "absent_over_time"}

// Keywords whose parenthesised list holds label names.
var labelListKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

type bracket struct {
	open byte
	pre  string // the identifier right before it ("" for none)
	pos  int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// checkPromQL is a light check of an expression, for lack of a PromQL
// parser in the module graph (prometheus/prometheus's is heavy): brackets
// balance and strings end; every trellis_* name is a series the code
// exports (a histogram through _bucket, _sum and _count); counters are
// read through rate() or increase(), never as raw values; label names in
// selectors and in by/without lists exist on the metrics involved or on
// every target. It returns the problems and the series names used.
// Grafana's $variables and ${variables} are accepted anywhere.
func checkPromQL(expr string, reg map[string]metricInfo) (problems, used []string) {
	var stack []bracket
	var grouping []string // labels named in by/without/on/... lists
	var bucket bool
	involved := map[string]bool{}
	lastIdent, lastEnd := "", -1
	// pre is the identifier just before position i (whitespace allowed).
	pre := func(i int) string {
		j := i - 1
		for j >= 0 && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n') {
			j--
		}
		if j == lastEnd-1 {
			return lastIdent
		}
		return ""
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return append(problems, fmt.Sprintf("unterminated string at %d", i)), used
			}
			i = j + 1
			lastIdent, lastEnd = "", -1
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				for i < len(expr) && expr[i] != '}' {
					i++
				}
				i++
			} else {
				for i < len(expr) && isIdent(expr[i]) {
					i++
				}
			}
			lastIdent, lastEnd = "", -1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
			lastIdent, lastEnd = "", -1
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, bracket{open: c, pre: pre(i), pos: i})
			i++
			lastIdent, lastEnd = "", -1
		case c == ')' || c == ']' || c == '}':
			want := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1].open != want {
				return append(problems, fmt.Sprintf("unbalanced %q at %d", c, i)), used
			}
			stack = stack[:len(stack)-1]
			i++
			lastIdent, lastEnd = "", -1
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			var top *bracket
			if len(stack) > 0 {
				top = &stack[len(stack)-1]
			}
			switch {
			case top != nil && top.open == '(' && slices.Contains(labelListKeywords, top.pre):
				grouping = append(grouping, word)
			case top != nil && top.open == '{':
				// A label matcher: check it against the selector's metric.
				if m, ok := seriesOf(top.pre, reg); ok && m.labelsKnown && word != "__name__" &&
					!slices.Contains(m.labels, word) && !slices.Contains(targetLabels, word) &&
					!(word == "le" && strings.HasSuffix(top.pre, "_bucket")) {
					problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", top.pre, word, m.labels))
				}
			case strings.HasPrefix(word, "trellis_"):
				used = append(used, word)
				m, ok := seriesOf(word, reg)
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("%s is not a series the code exports", word))
				case m.kind == "histogram" && m.name == word || m.kind == "summary" && m.name == word:
					problems = append(problems, fmt.Sprintf("%s is a %s: its series are %[1]s_bucket, _sum and _count", word, m.kind))
				default:
					involved[m.name] = true
					if strings.HasSuffix(word, "_bucket") {
						bucket = true
					}
					counter := m.kind == "counter" || m.name != word
					if counter {
						fn := ""
						for k := len(stack) - 1; k >= 0; k-- {
							if stack[k].open == '(' && stack[k].pre != "" && !slices.Contains(labelListKeywords, stack[k].pre) {
								fn = stack[k].pre
								break
							}
						}
						if !slices.Contains(counterFuncs, fn) {
							problems = append(problems, fmt.Sprintf("counter %s read outside rate()/increase() (inside %q): its raw value only ever grows", word, fn))
						}
					}
				}
			}
			lastIdent, lastEnd = word, j
			i = j
		default:
			i++
			if !strings.ContainsRune(" \t\n", rune(c)) {
				lastIdent, lastEnd = "", -1
			}
		}
	}
	if len(stack) > 0 {
		problems = append(problems, fmt.Sprintf("unclosed %q at %d", stack[len(stack)-1].open, stack[len(stack)-1].pos))
	}
	allowed := slices.Clone(targetLabels)
	if bucket {
		allowed = append(allowed, "le")
	}
	for name := range involved {
		if !reg[name].labelsKnown {
			return problems, used
		}
		allowed = append(allowed, reg[name].labels...)
	}
	for _, l := range grouping {
		if !slices.Contains(allowed, l) {
			problems = append(problems, fmt.Sprintf("groups by %q, a label none of %v has", l, sortedKeys(involved)))
		}
	}
	return problems, used
}

// seriesOf resolves a series name to its metric: the name itself, or a
// histogram's (summary's) _bucket, _sum or _count.
func seriesOf(series string, reg map[string]metricInfo) (metricInfo, bool) {
	if m, ok := reg[series]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok {
			if m, ok := reg[base]; ok && (m.kind == "histogram" || m.kind == "summary" && suffix != "_bucket") {
				return m, true
			}
		}
	}
	return metricInfo{}, false
}

// The checker must be able to fail, for each thing it claims to check.
func TestPromQLCheck(t *testing.T) {
	reg := map[string]metricInfo{
		"trellis_c_total": {name: "trellis_c_total", kind: "counter", labels: []string{"code"}, labelsKnown: true},
		"trellis_g":       {name: "trellis_g", kind: "gauge", labelsKnown: true},
		"trellis_h":       {name: "trellis_h", kind: "histogram", labelsKnown: true},
	}
	good := []string{
		`sum by (namespace, code) (rate(trellis_c_total{code="4008", namespace=~"$namespace"}[$__rate_interval])) > 0`,
		`histogram_quantile(0.99, sum by (le, pod) (rate(trellis_h_bucket[5m]))) > 1`,
		`absent(trellis_g)`,
		`deriv((max by (namespace) (trellis_g))[10m:1m]) > 0 and max(trellis_g) > 20`,
		`rate(trellis_h_sum[5m]) / rate(trellis_h_count[5m])`,
		`label_values(trellis_g{namespace=~"${namespace}"}, pod)`,
	}
	for _, e := range good {
		if p, _ := checkPromQL(e, reg); len(p) > 0 {
			t.Errorf("%s: %v", e, p)
		}
	}
	bad := []string{
		`sum(rate(trellis_c_total[5m])`,         // unclosed
		`sum(rate(trellis_c_total[5m)))`,        // mismatched
		`trellis_c_total{code="4008} > 0`,       // unterminated string
		`rate(trellis_nope_total[5m])`,          // not exported
		`trellis_c_total > 0`,                   // raw counter
		`sum(trellis_c_total)`,                  // raw counter in an aggregation
		`histogram_quantile(0.9, trellis_h)`,    // a histogram has no such series
		`rate(trellis_c_total{reason="x"}[5m])`, // no such label
		`sum by (reason) (rate(trellis_c_total[5m]))`,
		`sum by (le) (trellis_g)`, // le without a bucket
	}
	for _, e := range bad {
		if p, _ := checkPromQL(e, reg); len(p) == 0 {
			t.Errorf("%s passed the check", e)
		}
	}
}
