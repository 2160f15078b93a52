package deploy

import (
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The dashboard and the alert rules are written against metric names and
// labels; a renamed metric leaves a panel empty and an alert silent, which
// nobody notices until the incident it was for. These tests hold them to
// the metrics the code registers (registeredMetrics).

const (
	monitoringComponent = "kubernetes/components/monitoring"
	dashboardFile       = monitoringComponent + "/dashboard.json"
	prometheusRuleFile  = monitoringComponent + "/prometheusrule.yaml"
	rulesFile           = "monitoring/rules.yaml"
	composePrometheus   = "monitoring/prometheus.yml"
)

// What the alerts must watch, by series, and why.
var alertCoverage = map[string]string{
	"trellis_worker_self_fences_total":          "sessions stopped because Redis was away longer than the lease TTL",
	"trellis_worker_leases_lost_total":          "sessions stopped because their lease was gone",
	"trellis_worker_leases_restored_total":      "Redis lost acknowledged writes (leases restored)",
	"trellis_controller_dead_letters_total":     "control entries given up on",
	"trellis_worker_output_lost_bytes_total":    "players saw a gap",
	"trellis_worker_lease_renew_seconds_bucket": "renewals slow enough to lose leases",
	"trellis_controller_stream_pending":         "commands waiting on full or slow workers",
	"trellis_worker_sessions":                   "no worker is up",
	"trellis_edge_connections":                  "no edge is up",
	"trellis_edge_redis_errors_total":           "the edge cannot reach Redis",
	"trellis_worker_redis_errors_total":         "the worker cannot reach Redis",
	"trellis_controller_redis_errors_total":     "the controller cannot reach Redis",
}

// What the dashboard must show.
var dashboardCoverage = []string{
	"trellis_worker_sessions", "trellis_edge_connections", "trellis_edge_subscriptions",
	"trellis_worker_lease_renew_seconds_bucket", "trellis_worker_output_bytes_total",
	"trellis_worker_output_lost_bytes_total", "trellis_worker_self_fences_total",
	"trellis_worker_leases_lost_total", "trellis_controller_dead_letters_total",
	"trellis_controller_stream_lag", "trellis_controller_stream_pending",
	"trellis_edge_closes_total", "trellis_edge_error_frames_total",
	"trellis_edge_redis_errors_total", "trellis_worker_redis_errors_total",
	"trellis_controller_redis_errors_total",
}

// promDuration is Prometheus's duration syntax (model.ParseDuration).
var promDuration = regexp.MustCompile(`^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$`)

var alertName = regexp.MustCompile(`^Trellis[A-Z][A-Za-z0-9]*$`)

// checkRuleGroups checks Prometheus rule groups (a rules file's "groups",
// a PrometheusRule's spec.groups) and returns the series they use.
func checkRuleGroups(t *testing.T, where string, groups []any) []string {
	t.Helper()
	reg := registeredMetrics(t)
	if len(groups) == 0 {
		t.Errorf("%s: no rule groups", where)
	}
	var used []string
	groupNames, alerts := map[string]bool{}, map[string]bool{}
	for gi, g := range groups {
		gname := str(g, "name")
		if gname == "" || groupNames[gname] {
			t.Errorf("%s: group %d: name %q is empty or repeated", where, gi, gname)
		}
		groupNames[gname] = true
		if iv := str(g, "interval"); iv != "" && !promDuration.MatchString(iv) {
			t.Errorf("%s: group %s: interval %q is not a Prometheus duration", where, gname, iv)
		}
		rules := list(g, "rules")
		if len(rules) == 0 {
			t.Errorf("%s: group %s has no rules", where, gname)
		}
		for ri, r := range rules {
			name := str(r, "alert")
			here := where + ": group " + gname + " alert " + name
			if !alertName.MatchString(name) || alerts[name] {
				t.Errorf("%s: rule %d: alert name %q is not TrellisCamelCase, or repeated", where, ri, name)
			}
			alerts[name] = true
			for _, k := range sortedKeys(dict(r)) {
				if !slices.Contains([]string{"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, k) {
					t.Errorf("%s: unknown field %q (Prometheus refuses the file)", here, k)
				}
			}
			expr := str(r, "expr")
			if strings.TrimSpace(expr) == "" {
				t.Errorf("%s: no expr", here)
			}
			problems, u := checkPromQL(expr, reg)
			for _, p := range problems {
				t.Errorf("%s: expr: %s", here, p)
			}
			used = append(used, u...)
			for _, k := range []string{"for", "keep_firing_for"} {
				if d := str(r, k); d != "" && !promDuration.MatchString(d) {
					t.Errorf("%s: %s %q is not a Prometheus duration", here, k, d)
				}
			}
			if sev := str(r, "labels", "severity"); !slices.Contains([]string{"critical", "warning", "info"}, sev) {
				t.Errorf("%s: severity %q, want critical, warning or info", here, sev)
			}
			for _, k := range []string{"summary", "description"} {
				if str(r, "annotations", k) == "" {
					t.Errorf("%s: no %s annotation", here, k)
				}
			}
			for _, a := range dict(r, "annotations") {
				if strings.Count(str(a), "{{") != strings.Count(str(a), "}}") {
					t.Errorf("%s: annotation %q has unbalanced {{ }}", here, str(a))
				}
			}
		}
	}
	return used
}

// The plain rules file (for a Prometheus without the Operator, and the
// compose stack) and the PrometheusRule (for the Operator) hold the same
// rules, which are valid and watch what operators must hear about.
func TestAlertRules(t *testing.T) {
	plain := decodeAll(t, rulesFile)
	if len(plain) != 1 {
		t.Fatalf("%s: %d documents, want 1", rulesFile, len(plain))
	}
	for _, k := range sortedKeys(plain[0]) {
		if k != "groups" {
			t.Errorf("%s: top-level field %q: a rules file holds only groups", rulesFile, k)
		}
	}
	groups := list(plain[0], "groups")
	used := checkRuleGroups(t, rulesFile, groups)

	var crs []map[string]any
	for _, d := range decodeAll(t, prometheusRuleFile) {
		if str(d, "kind") == "PrometheusRule" {
			crs = append(crs, d)
		}
	}
	if len(crs) != 1 {
		t.Fatalf("%s: %d PrometheusRules, want 1", prometheusRuleFile, len(crs))
	}
	if str(crs[0], "apiVersion") != "monitoring.coreos.com/v1" {
		t.Errorf("%s: apiVersion %q", prometheusRuleFile, str(crs[0], "apiVersion"))
	}
	if !reflect.DeepEqual(list(crs[0], "spec", "groups"), groups) {
		t.Errorf("%s and %s hold different rules: edit both alike", prometheusRuleFile, rulesFile)
	}

	for _, series := range sortedKeys(alertCoverage) {
		if !slices.Contains(used, series) {
			t.Errorf("%s: no alert uses %s (%s)", rulesFile, series, alertCoverage[series])
		}
	}
	// "Nothing is up" must fire when the series are gone, not when they
	// read zero: a dead worker exports nothing.
	for _, series := range []string{"trellis_worker_sessions", "trellis_edge_connections"} {
		var found bool
		for _, g := range groups {
			for _, r := range list(g, "rules") {
				if strings.Contains(strings.Join(strings.Fields(str(r, "expr")), ""), "absent("+series) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: no alert on absent(%s)", rulesFile, series)
		}
	}
}

// datasourceRef is a panel's or target's datasource, as a uid.
func datasourceRef(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return str(v, "uid")
}

// checkDashboardJSON checks a Grafana dashboard and returns the series its
// queries use.
func checkDashboardJSON(t *testing.T, where string, data []byte) []string {
	t.Helper()
	reg := registeredMetrics(t)
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	if str(d, "title") == "" || !regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`).MatchString(str(d, "uid")) {
		t.Errorf("%s: needs a title and a stable uid (at most 40 of [A-Za-z0-9_-]): %q %q", where, str(d, "title"), str(d, "uid"))
	}
	if v, ok := d["schemaVersion"].(float64); !ok || v < 30 {
		t.Errorf("%s: schemaVersion %v", where, d["schemaVersion"])
	}
	if d["id"] != nil {
		t.Errorf("%s: id %v: a provisioned dashboard has id null (Grafana assigns it)", where, d["id"])
	}

	var used []string
	vars := map[string]bool{}
	var dsVar string
	for _, v := range list(d, "templating", "list") {
		name := str(v, "name")
		vars[name] = true
		switch str(v, "type") {
		case "datasource":
			if str(v, "query") == "prometheus" {
				dsVar = name
			}
		case "query":
			q := str(v, "query")
			if q == "" {
				q = str(v, "query", "query")
			}
			problems, u := checkPromQL(q, reg)
			for _, p := range problems {
				t.Errorf("%s: variable %s: %s", where, name, p)
			}
			used = append(used, u...)
		}
	}
	if dsVar == "" {
		t.Errorf("%s: no Prometheus datasource variable: the dashboard would be tied to one Grafana's datasource uid", where)
	}
	wantDS := "${" + dsVar + "}"

	var panels []any
	for _, p := range list(d, "panels") {
		panels = append(panels, p)
		panels = append(panels, list(p, "panels")...) // a collapsed row's
	}
	if len(panels) == 0 {
		t.Errorf("%s: no panels", where)
	}
	ids := map[int]bool{}
	for _, p := range panels {
		id, _ := intOf(p, "id")
		title := str(p, "title")
		here := where + ": panel " + title
		if id == 0 || ids[id] {
			t.Errorf("%s: id %d is missing or repeated", here, id)
		}
		ids[id] = true
		w, _ := intOf(p, "gridPos", "w")
		h, _ := intOf(p, "gridPos", "h")
		x, _ := intOf(p, "gridPos", "x")
		if w <= 0 || h <= 0 || x < 0 || x+w > 24 {
			t.Errorf("%s: gridPos %v does not fit the 24-column grid", here, at(p, "gridPos"))
		}
		typ := str(p, "type")
		if typ == "row" || typ == "text" {
			continue
		}
		if title == "" {
			t.Errorf("%s: panel %d has no title", where, id)
		}
		if ds := datasourceRef(at(p, "datasource")); ds != wantDS {
			t.Errorf("%s: datasource %q, want %q", here, ds, wantDS)
		}
		targets := list(p, "targets")
		if len(targets) == 0 {
			t.Errorf("%s: no queries", here)
		}
		for _, tg := range targets {
			if ds := datasourceRef(at(tg, "datasource")); ds != "" && ds != wantDS {
				t.Errorf("%s: query %s: datasource %q, want %q", here, str(tg, "refId"), ds, wantDS)
			}
			expr := str(tg, "expr")
			if expr == "" {
				t.Errorf("%s: query %s has no expr", here, str(tg, "refId"))
			}
			problems, u := checkPromQL(expr, reg)
			for _, p := range problems {
				t.Errorf("%s: query %s: %s", here, str(tg, "refId"), p)
			}
			used = append(used, u...)
			for _, m := range regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(expr, -1) {
				if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
					t.Errorf("%s: query %s uses $%s, which is no variable of the dashboard", here, str(tg, "refId"), m[1])
				}
			}
		}
	}
	return used
}

// The dashboard is valid, queries only what the code exports, and shows
// what operators need; metrics it leaves out are listed in the log.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	used := checkDashboardJSON(t, dashboardFile, data)
	for _, series := range dashboardCoverage {
		if !slices.Contains(used, series) {
			t.Errorf("%s: no panel shows %s", dashboardFile, series)
		}
	}
	reg := registeredMetrics(t)
	for _, name := range sortedKeys(reg) {
		if !slices.ContainsFunc(used, func(s string) bool { m, _ := seriesOf(s, reg); return m.name == name }) {
			t.Logf("%s: not on the dashboard: %s (%s)", dashboardFile, name, reg[name].where)
		}
	}
}

// The monitoring component ships the ServiceMonitors, the dashboard (as a
// ConfigMap Grafana's dashboard sidecar loads: label grafana_dashboard) and
// the rules, and takes the scrape annotations off the workloads it
// monitors.
func TestMonitoringComponent(t *testing.T) {
	k := decodeAll(t, monitoringComponent+"/kustomization.yaml")[0]
	if str(k, "kind") != "Component" {
		t.Errorf("%s: kind %q, want Component", monitoringComponent, str(k, "kind"))
	}
	for _, want := range []string{"servicemonitor.yaml", "prometheusrule.yaml"} {
		if !slices.Contains(strs(k, "resources"), want) {
			t.Errorf("%s: does not list %s in resources", monitoringComponent, want)
		}
	}
	var dashboard bool
	for _, g := range list(k, "configMapGenerator") {
		for _, f := range strs(g, "files") {
			if _, src, ok := strings.Cut(f, "="); ok {
				f = src
			}
			if path.Join(monitoringComponent, f) == dashboardFile {
				dashboard = true
				if str(g, "options", "labels", "grafana_dashboard") == "" {
					t.Errorf("%s: the dashboard ConfigMap %s has no grafana_dashboard label: Grafana's sidecar would not load it", monitoringComponent, str(g, "name"))
				}
				// A hash suffix would leave the old ConfigMap behind on
				// every change, and Grafana with two dashboards of one uid.
				if disable, _ := at(g, "options", "disableNameSuffixHash").(bool); !disable {
					t.Errorf("%s: the dashboard ConfigMap needs options.disableNameSuffixHash: true", monitoringComponent)
				}
			}
		}
	}
	if !dashboard {
		t.Errorf("%s: no configMapGenerator for %s", monitoringComponent, dashboardFile)
	}
}

// With the monitoring profile, compose runs a Prometheus that scrapes every
// edge and worker with the same rules, and a Grafana with the same
// dashboard as Kubernetes.
func TestComposeMonitoring(t *testing.T) {
	vars := knownVars(t)
	services := loadCompose(t)
	mounts := func(s composeService) map[string]string { // destination -> source
		out := map[string]string{}
		for _, v := range strs(s.m, "volumes") {
			src, rest, _ := strings.Cut(v, ":")
			dst, _, _ := strings.Cut(rest, ":")
			out[dst] = filepath.Clean(src)
		}
		return out
	}
	prom, ok := services["prometheus"]
	if !ok {
		t.Fatal("compose: no prometheus service")
	}
	graf, ok := services["grafana"]
	if !ok {
		t.Fatal("compose: no grafana service")
	}
	for _, s := range []composeService{prom, graf} {
		if !slices.Contains(strs(s.m, "profiles"), "monitoring") {
			t.Errorf("compose %s: not in the monitoring profile: the default stack would grow by it", s.name)
		}
		for _, p := range strs(s.m, "ports") {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("compose %s: port %q is published on every interface", s.name, p)
			}
		}
	}

	pm := mounts(prom)
	var configDst string
	for dst, src := range pm {
		if src == filepath.Clean(composePrometheus) {
			configDst = dst
		}
	}
	if configDst == "" {
		t.Fatalf("compose prometheus: does not mount %s", composePrometheus)
	}
	cfg := decodeAll(t, composePrometheus)[0]
	var rulesLoaded bool
	for _, pattern := range strs(cfg, "rule_files") {
		if !path.IsAbs(pattern) {
			pattern = path.Join(path.Dir(configDst), pattern)
		}
		for dst, src := range pm {
			if ok, _ := path.Match(pattern, dst); ok && src == filepath.Clean(rulesFile) {
				rulesLoaded = true
			}
		}
	}
	if !rulesLoaded {
		t.Errorf("%s: rule_files %v load no mount of %s", composePrometheus, strs(cfg, "rule_files"), rulesFile)
	}
	targets := map[string]bool{}
	for _, sc := range list(cfg, "scrape_configs") {
		if p := str(sc, "metrics_path"); p != "" && p != "/metrics" {
			t.Errorf("%s: job %s scrapes %s", composePrometheus, str(sc, "job_name"), p)
		}
		for _, st := range list(sc, "static_configs") {
			for _, tg := range strs(st, "targets") {
				targets[tg] = true
				host, _, err := net.SplitHostPort(tg)
				if _, ok := services[host]; err != nil || !ok {
					t.Errorf("%s: target %q is no compose service", composePrometheus, tg)
				}
			}
		}
	}
	for _, name := range sortedKeys(services) {
		s := services[name]
		argv := s.command()
		if !s.isTrellis() || len(argv) == 0 {
			continue
		}
		variable := map[string]string{"edge": "TRELLIS_EDGE_ADMIN_LISTEN", "worker": "TRELLIS_WORKER_ADMIN_LISTEN"}[argv[0]]
		if variable == "" {
			continue
		}
		listen := s.env()[variable]
		if listen == "" {
			listen = vars[variable].Default
		}
		port, loopback := listenPort(t, "compose "+name+" "+variable, listen)
		if loopback {
			t.Errorf("compose %s: %s=%s: Prometheus cannot reach a loopback listener", name, variable, listen)
		}
		if want := net.JoinHostPort(name, strconv.Itoa(port)); !targets[want] {
			t.Errorf("%s: does not scrape %s", composePrometheus, want)
		}
	}

	gm := mounts(graf)
	var dashDst string
	for dst, src := range gm {
		if src == filepath.Clean(dashboardFile) {
			dashDst = dst
		}
	}
	if dashDst == "" {
		t.Fatalf("compose grafana: does not mount %s", dashboardFile)
	}
	var provisioned, datasource bool
	for dst, src := range gm {
		if !strings.HasPrefix(dst, "/etc/grafana/provisioning") {
			continue
		}
		files := []string{src}
		if fi, err := os.Stat(src); err == nil && fi.IsDir() {
			files, _ = filepath.Glob(filepath.Join(src, "*", "*.yaml"))
		}
		for _, f := range files {
			for _, doc := range decodeAll(t, f) {
				for _, p := range list(doc, "providers") {
					if dir := str(p, "options", "path"); dir != "" && strings.HasPrefix(dashDst, strings.TrimSuffix(dir, "/")+"/") {
						provisioned = true
					}
				}
				for _, ds := range list(doc, "datasources") {
					if str(ds, "type") == "prometheus" {
						host := strings.TrimPrefix(str(ds, "url"), "http://")
						host, _, _ = strings.Cut(host, ":")
						if host != prom.name {
							t.Errorf("%s: datasource %s points at %q, not the prometheus service", f, str(ds, "name"), str(ds, "url"))
						}
						datasource = true
					}
				}
			}
		}
	}
	if !provisioned {
		t.Errorf("compose grafana: no dashboard provider reads %s", dashDst)
	}
	if !datasource {
		t.Error("compose grafana: no Prometheus datasource provisioned")
	}
}
