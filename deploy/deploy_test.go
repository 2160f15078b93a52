package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// Paths the binaries serve; handlers_test.go proves each one is served
// (and that the edge's players' port does not serve /metrics).
var (
	edgePaths      = []string{"/healthz", "/readyz"}             // the players' port
	edgeAdminPaths = []string{"/healthz", "/readyz", "/metrics"} // TRELLIS_EDGE_ADMIN_LISTEN
	workerPaths    = []string{"/healthz", "/readyz", "/metrics"} // TRELLIS_WORKER_ADMIN_LISTEN
)

// drainMargin is how much longer than the worker's drain timeout the
// termination grace period must be: after the drain the worker closes the
// remaining game connections, writes their last status and releases leases.
const drainMargin = 10 * time.Second

// Variables the subcommands read, by prefix, as cmd/trellis wires them
// (components.go, config.go): a variable set on a container whose
// subcommand never reads it is dead configuration, usually a typo of role.
var rolePrefixes = map[string][]string{
	"edge":      {"TRELLIS_EDGE_", "TRELLIS_AUTH_", "TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"worker":    {"TRELLIS_WORKER_", "TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"demo-game": {"TRELLIS_LOG_"},
	"games":     {"TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"sessions":  {"TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"replay":    {"TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"ops":       {"TRELLIS_REDIS_", "TRELLIS_LOG_"},
	"token":     {"TRELLIS_AUTH_", "TRELLIS_LOG_"},
}

// secretVars must reach containers from a Secret, never as a literal.
var secretVars = []string{"TRELLIS_AUTH_SECRET", "TRELLIS_REDIS_PASSWORD"}

// subcommands parses cmd/trellis/main.go and returns the names in its
// `commands` table: a slice of struct literals with a `name` field (or a
// map keyed by name).
func subcommands(t *testing.T) []string {
	t.Helper()
	path := filepath.Join("..", "cmd", "trellis", "main.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var table *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		switch d := n.(type) {
		case *ast.ValueSpec:
			for i, id := range d.Names {
				if id.Name == "commands" && i < len(d.Values) {
					table, _ = d.Values[i].(*ast.CompositeLit)
				}
			}
		case *ast.AssignStmt:
			for i, lhs := range d.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && id.Name == "commands" && i < len(d.Rhs) {
					table, _ = d.Rhs[i].(*ast.CompositeLit)
				}
			}
		}
		return table == nil
	})
	if table == nil {
		t.Fatalf("%s: no `commands` table found", path)
	}
	var names []string
	for _, elt := range table.Elts {
		switch e := elt.(type) {
		case *ast.KeyValueExpr: // map[string]...{"edge": ...}
			if s, ok := stringLit(e.Key); ok {
				names = append(names, s)
			}
		case *ast.CompositeLit: // []command{{name: "edge", ...}}
			for i, field := range e.Elts {
				if kv, ok := field.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok && strings.EqualFold(id.Name, "name") {
						if s, ok := stringLit(kv.Value); ok {
							names = append(names, s)
						}
					}
				} else if i == 0 {
					if s, ok := stringLit(field); ok {
						names = append(names, s)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: the commands table has no names this test can read", path)
	}
	return names
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func TestSubcommandTableParses(t *testing.T) {
	got := subcommands(t)
	for _, want := range []string{"edge", "worker", "demo-game", "games"} {
		if !slices.Contains(got, want) {
			t.Errorf("cmd/trellis has no %q subcommand (found %v)", want, got)
		}
	}
}

// dockerInstr is one Dockerfile instruction with its continuation lines
// joined.
type dockerInstr struct {
	line int
	op   string // upper case
	arg  string
}

func parseDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		op, arg, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{line: start, op: strings.ToUpper(op), arg: strings.TrimSpace(arg)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The image runs a static binary as a non-root user, on a minimal base, and
// its entrypoint and default command are real subcommands in exec form (the
// runtime image has no shell to run a shell form).
func TestDockerfile(t *testing.T) {
	cmds := subcommands(t)
	instrs := parseDockerfile(t)
	var stages []int // index of each FROM
	for i, in := range instrs {
		if in.op == "FROM" {
			stages = append(stages, i)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := instrs[stages[0]:stages[len(stages)-1]], instrs[stages[len(stages)-1]:]

	var built bool
	for _, in := range build {
		if in.op == "RUN" && strings.Contains(in.arg, "go build") {
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/trellis", "-o /trellis"} {
				if !strings.Contains(in.arg, want) {
					t.Errorf("Dockerfile:%d: go build without %q", in.line, want)
				}
			}
		}
	}
	if !built {
		t.Error("Dockerfile: no `go build` in the build stage")
	}

	from := strings.Fields(final[0].arg)
	base := from[len(from)-1]
	if !(base == "scratch" || strings.HasPrefix(base, "gcr.io/distroless/static") && strings.HasSuffix(base, ":nonroot")) {
		t.Errorf("Dockerfile:%d: runtime base %q, want distroless static nonroot or scratch", final[0].line, base)
	}
	var user, entrypoint, cmd []string
	for _, in := range final {
		switch in.op {
		case "USER":
			user = []string{in.arg}
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(in.arg), &argv); err != nil {
				t.Errorf("Dockerfile:%d: %s %s is not in exec (JSON) form: the image has no shell", in.line, in.op, in.arg)
				continue
			}
			if in.op == "ENTRYPOINT" {
				entrypoint = argv
			} else {
				cmd = argv
			}
		}
	}
	if len(user) == 0 {
		t.Error("Dockerfile: runtime stage sets no USER")
	} else if u, _, _ := strings.Cut(user[0], ":"); u == "0" || u == "root" {
		t.Errorf("Dockerfile: runtime USER %s is root", user[0])
	}
	if !slices.Equal(entrypoint, []string{"/trellis"}) {
		t.Errorf("Dockerfile: ENTRYPOINT %q, want [\"/trellis\"]: manifests pass the subcommand as args", entrypoint)
	}
	if len(cmd) == 0 || !slices.Contains(cmds, cmd[0]) {
		t.Errorf("Dockerfile: CMD %q does not start with a subcommand of %v", cmd, cmds)
	}
	var copied bool
	for _, in := range final {
		if in.op == "COPY" && strings.HasSuffix(in.arg, " /trellis") {
			copied = true
		}
	}
	if !copied {
		t.Error("Dockerfile: the runtime stage does not COPY the binary to /trellis")
	}
}

// checkValue reports a literal value that the variable's Go type cannot
// parse, the way envconfig would fail at start-up.
func checkValue(v envVar, value string) error {
	if strings.Contains(value, "$") { // $(VAR) or ${VAR}: expanded later
		return nil
	}
	var err error
	switch {
	case v.Type == nil:
	case v.Type == reflect.TypeFor[time.Duration]():
		_, err = time.ParseDuration(value)
	case v.Type.Kind() == reflect.Bool:
		_, err = strconv.ParseBool(value)
	case v.Type.Kind() >= reflect.Int && v.Type.Kind() <= reflect.Int64:
		_, err = strconv.ParseInt(value, 0, 64)
	case v.Type.Kind() >= reflect.Uint && v.Type.Kind() <= reflect.Uint64:
		_, err = strconv.ParseUint(value, 0, 64)
	case v.Type.Kind() == reflect.Float32 || v.Type.Kind() == reflect.Float64:
		_, err = strconv.ParseFloat(value, 64)
	}
	if err != nil {
		return err
	}
	return nil
}

// checkVar reports a TRELLIS_* variable set on a container that no config
// struct reads, that its subcommand does not read, or whose value does not
// parse.
func checkVar(t *testing.T, where string, vars map[string]envVar, role, name, value string, literal bool) {
	t.Helper()
	if !strings.HasPrefix(name, "TRELLIS_") {
		return
	}
	v, ok := vars[name]
	if !ok {
		t.Errorf("%s: sets %s, which no configuration struct reads", where, name)
		return
	}
	if prefixes, known := rolePrefixes[role]; known && !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
		t.Errorf("%s: sets %s, but `trellis %s` does not read it", where, name, role)
	}
	if literal {
		if err := checkValue(v, value); err != nil {
			t.Errorf("%s: %s=%q does not parse as %s: %v", where, name, value, v.Type, err)
		}
	}
}

// Every Kubernetes container runs a real subcommand and sets only variables
// that its subcommand reads, with values that parse, and secrets only from
// Secrets.
func TestKubernetesContainers(t *testing.T) {
	vars := knownVars(t)
	cmds := subcommands(t)
	objs := loadKubernetes(t)
	roles := make(map[string]string) // container name -> subcommand, for patches
	for _, o := range objs {
		if o.patch {
			continue
		}
		for _, c := range containers(o) {
			if c.isTrellis() {
				argv := c.argv()
				if len(argv) == 0 {
					t.Errorf("%s: no subcommand in args", c)
					continue
				}
				if !slices.Contains(cmds, argv[0]) {
					t.Errorf("%s: subcommand %q is not one of %v", c, argv[0], cmds)
				}
				roles[c.name()] = argv[0]
			}
		}
	}
	var trellisContainers int
	for _, o := range objs {
		for _, c := range containers(o) {
			role := roles[c.name()]
			if !c.isTrellis() && !o.patch {
				role = ""
			}
			if c.isTrellis() {
				trellisContainers++
			}
			for _, name := range sortedKeys(c.env()) {
				e := c.env()[name]
				_, literal := e["value"]
				checkVar(t, c.String(), vars, role, name, str(e, "value"), literal)
				if slices.Contains(secretVars, name) || name == "REDISCLI_AUTH" {
					if literal || str(e, "valueFrom", "secretKeyRef", "name") == "" {
						t.Errorf("%s: %s must come from a Secret (valueFrom.secretKeyRef), not a literal", c, name)
					}
				}
			}
		}
	}
	if trellisContainers < 2 {
		t.Errorf("found %d trellis containers in deploy/kubernetes, want edges and workers at least", trellisContainers)
	}
}

// No manifest carries secret material: Secrets are created out of band or
// generated from a git-ignored file.
func TestNoSecretsInManifests(t *testing.T) {
	for _, o := range loadKubernetes(t) {
		if o.kind() == "Secret" && (o.m["data"] != nil || o.m["stringData"] != nil) {
			t.Errorf("%s: a Secret with data in a manifest", o)
		}
		for _, g := range list(o.m, "secretGenerator") {
			if len(list(g, "literals")) > 0 {
				t.Errorf("%s: secretGenerator %s has literals; use a git-ignored env file", o, str(g, "name"))
			}
			for _, f := range append(strs(g, "envs"), strs(g, "files")...) {
				_, file, _ := strings.Cut(f, "=") // "key=path" or "path"
				if file == "" {
					file = f
				}
				path := filepath.Join(filepath.Dir(o.file), file)
				if !gitIgnored(t, path) {
					t.Errorf("%s: secretGenerator reads %s, which no .gitignore under deploy/ ignores", o, path)
				}
				if _, err := os.Stat(path + ".example"); err != nil {
					t.Errorf("%s: no %s.example showing what %s holds", o, path, file)
				}
			}
		}
	}
	// The example env files hold the names only.
	for _, path := range []string{".env.example", "kubernetes/overlays/dev/secrets.env.example"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") && slices.Contains(secretVars, k) && v != "" {
				t.Errorf("%s: %s has a value; examples must leave secrets empty", path, k)
			}
		}
	}
	if !gitIgnored(t, ".env") {
		t.Error("deploy/.env (compose secrets) is not git-ignored")
	}
}

// gitIgnored reports whether a .gitignore in deploy/ or below, on the way
// to path, has a pattern matching it. It understands the plain and
// single-star patterns deploy/ uses, not all of gitignore.
func gitIgnored(t *testing.T, path string) bool {
	t.Helper()
	path = filepath.Clean(path)
	dir := "."
	parts := strings.Split(filepath.Dir(path), string(filepath.Separator))
	for i := 0; i <= len(parts); i++ {
		if i > 0 {
			if parts[i-1] == "." {
				continue
			}
			dir = filepath.Join(dir, parts[i-1])
		}
		data, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(dir, path)
		for _, pat := range strings.Split(string(data), "\n") {
			pat = strings.TrimPrefix(strings.TrimSpace(pat), "/")
			if pat == "" || strings.HasPrefix(pat, "#") {
				continue
			}
			if ok, _ := filepath.Match(pat, rel); ok {
				return true
			}
			if ok, _ := filepath.Match(pat, filepath.Base(path)); ok && !strings.Contains(pat, "/") {
				return true
			}
		}
	}
	return false
}

// workload finds the one non-patch workload running `trellis <role>`.
func workload(t *testing.T, objs []object, role string) (object, container) {
	t.Helper()
	var found []container
	for _, o := range objs {
		if o.patch || !strings.HasPrefix(o.file, filepath.Join("kubernetes", "base")) {
			continue
		}
		for _, c := range containers(o) {
			if argv := c.argv(); c.isTrellis() && len(argv) > 0 && argv[0] == role {
				found = append(found, c)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("kubernetes/base: %d workloads run `trellis %s`, want 1", len(found), role)
	}
	return found[0].owner, found[0]
}

// listenPort is the port of a listen address such as ":8080" or
// "0.0.0.0:9091"; loopback says whether the host only accepts local peers.
func listenPort(t *testing.T, what, addr string) (port int, loopback bool) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: port: %v", what, addr, err)
	}
	ip := net.ParseIP(host)
	return port, host == "localhost" || ip != nil && ip.IsLoopback()
}

// effective is a container's value for a variable: its literal env value,
// or the config struct's default.
func effective(t *testing.T, vars map[string]envVar, c container, name string) string {
	t.Helper()
	if v, ok := c.envValue(name); ok {
		return v
	}
	v, ok := vars[name]
	if !ok {
		t.Fatalf("%s is read by no configuration struct", name)
	}
	return v.Default
}

// checkProbe checks that a probe is an HTTP GET of a served path on the
// given port.
func checkProbe(t *testing.T, c container, kind string, port int, served []string, wantPath string) {
	t.Helper()
	probe := dict(c.m, kind)
	if probe == nil {
		t.Errorf("%s: no %s", c, kind)
		return
	}
	path := str(probe, "httpGet", "path")
	if !slices.Contains(served, path) {
		t.Errorf("%s: %s path %q is not one the binary serves (%v)", c, kind, path, served)
	}
	if wantPath != "" && path != wantPath {
		t.Errorf("%s: %s path %q, want %q", c, kind, path, wantPath)
	}
	if p, ok := c.port(at(probe, "httpGet", "port")); !ok || p != port {
		t.Errorf("%s: %s port %v is not the listen port %d", c, kind, at(probe, "httpGet", "port"), port)
	}
}

// checkScrape checks the prometheus.io annotations of a workload.
func checkScrape(t *testing.T, o object, port int, served []string) {
	t.Helper()
	ann := dict(o.m, "spec", "template", "metadata", "annotations")
	if str(ann, "prometheus.io/scrape") != "true" {
		t.Errorf("%s: no prometheus.io/scrape annotation", o)
		return
	}
	if p, _ := intOf(ann, "prometheus.io/port"); p != port {
		t.Errorf("%s: prometheus.io/port %q, want %d", o, str(ann, "prometheus.io/port"), port)
	}
	if path := str(ann, "prometheus.io/path"); !slices.Contains(served, path) || path != "/metrics" {
		t.Errorf("%s: prometheus.io/path %q, want /metrics", o, path)
	}
}

// selecting returns the non-patch objects of kind whose selector selects
// the workload's pods.
func selecting(objs []object, kind string, w object, selectorPath ...any) []object {
	var out []object
	for _, o := range objs {
		if o.patch || o.kind() != kind {
			continue
		}
		sel := dict(o.m, selectorPath...)
		if len(sel) > 0 && selects(sel, podLabels(w)) {
			out = append(out, o)
		}
	}
	return out
}

func TestEdgeManifests(t *testing.T) {
	vars := knownVars(t)
	objs := loadKubernetes(t)
	dep, c := workload(t, objs, "edge")

	port, _ := listenPort(t, "TRELLIS_EDGE_LISTEN", effective(t, vars, c, "TRELLIS_EDGE_LISTEN"))
	defPort, _ := listenPort(t, "edge.Config default listen", vars["TRELLIS_EDGE_LISTEN"].Default)
	if port != defPort {
		t.Errorf("%s: listens on %d, not the edge's default %d; keep them equal so docs and probes agree", c, port, defPort)
	}
	if !c.hasContainerPort(port) {
		t.Errorf("%s: no containerPort %d", c, port)
	}
	// The probes ask the players' port (it serves /healthz and /readyz
	// too): they check the listener players use.
	checkProbe(t, c, "readinessProbe", port, edgePaths, "/readyz")
	checkProbe(t, c, "livenessProbe", port, edgePaths, "/healthz")

	adminPort, loopback := listenPort(t, "TRELLIS_EDGE_ADMIN_LISTEN", effective(t, vars, c, "TRELLIS_EDGE_ADMIN_LISTEN"))
	defAdmin, _ := listenPort(t, "edge.Config default admin listen", vars["TRELLIS_EDGE_ADMIN_LISTEN"].Default)
	if loopback {
		t.Errorf("%s: the admin server listens on loopback; set TRELLIS_EDGE_ADMIN_LISTEN to 0.0.0.0:%d so Prometheus reaches it", c, adminPort)
	}
	if adminPort != defAdmin {
		t.Errorf("%s: admin port %d, not the edge's default %d", c, adminPort, defAdmin)
	}
	if adminPort == port {
		t.Errorf("%s: the admin port is the players' port %d", c, port)
	}
	if !c.hasContainerPort(adminPort) {
		t.Errorf("%s: no containerPort %d", c, adminPort)
	}
	checkScrape(t, dep, adminPort, edgeAdminPaths)

	pre := dict(c.m, "lifecycle", "preStop")
	if pre == nil {
		t.Errorf("%s: no preStop: browsers would be cut before load balancers stop sending new ones", c)
	}
	if grace, _ := intOf(dep.m, "spec", "template", "spec", "terminationGracePeriodSeconds"); pre != nil {
		if sleep, ok := intOf(pre, "sleep", "seconds"); ok && grace <= sleep+10 {
			t.Errorf("%s: terminationGracePeriodSeconds %d leaves under 10s after the %ds preStop", dep, grace, sleep)
		}
	}

	svcs := selecting(objs, "Service", dep, "spec", "selector")
	if len(svcs) == 0 {
		t.Errorf("no Service selects %s", dep)
	}
	var players bool
	for _, s := range svcs {
		reaches := map[int]bool{}
		for _, p := range list(s.m, "spec", "ports") {
			tp, ok := c.port(at(p, "targetPort"))
			if !ok || tp != port && tp != adminPort {
				t.Errorf("%s: targetPort %v reaches neither the edge's port %d nor its admin port %d", s, at(p, "targetPort"), port, adminPort)
			}
			reaches[tp] = true
		}
		// The Service players arrive by must not lead to the admin port.
		if reaches[port] && reaches[adminPort] {
			t.Errorf("%s: exposes the admin port %d next to the players' port %d", s, adminPort, port)
		}
		players = players || reaches[port]
	}
	if !players {
		t.Errorf("no Service reaches %s's players' port %d", dep, port)
	}
	if len(selecting(objs, "PodDisruptionBudget", dep, "spec", "selector")) == 0 {
		t.Errorf("no PodDisruptionBudget selects %s", dep)
	}
	var hpa bool
	for _, o := range objs {
		if o.kind() == "HorizontalPodAutoscaler" && str(o.m, "spec", "scaleTargetRef", "name") == dep.name() &&
			str(o.m, "spec", "scaleTargetRef", "kind") == dep.kind() {
			hpa = true
		}
	}
	if !hpa {
		t.Errorf("no HorizontalPodAutoscaler scales %s", dep)
	}
}

func TestWorkerManifests(t *testing.T) {
	vars := knownVars(t)
	objs := loadKubernetes(t)
	dep, c := workload(t, objs, "worker")

	port, loopback := listenPort(t, "TRELLIS_WORKER_ADMIN_LISTEN", effective(t, vars, c, "TRELLIS_WORKER_ADMIN_LISTEN"))
	defPort, _ := listenPort(t, "worker.Config default admin listen", vars["TRELLIS_WORKER_ADMIN_LISTEN"].Default)
	if loopback {
		t.Errorf("%s: the admin server listens on loopback; set TRELLIS_WORKER_ADMIN_LISTEN to 0.0.0.0:%d so probes and Prometheus reach it", c, port)
	}
	if port != defPort {
		t.Errorf("%s: admin port %d, not the worker's default %d", c, port, defPort)
	}
	if !c.hasContainerPort(port) {
		t.Errorf("%s: no containerPort %d", c, port)
	}
	// /readyz is 503 while the worker drains, is fenced or is full: right
	// for readiness, wrong for liveness (the kubelet would kill a
	// draining worker, cutting its players). /healthz is 200 in all of
	// those: liveness.
	checkProbe(t, c, "readinessProbe", port, workerPaths, "/readyz")
	if live := dict(c.m, "livenessProbe"); live == nil {
		t.Errorf("%s: no livenessProbe", c)
	} else if path := str(live, "httpGet", "path"); path == "/readyz" {
		t.Errorf("%s: livenessProbe on /readyz would kill draining workers", c)
	} else if path != "" {
		checkProbe(t, c, "livenessProbe", port, workerPaths, "/healthz")
	} else if p, ok := c.port(at(live, "tcpSocket", "port")); !ok || p != port {
		t.Errorf("%s: livenessProbe port %v is not the admin port %d", c, at(live, "tcpSocket", "port"), port)
	}
	checkScrape(t, dep, port, workerPaths)

	if fp := str(c.env()["TRELLIS_WORKER_NAME"], "valueFrom", "fieldRef", "fieldPath"); fp != "metadata.name" {
		t.Errorf("%s: TRELLIS_WORKER_NAME should be the pod name (downward API metadata.name), is %q", c, fp)
	}

	drain, err := time.ParseDuration(effective(t, vars, c, "TRELLIS_WORKER_DRAIN_TIMEOUT"))
	if err != nil {
		t.Fatalf("%s: drain timeout: %v", c, err)
	}
	grace, ok := intOf(dep.m, "spec", "template", "spec", "terminationGracePeriodSeconds")
	if !ok {
		t.Errorf("%s: no terminationGracePeriodSeconds (Kubernetes' default 30s kills a draining worker)", dep)
	} else if time.Duration(grace)*time.Second < drain+drainMargin {
		t.Errorf("%s: terminationGracePeriodSeconds %d < drain timeout %s + %s margin", dep, grace, drain, drainMargin)
	}

	if len(selecting(objs, "PodDisruptionBudget", dep, "spec", "selector")) == 0 {
		t.Errorf("no PodDisruptionBudget selects %s", dep)
	}

	// KEDA scales workers on the control stream's pending entries.
	var scaled bool
	for _, o := range objs {
		if o.kind() != "ScaledObject" || str(o.m, "spec", "scaleTargetRef", "name") != dep.name() {
			continue
		}
		for _, tr := range list(o.m, "spec", "triggers") {
			if str(tr, "type") != "redis-streams" {
				continue
			}
			scaled = true
			// A single node's namespace has one control stream.
			if got, want := str(tr, "metadata", "stream"), store.ControlStreamName(store.DefaultNamespace, 0); got != want {
				t.Errorf("%s: stream %q, want %q", o, got, want)
			}
			if got := str(tr, "metadata", "consumerGroup"); got != store.GroupWorkers {
				t.Errorf("%s: consumerGroup %q, want %q", o, got, store.GroupWorkers)
			}
			if n, ok := intOf(tr, "metadata", "pendingEntriesCount"); !ok || n < 1 {
				t.Errorf("%s: pendingEntriesCount %q, want a positive number", o, str(tr, "metadata", "pendingEntriesCount"))
			}
			if addr := str(tr, "metadata", "address"); addr != "" {
				host, _, _ := net.SplitHostPort(addr)
				if svc, _, _ := strings.Cut(host, "."); !hasService(objs, svc, 6379) {
					t.Errorf("%s: address %q names no Service with port 6379", o, addr)
				}
			}
		}
	}
	if !scaled {
		t.Errorf("no KEDA ScaledObject with a redis-streams trigger scales %s", dep)
	}
}

func hasService(objs []object, name string, port int) bool {
	for _, o := range objs {
		if o.kind() == "Service" && o.name() == name {
			for _, p := range list(o.m, "spec", "ports") {
				if n, _ := intOf(p, "port"); n == port {
					return true
				}
			}
		}
	}
	return false
}

// Edges and workers point TRELLIS_REDIS_URL at a Service that exists, or,
// for a cluster (a comma-separated list), at pods of a StatefulSet through
// its headless Service.
func TestRedisURLsResolve(t *testing.T) {
	objs := loadKubernetes(t)
	for _, o := range objs {
		for _, c := range containers(o) {
			u, ok := c.envValue("TRELLIS_REDIS_URL")
			if !ok {
				continue
			}
			for _, node := range redisURLNodes(t, c.String(), u) {
				if !kubeAddrResolves(objs, node.host, node.port) {
					t.Errorf("%s: TRELLIS_REDIS_URL node %s:%d is no Service with that port, nor a pod of a StatefulSet behind its headless Service", c, node.host, node.port)
				}
			}
		}
	}
	services := loadCompose(t)
	for _, name := range sortedKeys(services) {
		s := services[name]
		if u, ok := s.env()["TRELLIS_REDIS_URL"]; ok {
			for _, node := range redisURLNodes(t, "compose "+name, u) {
				if _, ok := services[node.host]; !ok {
					t.Errorf("compose %s: TRELLIS_REDIS_URL %q names no service %s", name, u, node.host)
				}
			}
		}
	}
}

// hostPort is one node of a TRELLIS_REDIS_URL.
type hostPort struct {
	host string
	port int
}

// redisURLNodes splits a TRELLIS_REDIS_URL into its nodes: one for a
// single URL, several for a comma-separated cluster list.
func redisURLNodes(t *testing.T, where, u string) []hostPort {
	t.Helper()
	var out []hostPort
	for _, part := range strings.Split(u, ",") {
		host, port := redisHostPort(t, where, strings.TrimSpace(part))
		out = append(out, hostPort{host, port})
	}
	return out
}

// kubeAddrResolves says whether host:port reaches something the manifests
// define: a Service with that port, or POD.SERVICE where SERVICE is a
// headless Service with that port and POD one of the pods of the
// StatefulSet it governs (NAME-0 to NAME-(replicas-1)).
func kubeAddrResolves(objs []object, host string, port int) bool {
	if hasService(objs, host, port) {
		return true
	}
	pod, svc, ok := strings.Cut(host, ".")
	if !ok || strings.Contains(svc, ".") || !hasService(objs, svc, port) {
		return false
	}
	for _, o := range objs {
		if o.kind() != "Service" || o.name() != svc {
			continue
		}
		if str(o.m, "spec", "clusterIP") != "None" {
			return false
		}
	}
	for _, o := range objs {
		if o.patch || o.kind() != "StatefulSet" || str(o.m, "spec", "serviceName") != svc {
			continue
		}
		n, ok := intOf(o.m, "spec", "replicas")
		if !ok {
			n = 1
		}
		for i := range n {
			if pod == fmt.Sprintf("%s-%d", o.name(), i) {
				return true
			}
		}
	}
	return false
}

func redisHostPort(t *testing.T, where, u string) (string, int) {
	t.Helper()
	rest, ok := strings.CutPrefix(u, "redis://")
	if !ok {
		t.Fatalf("%s: TRELLIS_REDIS_URL %q is not redis://", where, u)
	}
	if _, after, ok := strings.Cut(rest, "@"); ok {
		t.Errorf("%s: TRELLIS_REDIS_URL carries credentials; use TRELLIS_REDIS_PASSWORD from a Secret", where)
		rest = after
	}
	hostport, _, _ := strings.Cut(rest, "/")
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 6379
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// Redis keeps its data on a volume, with the append-only file on, and
// refuses writes rather than evicting keys when full.
func TestRedisManifests(t *testing.T) {
	objs := loadKubernetes(t)
	var sts []object
	for _, o := range objs {
		if !o.patch && o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis" {
			sts = append(sts, o)
		}
	}
	// The base's, and the one components/redis-cluster puts in its place.
	if len(sts) != 2 {
		t.Fatalf("%d Redis StatefulSets, want 2 (base, components/redis-cluster)", len(sts))
	}
	for _, o := range sts {
		checkRedisStatefulSet(t, objs, o)
	}
}

func checkRedisStatefulSet(t *testing.T, objs []object, o object) {
	t.Helper()
	claims := map[string]bool{}
	for _, vct := range list(o.m, "spec", "volumeClaimTemplates") {
		claims[str(vct, "metadata", "name")] = true
	}
	cs := containers(o)
	if len(cs) == 0 {
		t.Fatalf("%s: no containers", o)
	}
	var mounted bool
	for _, vm := range list(cs[0].m, "volumeMounts") {
		if str(vm, "mountPath") == "/data" && claims[str(vm, "name")] {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("%s: /data is not on a volumeClaimTemplate", o)
	}
	// The settings come from the command line or a mounted ConfigMap.
	conf := strings.Join(cs[0].argv(), " ")
	for _, v := range list(podSpec(o), "volumes") {
		if cm := str(v, "configMap", "name"); cm != "" {
			for _, other := range objs {
				if other.kind() == "ConfigMap" && other.name() == cm {
					for _, k := range sortedKeys(dict(other.m, "data")) {
						conf += "\n" + str(other.m, "data", k)
					}
				}
			}
		}
	}
	checkRedisConf(t, o.String(), conf)
	for _, tr := range []string{"readinessProbe", "livenessProbe"} {
		if dict(cs[0].m, tr) == nil {
			t.Errorf("%s: no %s", cs[0], tr)
		}
	}
}

var (
	aofOn      = regexp.MustCompile(`(?m)(^|\s|--)appendonly\s+yes\b`)
	noEviction = regexp.MustCompile(`(?m)(^|\s|--)maxmemory-policy\s+noeviction\b`)
)

func checkRedisConf(t *testing.T, where, conf string) {
	t.Helper()
	if !aofOn.MatchString(conf) {
		t.Errorf("%s: Redis without appendonly yes", where)
	}
	if !noEviction.MatchString(conf) {
		t.Errorf("%s: Redis without maxmemory-policy noeviction", where)
	}
}

// Edges reach Redis only (and DNS to find it); workers reach Redis and the
// games; Redis admits edges and workers.
func TestNetworkPolicies(t *testing.T) {
	objs := loadKubernetes(t)
	edgeDep, _ := workload(t, objs, "edge")
	workerDep, _ := workload(t, objs, "worker")
	var redis object
	for _, o := range objs {
		if !o.patch && o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis" {
			redis = o
		}
	}
	if redis.m == nil {
		t.Fatal("no Redis StatefulSet")
	}
	redisLabels := podLabels(redis)

	// peersReach says whether a rule's peers include the pods with labels.
	peersReach := func(rule any, key string, labels map[string]any) bool {
		for _, peer := range list(rule, key) {
			if ps := dict(peer, "podSelector"); ps != nil && at(peer, "namespaceSelector") == nil && selects(ps, labels) {
				return true
			}
		}
		return false
	}
	isDNS := func(rule any) bool {
		ports := list(rule, "ports")
		if len(ports) == 0 {
			return false
		}
		for _, p := range ports {
			if n, _ := intOf(p, "port"); n != 53 {
				return false
			}
		}
		return true
	}

	policies := func(w object) []object {
		var out []object
		for _, o := range objs {
			if o.kind() == "NetworkPolicy" && selects(dict(o.m, "spec", "podSelector"), podLabels(w)) {
				out = append(out, o)
			}
		}
		return out
	}
	egressLimited := func(w object) bool {
		for _, p := range policies(w) {
			if slices.Contains(strs(p.m, "spec", "policyTypes"), "Egress") {
				return true
			}
		}
		return false
	}

	if !egressLimited(edgeDep) {
		t.Errorf("no NetworkPolicy limits %s's egress", edgeDep)
	}
	var edgeToRedis bool
	for _, p := range policies(edgeDep) {
		for _, rule := range list(p.m, "spec", "egress") {
			switch {
			case peersReach(rule, "to", redisLabels):
				edgeToRedis = true
			case isDNS(rule):
			default:
				t.Errorf("%s: an egress rule lets edges reach more than Redis and DNS: %v", p, rule)
			}
		}
	}
	if !edgeToRedis {
		t.Error("no NetworkPolicy lets edges reach Redis")
	}

	if !egressLimited(workerDep) {
		t.Errorf("no NetworkPolicy limits %s's egress", workerDep)
	}
	var workerToRedis, workerToGames bool
	for _, p := range policies(workerDep) {
		for _, rule := range list(p.m, "spec", "egress") {
			if peersReach(rule, "to", redisLabels) {
				workerToRedis = true
			} else if !isDNS(rule) {
				workerToGames = true
			}
		}
	}
	if !workerToRedis {
		t.Error("no NetworkPolicy lets workers reach Redis")
	}
	if !workerToGames {
		t.Error("no NetworkPolicy lets workers reach games")
	}

	admitted := map[string]bool{}
	for _, p := range policies(redis) {
		for _, rule := range list(p.m, "spec", "ingress") {
			for role, w := range map[string]object{"edge": edgeDep, "worker": workerDep} {
				if peersReach(rule, "from", podLabels(w)) {
					admitted[role] = true
				}
			}
		}
	}
	for _, role := range []string{"edge", "worker"} {
		if !admitted[role] {
			t.Errorf("no NetworkPolicy admits %ss to Redis", role)
		}
	}
}

// Every TRELLIS_* name written anywhere in deploy/ or docs/OPERATIONS.md
// (manifests, compose, env examples, README, the ops guide) is real, so
// docs cannot tell operators to set a variable that does nothing.
func TestEveryMentionedVariableExists(t *testing.T) {
	vars := knownVars(t)
	prefixes := map[string]bool{"TRELLIS_LOG": true}
	for _, s := range sections() {
		prefixes[s.prefix] = true
	}
	mention := regexp.MustCompile(`\bTRELLIS_[A-Z0-9_]*[A-Z0-9]\b`)
	files := []string{filepath.Join("..", "docs", "OPERATIONS.md")}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read %s: %v", f, err)
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, name := range mention.FindAllString(line, -1) {
				if _, ok := vars[name]; !ok && !prefixes[name] {
					t.Errorf("%s:%d: %s is read by no configuration struct", f, i+1, name)
				}
			}
		}
	}
}

// The compose file: Redis with AOF and noeviction, two edges behind the
// load balancer, two workers, the demo game and a one-shot registration.
func TestCompose(t *testing.T) {
	vars := knownVars(t)
	cmds := subcommands(t)
	services := loadCompose(t)
	byRole := map[string][]composeService{}
	for _, name := range sortedKeys(services) {
		s := services[name]
		if !s.isTrellis() {
			continue
		}
		argv := s.command()
		if len(argv) == 0 {
			t.Errorf("compose %s: no command; the image's default is not meant to be relied on", name)
			continue
		}
		if !slices.Contains(cmds, argv[0]) {
			t.Errorf("compose %s: subcommand %q is not one of %v", name, argv[0], cmds)
		}
		byRole[argv[0]] = append(byRole[argv[0]], s)
		env := s.env()
		for _, k := range sortedKeys(env) {
			v := env[k]
			value, literal := composeLiteral(v)
			checkVar(t, "compose "+name, vars, argv[0], k, value, literal)
			if slices.Contains(secretVars, k) && !strings.HasPrefix(v, "${") {
				t.Errorf("compose %s: %s is written in the file; take it from .env as ${%s:?...}", name, k, k)
			}
		}
	}
	if n := len(byRole["edge"]); n < 2 {
		t.Errorf("compose: %d edges, want 2", n)
	}
	if n := len(byRole["worker"]); n < 2 {
		t.Errorf("compose: %d workers, want 2", n)
	}

	// Workers: distinct stable names, a stop grace period covering the
	// drain.
	seen := map[string]bool{}
	for _, w := range byRole["worker"] {
		env := w.env()
		name := env["TRELLIS_WORKER_NAME"]
		if name == "" || seen[name] {
			t.Errorf("compose %s: TRELLIS_WORKER_NAME %q must be set and unique", w.name, name)
		}
		seen[name] = true
		drainStr := env["TRELLIS_WORKER_DRAIN_TIMEOUT"]
		if drainStr == "" {
			drainStr = vars["TRELLIS_WORKER_DRAIN_TIMEOUT"].Default
		}
		drain, err := time.ParseDuration(drainStr)
		if err != nil {
			t.Fatalf("compose %s: drain timeout: %v", w.name, err)
		}
		grace, err := time.ParseDuration(str(w.m, "stop_grace_period"))
		if err != nil || grace < drain+drainMargin {
			t.Errorf("compose %s: stop_grace_period %q must cover the drain timeout %s + %s", w.name, str(w.m, "stop_grace_period"), drain, drainMargin)
		}
	}

	// Redis.
	redis, ok := services["redis"]
	if !ok {
		t.Fatal("compose: no redis service")
	}
	checkRedisConf(t, "compose redis", strings.Join(redis.command(), " "))
	if len(list(redis.m, "volumes")) == 0 {
		t.Error("compose redis: no volume: the AOF would die with the container")
	}

	// The demo game and its registration agree on host and port.
	if len(byRole["demo-game"]) != 1 {
		t.Fatalf("compose: %d demo-game services, want 1", len(byRole["demo-game"]))
	}
	game := byRole["demo-game"][0]
	listen := flagValue(game.command(), "--listen")
	_, gamePort, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("compose %s: --listen %q: %v", game.name, listen, err)
	}
	var registered bool
	for _, s := range byRole["games"] {
		argv := s.command()
		if len(argv) < 2 || (argv[1] != "add" && argv[1] != "import") {
			continue
		}
		registered = true
		if str(s.m, "restart") != "no" {
			t.Errorf("compose %s: a one-shot must have restart: \"no\"", s.name)
		}
		var games []store.Game
		if argv[1] == "add" {
			port, _ := strconv.Atoi(flagValue(argv, "--port"))
			games = append(games, store.Game{ID: flagValue(argv, "--id"), Host: flagValue(argv, "--host"), Port: port})
		} else {
			games = importedGames(t, s, argv)
		}
		var found bool
		for _, g := range games {
			if g.Host == game.name {
				found = true
				if strconv.Itoa(g.Port) != gamePort {
					t.Errorf("compose %s: game %s at port %d, the demo game listens on %s", s.name, g.ID, g.Port, gamePort)
				}
			}
		}
		if !found {
			t.Errorf("compose %s: registers no game at host %q (the demo game's service)", s.name, game.name)
		}
	}
	if !registered {
		t.Error("compose: no one-shot `trellis games add|import` service")
	}

	// The load balancer sends WebSocket upgrades to every edge's port.
	checkNginx(t, services, byRole["edge"], vars)
}

// composeLiteral is the value compose passes, for values that are literals
// or ${VAR:-default} interpolations; ok is false when it cannot be known.
func composeLiteral(v string) (string, bool) {
	if !strings.Contains(v, "${") {
		return v, true
	}
	if inner, ok := strings.CutPrefix(v, "${"); ok && strings.HasSuffix(inner, "}") {
		if _, def, ok := strings.Cut(strings.TrimSuffix(inner, "}"), ":-"); ok {
			return def, true
		}
	}
	return "", false
}

// flagValue is the value after flag in argv ("--flag value" or
// "--flag=value"; one dash or two).
func flagValue(argv []string, flag string) string {
	bare := strings.TrimLeft(flag, "-")
	for i, a := range argv {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != bare {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

var (
	nginxServer  = regexp.MustCompile(`(?m)^\s*server\s+([A-Za-z0-9_.-]+):(\d+)\b`)
	nginxUpgrade = regexp.MustCompile(`proxy_set_header\s+Upgrade\s+\$http_upgrade`)
	nginxConn    = regexp.MustCompile(`proxy_set_header\s+Connection\s+\$connection_upgrade`)
)

// checkNginx checks every load balancer (a service mounting an nginx
// configuration): each of its upstream servers is an edge of its own
// profile, on the edge's port, and every edge is an upstream of the load
// balancer of its profile (compose's cluster profile has its own).
func checkNginx(t *testing.T, services map[string]composeService, edges []composeService, vars map[string]envVar) {
	t.Helper()
	profile := func(s composeService) string { return strings.Join(strs(s.m, "profiles"), ",") }
	byName := map[string]composeService{}
	for _, e := range edges {
		byName[e.name] = e
	}
	balanced := map[string]string{} // edge -> its load balancer
	var lbs int
	for _, name := range sortedKeys(services) {
		lb := services[name]
		var conf string
		for _, v := range strs(lb.m, "volumes") {
			src, dst, _ := strings.Cut(v, ":")
			if strings.HasPrefix(dst, "/etc/nginx/") {
				data, err := os.ReadFile(src)
				if err != nil {
					t.Fatalf("compose %s: %v", name, err)
				}
				conf = string(data)
			}
		}
		if conf == "" {
			continue
		}
		lbs++
		if !nginxUpgrade.MatchString(conf) || !nginxConn.MatchString(conf) {
			t.Errorf("nginx of %s: no WebSocket upgrade headers (Upgrade $http_upgrade, Connection $connection_upgrade)", name)
		}
		for _, m := range nginxServer.FindAllStringSubmatch(conf, -1) {
			host, port := m[1], m[2]
			e, ok := byName[host]
			if !ok {
				t.Errorf("nginx of %s: upstream server %s is no compose edge", name, host)
				continue
			}
			if profile(e) != profile(lb) {
				t.Errorf("nginx of %s (profiles %q): upstream %s is in profiles %q", name, profile(lb), host, profile(e))
			}
			listen := e.env()["TRELLIS_EDGE_LISTEN"]
			if listen == "" {
				listen = vars["TRELLIS_EDGE_LISTEN"].Default
			}
			want, _ := listenPort(t, "compose "+e.name+" TRELLIS_EDGE_LISTEN", listen)
			if port != strconv.Itoa(want) {
				t.Errorf("nginx of %s: upstream %s:%s, but the edge listens on %d", name, host, port, want)
			}
			balanced[host] = name
		}
	}
	if lbs == 0 {
		t.Fatal("compose: no load balancer service mounting an nginx configuration")
	}
	for _, e := range edges {
		if _, ok := balanced[e.name]; !ok {
			t.Errorf("nginx: edge %s is not an upstream server of any load balancer", e.name)
		}
	}
}

// importedGames reads the file a `trellis games import FILE` service gets
// through a bind mount, with the parser `trellis games import` uses.
func importedGames(t *testing.T, s composeService, argv []string) []store.Game {
	t.Helper()
	if len(argv) < 3 {
		t.Fatalf("compose %s: games import without a file", s.name)
	}
	for _, v := range strs(s.m, "volumes") {
		src, rest, _ := strings.Cut(v, ":")
		dst, _, _ := strings.Cut(rest, ":")
		if dst == argv[2] {
			return parseGamesFile(t, src)
		}
	}
	t.Fatalf("compose %s: %s is not mounted from a file in deploy/", s.name, argv[2])
	return nil
}

func parseGamesFile(t *testing.T, path string) []store.Game {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	games, err := store.ParseGames(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(games) == 0 {
		t.Fatalf("%s: no games", path)
	}
	return games
}

// Games files loaded into Kubernetes by configMapGenerator parse as
// `trellis games import` parses them, and name Services that exist.
func TestKubernetesGames(t *testing.T) {
	objs := loadKubernetes(t)
	var checked int
	for _, o := range objs {
		for _, g := range list(o.m, "configMapGenerator") {
			for _, f := range strs(g, "files") {
				if filepath.Base(f) != "games.yaml" {
					continue
				}
				checked++
				for _, game := range parseGamesFile(t, filepath.Join(filepath.Dir(o.file), f)) {
					if strings.Contains(game.Host, ".") {
						continue // outside the overlay
					}
					if !hasService(objs, game.Host, game.Port) {
						t.Errorf("%s: game %s at %s:%d, but no Service %s has port %d", o.file, game.ID, game.Host, game.Port, game.Host, game.Port)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no overlay loads a games.yaml")
	}
}
