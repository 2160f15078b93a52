// Package deploy holds what operators run, and a test that keeps it honest.
//
// The directory has no Go API. It contains:
//
//   - Dockerfile: one static, non-root image for every subcommand of the
//     trellis binary (the subcommand is the container's argument);
//   - compose.yaml with lb/nginx.conf: Redis, two edges behind nginx, two
//     workers, the demo game and a job registering it, on one machine; its
//     cluster profile adds a six-node Redis Cluster and a second Trellis on
//     it (lb/nginx-cluster.conf);
//   - kubernetes/: a kustomize base (edges, workers, Redis, autoscalers,
//     disruption budgets, network policies), a monitoring component
//     (ServiceMonitors, alert rules, the Grafana dashboard), a redis-cluster
//     component (a 6-pod Redis Cluster and its bootstrap script in place of
//     the single Redis) and three overlays (example: production shape;
//     cluster: the same on Redis Cluster; dev: with the demo game);
//   - monitoring/: the alert rules as a plain Prometheus rules file, and
//     the Prometheus and Grafana of compose's monitoring profile;
//   - check.sh: renders every overlay with kustomize.
//
// README.md says how to use each; ../docs/OPERATIONS.md says how to run
// Trellis in production.
//
// # Why a Go test for YAML
//
// Manifests drift from code silently: a renamed variable is ignored by
// envconfig, a moved probe path makes pods never ready, a renamed
// subcommand makes a container exit at start. deploy_test.go reads every
// manifest, the compose file and the Dockerfile, and checks them against the
// code itself:
//
//   - every TRELLIS_* variable they set (or the docs mention) is one that
//     some configuration struct reads. The valid names are computed by
//     reflection over store.Config, worker.Config, edge.Config and
//     auth.Config with envconfig's own naming rules (envconfig tags,
//     split_words, nested structs), and the walker is cross-checked against
//     envconfig.Usagef so the two cannot disagree;
//   - each container sets only variables its subcommand reads;
//   - container ports come from the configs' default listen addresses, and
//     probes use paths the edge and worker handlers really serve (asked
//     over HTTP with httptest, on a real Redis);
//   - subcommands named by the Dockerfile, manifests and compose file exist
//     in cmd/trellis's command table (parsed from source with go/parser);
//   - the worker's termination grace period covers its drain timeout;
//   - the KEDA trigger names the real control stream and consumer group;
//   - secrets are only ever referenced, never written in a manifest, and
//     never reach a command line (argv_test.go);
//   - every metric name and label the dashboard and the alert rules use is
//     one the code registers, counters are read through rate() or
//     increase(), and the plain rules file and the PrometheusRule agree
//     (promql_test.go, monitoring_test.go).
//
// cluster_test.go checks the Redis Cluster parts: what the cluster overlay
// renders (one Redis, a cluster; passwords and masterauth on stdin; the
// bootstrap Job over exactly the StatefulSet's pods; the cluster bus open
// between nodes only; edges, workers and KEDA on the nodes) and compose's
// cluster profile (nodes, one-shot, every TRELLIS_REDIS_URL naming nodes of
// the profile, the default stack untouched). bootstrap_test.go runs the
// bootstrap script against six real redis-servers: create, rerun, repair,
// wrong password, a node that never answers.
//
// render_test.go renders every overlay through check.sh and checks what
// kustomize made of it: the overlay's image tag reaches every Trellis
// container, an overlay moved to another namespace keeps no trace of the
// old one (the KEDA address included), each workload is scraped exactly
// once, and the monitoring component is wired in.
package deploy
