package deploy

import (
	"strconv"
	"testing"
)

// metricsVar is the variable holding each role's /metrics address: the
// edge's players' port does not serve /metrics.
var metricsVar = map[string]string{"edge": "TRELLIS_EDGE_ADMIN_LISTEN", "worker": "TRELLIS_WORKER_ADMIN_LISTEN"}

// In every rendered overlay, whatever scrapes an edge or a worker (its
// prometheus.io/port annotation, or a ServiceMonitor through a Service)
// reaches the port its admin listener is on, not the players' port.
func TestRenderedScrapeReachesTheAdminPort(t *testing.T) {
	vars := knownVars(t)
	for _, r := range realOverlays(renderOverlays(t)) {
		for _, o := range r.objs {
			for _, c := range containers(o) {
				argv := c.argv()
				if !c.isTrellis() || len(argv) == 0 || metricsVar[argv[0]] == "" {
					continue
				}
				port, _ := listenPort(t, metricsVar[argv[0]], effective(t, vars, c, metricsVar[argv[0]]))
				if ann := str(o.m, "spec", "template", "metadata", "annotations", "prometheus.io/scrape"); ann == "true" {
					if p := str(o.m, "spec", "template", "metadata", "annotations", "prometheus.io/port"); p != strconv.Itoa(port) {
						t.Errorf("overlay %s: %s: prometheus.io/port %q, but /metrics is on %d (%s)", r.name, o, p, port, metricsVar[argv[0]])
					}
				}
				for _, sm := range r.objs {
					if sm.kind() != "ServiceMonitor" {
						continue
					}
					for _, svc := range r.objs {
						if svc.kind() != "Service" || len(dict(svc.m, "spec", "selector")) == 0 ||
							!selects(dict(sm.m, "spec", "selector"), dict(svc.m, "metadata", "labels")) ||
							!selects(dict(svc.m, "spec", "selector"), podLabels(o)) {
							continue
						}
						for _, ep := range list(sm.m, "spec", "endpoints") {
							for _, sp := range list(svc.m, "spec", "ports") {
								if str(sp, "name") != str(ep, "port") {
									continue
								}
								if tp, ok := c.port(at(sp, "targetPort")); !ok || tp != port {
									t.Errorf("overlay %s: ServiceMonitor %s scrapes %s through Service %s port %s (target %v), but /metrics is on %d",
										r.name, sm.name(), o, svc.name(), str(sp, "name"), at(sp, "targetPort"), port)
								}
							}
						}
					}
				}
			}
		}
	}
}
