package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The labelled counters of the edge, the worker and the controller list
// their label values next to the metric (listed(vec, values...) in each
// metrics.go): every listed series is exported at 0 from the start, and
// the packages' tests fail on a value counted that is not listed. Those
// tests see only what they exercise; this one reads the sources and
// checks every WithLabelValues call on a listed counter, on every path,
// by following each argument to the constants it can take: through
// package and imported constants, local assignments, the parameters of
// the enclosing function (to the arguments of its every call in the
// package), the results of a called function of the package,
// strconv.Itoa and conversions.

// modulePath is the module's import path prefix; its packages' sources
// are read from the work tree.
const modulePath = "github.com/trellis-mud/trellis/"

// dynamicLabels are call-site arguments the scan cannot follow because
// they come from data, by metric and argument as written. A new entry
// needs a reason.
var dynamicLabels = map[string]string{
	// A command type the store accepted (store.Command.Validate): the
	// control path's are listed; another one is rejected and counted in a
	// series of its own.
	"trellis_controller_commands_total: string(m.Command.Type)": "the command's type",
	// A Disconnect carries its close code as data, and the error frame a
	// close comes with is looked up from it (wire.CloseError). Both are
	// built only from package wire's codes, which the lists are; edge's
	// TestLabelListsCoverTheDeclaredCodes checks the lists against wire.
	"trellis_edge_closes_total: strconv.Itoa(d.Code)": "a Disconnect's close code",
	"trellis_edge_error_frames_total: code":           "sendError's code, from wire's constants or wire.CloseError",
}

// goPkg is one package's non-test sources.
type goPkg struct {
	dir   string
	fset  *token.FileSet
	files []*ast.File
	// decls of the package by name: constants, variables, functions
	// (methods under their name too: the scan matches calls by name).
	consts map[string]ast.Expr
	vars   map[string]ast.Expr
	funcs  map[string][]*ast.FuncDecl
	// calls by callee name, with the function they are made in.
	calls map[string][]callSite
	file  map[ast.Node]*ast.File // the file of each FuncDecl and const value
}

type callSite struct {
	call *ast.CallExpr
	in   *ast.FuncDecl
}

var pkgCache = map[string]*goPkg{}

func loadGoPkg(t *testing.T, dir string) *goPkg {
	t.Helper()
	if p, ok := pkgCache[dir]; ok {
		return p
	}
	p := &goPkg{dir: dir, fset: token.NewFileSet(), consts: map[string]ast.Expr{}, vars: map[string]ast.Expr{},
		funcs: map[string][]*ast.FuncDecl{}, calls: map[string][]callSite{}, file: map[ast.Node]*ast.File{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(p.fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.files = append(p.files, f)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, id := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						if d.Tok == token.CONST {
							p.consts[id.Name] = vs.Values[i]
						} else {
							p.vars[id.Name] = vs.Values[i]
						}
						p.file[vs.Values[i]] = f
					}
				}
			case *ast.FuncDecl:
				p.funcs[d.Name.Name] = append(p.funcs[d.Name.Name], d)
				p.file[d] = f
				if d.Body == nil {
					continue
				}
				ast.Inspect(d.Body, func(n ast.Node) bool {
					if call, ok := n.(*ast.CallExpr); ok {
						if name := calleeName(call); name != "" {
							p.calls[name] = append(p.calls[name], callSite{call, d})
						}
					}
					return true
				})
			}
		}
	}
	pkgCache[dir] = p
	return p
}

func calleeName(call *ast.CallExpr) string {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

func (p *goPkg) text(e ast.Node) string {
	var b strings.Builder
	_ = printer.Fprint(&b, p.fset, e)
	return b.String()
}

func (p *goPkg) pos(e ast.Node) string {
	pos := p.fset.Position(e.Pos())
	return fmt.Sprintf("%s:%d", filepath.ToSlash(pos.Filename), pos.Line)
}

// importDir is the directory of the package file f imports as name, if it
// is one of this module's.
func importDir(f *ast.File, name string) (string, bool) {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		local := filepath.Base(path)
		if imp.Name != nil {
			local = imp.Name.Name
		}
		if local == name && strings.HasPrefix(path, modulePath) {
			return filepath.Join("..", filepath.FromSlash(strings.TrimPrefix(path, modulePath))), true
		}
	}
	return "", false
}

// resolver follows an expression to the constant values it can take.
type resolver struct {
	t       *testing.T
	seen    map[string]bool
	dynamic []string // expressions it could not follow
}

// values returns what e, in function fn (nil: package level) of file f
// of p, can be. The empty string is left out: it is what a guarded
// "none" looks like (readFrom(""), a final state that is then "lost"),
// and the packages' tests catch one counted.
func (r *resolver) values(p *goPkg, f *ast.File, fn *ast.FuncDecl, e ast.Expr, depth int) []string {
	key := fmt.Sprintf("%s@%d", p.dir, e.Pos())
	if r.seen[key] || depth > 12 {
		return nil
	}
	r.seen[key] = true
	defer delete(r.seen, key)
	dynamic := func() []string {
		r.dynamic = append(r.dynamic, p.text(e)+" at "+p.pos(e))
		return nil
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		v := e.Value
		if e.Kind == token.STRING {
			v, _ = strconv.Unquote(v)
		}
		if v == "" {
			return nil
		}
		return []string{v}
	case *ast.ParenExpr:
		return r.values(p, f, fn, e.X, depth+1)
	case *ast.Ident:
		if fn != nil {
			if vals, ok := r.local(p, f, fn, e.Name, depth); ok {
				return vals
			}
		}
		if v, ok := p.consts[e.Name]; ok {
			return r.values(p, p.file[v], nil, v, depth+1)
		}
		return dynamic()
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if dir, ok := importDir(f, x.Name); ok {
				q := loadGoPkg(r.t, dir)
				if v, ok := q.consts[e.Sel.Name]; ok {
					return r.values(q, q.file[v], nil, v, depth+1)
				}
			}
		}
		return dynamic()
	case *ast.CallExpr:
		switch fun := e.Fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := fun.X.(*ast.Ident); ok && x.Name == "strconv" && fun.Sel.Name == "Itoa" && len(e.Args) == 1 {
				return r.values(p, f, fn, e.Args[0], depth+1)
			}
		case *ast.Ident:
			if fun.Name == "string" && len(e.Args) == 1 { // a conversion
				return r.values(p, f, fn, e.Args[0], depth+1)
			}
			if decls := p.funcs[fun.Name]; len(decls) == 1 && decls[0].Recv == nil && decls[0].Body != nil {
				var out []string
				d := decls[0]
				ast.Inspect(d.Body, func(n ast.Node) bool {
					if _, ok := n.(*ast.FuncLit); ok {
						return false
					}
					if ret, ok := n.(*ast.ReturnStmt); ok && len(ret.Results) == 1 {
						out = append(out, r.values(p, p.file[d], d, ret.Results[0], depth+1)...)
					}
					return true
				})
				return out
			}
		}
		return dynamic()
	}
	return dynamic()
}

// local resolves name inside fn: the values assigned to it there, and if
// it is a parameter, the arguments of every call of fn in the package.
// ok is false when name is neither assigned nor a parameter in fn.
func (r *resolver) local(p *goPkg, f *ast.File, fn *ast.FuncDecl, name string, depth int) (vals []string, ok bool) {
	param := -1
	i := 0
	for _, field := range fn.Type.Params.List {
		for _, id := range field.Names {
			if id.Name == name {
				param = i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	var assigned []ast.Expr
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && id.Name == name {
					if len(n.Lhs) == len(n.Rhs) {
						assigned = append(assigned, n.Rhs[i])
					} else {
						assigned = append(assigned, lhs) // from a tuple: not followed
					}
				}
			}
		case *ast.ValueSpec:
			for i, id := range n.Names {
				if id.Name == name && i < len(n.Values) {
					assigned = append(assigned, n.Values[i])
				}
			}
		}
		return true
	})
	if param < 0 && len(assigned) == 0 {
		return nil, false
	}
	for _, a := range assigned {
		if id, ok := a.(*ast.Ident); ok && id.Name == name {
			r.dynamic = append(r.dynamic, name+" (assigned from a tuple) at "+p.pos(a))
			continue
		}
		vals = append(vals, r.values(p, f, fn, a, depth+1)...)
	}
	if param >= 0 {
		methods := fn.Recv != nil
		var calls int
		for _, cs := range p.calls[fn.Name.Name] {
			if _, isSel := cs.call.Fun.(*ast.SelectorExpr); isSel != methods || param >= len(cs.call.Args) {
				continue
			}
			calls++
			vals = append(vals, r.values(p, p.file[cs.in], cs.in, cs.call.Args[param], depth+1)...)
		}
		if calls == 0 {
			r.dynamic = append(r.dynamic, fmt.Sprintf("parameter %s of %s, which is never called here", name, fn.Name.Name))
		}
	}
	return vals, true
}

// listedMetric is one listed(...) counter: where it is declared and its
// values per label.
type listedMetric struct {
	name   string
	field  string // the metrics struct field it is stored in
	values [][]string
	where  string
}

// listedMetrics reads the listed(...) counters of a package: the field of
// the composite literal they are stored in, the metric's name and the
// values of each list.
func listedMetrics(t *testing.T, p *goPkg) []listedMetric {
	var out []listedMetric
	for _, f := range p.files {
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			call, ok := kv.Value.(*ast.CallExpr)
			if !ok || calleeName(call) != "listed" || len(call.Args) < 2 {
				return true
			}
			field, _ := kv.Key.(*ast.Ident)
			vec, _ := call.Args[0].(*ast.CallExpr)
			if field == nil || vec == nil || len(vec.Args) == 0 {
				t.Errorf("%s: listed(...) not stored in a field, or not wrapping a New...Vec call", p.pos(call))
				return true
			}
			m := listedMetric{field: field.Name, where: p.pos(call)}
			if opts, ok := vec.Args[0].(*ast.CompositeLit); ok {
				if v, ok := optField(opts, "Name"); ok {
					m.name, _ = stringLit(v)
				}
			}
			for _, arg := range call.Args[1:] {
				list, lp, lf := arg, p, f
				if id, ok := arg.(*ast.Ident); ok {
					list = p.vars[id.Name]
					if v, ok := list.(ast.Node); ok {
						lf = p.file[v]
					}
				}
				// A list made by a one-argument function of another list
				// (closeLabels(wire.CloseCodes): the codes as strings) is
				// read through its argument.
				if c, ok := list.(*ast.CallExpr); ok && len(c.Args) == 1 {
					list = c.Args[0]
				}
				// Another package's list (wire.ErrorCodes).
				if sel, ok := list.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok {
						if dir, ok := importDir(lf, x.Name); ok {
							lp = loadGoPkg(t, dir)
							list = lp.vars[sel.Sel.Name]
							if v, ok := list.(ast.Node); ok {
								lf = lp.file[v]
							}
						}
					}
				}
				lit, ok := list.(*ast.CompositeLit)
				if !ok {
					t.Errorf("%s: %s: the values %s are not a slice literal the scan can read", m.where, m.name, p.text(arg))
					continue
				}
				r := &resolver{t: t, seen: map[string]bool{}}
				var vals []string
				for _, elt := range lit.Elts {
					vals = append(vals, r.values(lp, lf, nil, elt, 0)...)
				}
				for _, d := range r.dynamic {
					t.Errorf("%s: %s: list element %s is not a constant", m.where, m.name, d)
				}
				m.values = append(m.values, vals)
			}
			out = append(out, m)
			return true
		})
	}
	return out
}

// Every labelled counter is listed, and every WithLabelValues call on one
// uses listed values, on every path the sources hold.
func TestLabelValuesAreListed(t *testing.T) {
	for _, dir := range []string{"edge", "worker", "controller"} {
		p := loadGoPkg(t, filepath.Join("..", dir))
		metrics := listedMetrics(t, p)
		byField := map[string]listedMetric{}
		for _, m := range metrics {
			byField[m.field] = m
		}
		// Every labelled counter or histogram is listed: a New...Vec call
		// outside listed(...) is one whose series appear only with their
		// first event. (trellis_build_info, a GaugeVec of one series
		// set once, is not a counter.)
		wrapped := map[*ast.CallExpr]bool{}
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && calleeName(call) == "listed" && len(call.Args) > 0 {
					if vec, ok := call.Args[0].(*ast.CallExpr); ok {
						wrapped[vec] = true
					}
				}
				return true
			})
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if name := calleeNameOf(call, ok); (name == "NewCounterVec" || name == "NewHistogramVec") && !wrapped[call] {
					t.Errorf("%s: a %s outside listed(...): list its label values (and create them at 0)", p.pos(call), name)
				}
				return true
			})
		}

		used := map[string]bool{}
		counted := map[string][]string{}   // metric -> values seen, for -v
		byIndex := map[string][][]string{} // metric -> values counted per label
		fromData := map[string]bool{}      // metric:label index taking a dynamicLabels value
		for _, cs := range p.calls["WithLabelValues"] {
			if cs.in.Name.Name == "WithLabelValues" || cs.in.Name.Name == "listed" {
				continue // the wrapper's own calls of the CounterVec's
			}
			sel := cs.call.Fun.(*ast.SelectorExpr)
			recv, ok := sel.X.(*ast.SelectorExpr)
			if !ok {
				continue // not a field: a local vector (trellis_build_info's)
			}
			m, ok := byField[recv.Sel.Name]
			if !ok {
				t.Errorf("%s: %s.WithLabelValues on no listed counter of %s", p.pos(cs.call), p.text(recv), dir)
				continue
			}
			used[m.field] = true
			if len(cs.call.Args) != len(m.values) {
				t.Errorf("%s: %s: %d label values, the metric has %d", p.pos(cs.call), m.name, len(cs.call.Args), len(m.values))
				continue
			}
			for i, arg := range cs.call.Args {
				r := &resolver{t: t, seen: map[string]bool{}}
				vals := r.values(p, p.file[cs.in], cs.in, arg, 0)
				if _, ok := dynamicLabels[m.name+": "+p.text(arg)]; ok {
					fromData[fmt.Sprint(m.name, i)] = true
					continue
				}
				for _, d := range r.dynamic {
					t.Errorf("%s: %s: cannot follow %s to constants (list it in dynamicLabels with a reason if it comes from data)", p.pos(cs.call), m.name, d)
				}
				if len(vals) == 0 && len(r.dynamic) == 0 {
					t.Errorf("%s: %s: %s resolves to no value", p.pos(cs.call), m.name, p.text(arg))
				}
				counted[m.name] = append(counted[m.name], vals...)
				if byIndex[m.name] == nil {
					byIndex[m.name] = make([][]string, len(m.values))
				}
				byIndex[m.name][i] = append(byIndex[m.name][i], vals...)
				for _, v := range vals {
					if !slices.Contains(m.values[i], v) {
						t.Errorf("%s: %s: value %q (from %s) is not in its list %v (%s)", p.pos(cs.call), m.name, v, p.text(arg), m.values[i], m.where)
					}
				}
			}
		}
		for _, m := range metrics {
			vs := slices.Clone(counted[m.name])
			slices.Sort(vs)
			t.Logf("%s: counted with %v", m.name, slices.Compact(vs))
			if !used[m.field] {
				t.Errorf("%s: %s is listed but never counted", m.where, m.name)
				continue
			}
			// The other way: a listed value nothing counts is a stale
			// entry, a series at 0 forever.
			for i, vs := range m.values {
				if fromData[fmt.Sprint(m.name, i)] || byIndex[m.name] == nil {
					continue
				}
				for _, v := range vs {
					if !slices.Contains(byIndex[m.name][i], v) {
						t.Errorf("%s: %s: %q is listed but no call site counts it", m.where, m.name, v)
					}
				}
			}
		}
		if len(metrics) == 0 {
			t.Errorf("%s: no listed counters found: the scan is broken", dir)
		}
	}
}

func calleeNameOf(call *ast.CallExpr, ok bool) string {
	if !ok {
		return ""
	}
	return calleeName(call)
}

// The scan follows what it claims to: a miniature package with a
// parameter, a local, a constant of another package and a function's
// results.
func TestLabelScanFollowsValues(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "strconv"

const codeA = 4001

type m struct{ c counter }

func (s *srv) closeWith(code int) { s.m.c.WithLabelValues(strconv.Itoa(code)) }
func (s *srv) fail(code int)      { s.closeWith(code) }
func (s *srv) run() {
	s.fail(codeA)
	s.closeWith(4002)
	label := pick()
	if label == "" {
		label = "lost"
	}
	s.m.c.WithLabelValues(label)
}
func pick() string {
	if true {
		return "a"
	}
	return ""
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadGoPkg(t, dir)
	var got []string
	for _, cs := range p.calls["WithLabelValues"] {
		r := &resolver{t: t, seen: map[string]bool{}}
		got = append(got, r.values(p, p.file[cs.in], cs.in, cs.call.Args[0], 0)...)
		if len(r.dynamic) > 0 {
			t.Errorf("dynamic: %v", r.dynamic)
		}
	}
	slices.Sort(got)
	if want := []string{"4001", "4002", "a", "lost"}; !slices.Equal(got, want) {
		t.Fatalf("resolved %v, want %v", got, want)
	}
}
