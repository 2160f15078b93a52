package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/store"
)

// Redis Cluster in deploy/: components/redis-cluster (and overlays/cluster,
// which uses it) and compose's cluster profile. The tests below check what
// kustomize renders and what compose would run: the nodes, their passwords,
// the bootstrap, the network policy, and that every Trellis process points
// at nodes that exist. bootstrap_test.go runs the bootstrap script itself
// against real redis-servers.

const (
	clusterComponent = "kubernetes/components/redis-cluster"
	bootstrapScript  = clusterComponent + "/bootstrap.sh"
	clusterProfile   = "cluster"
)

var (
	clusterEnabled = regexp.MustCompile(`(?m)(^|\s|--)cluster-enabled\s+yes\b`)
	// A heredoc line "KEY VALUE" of the password or the announced name.
	heredocSetting = func(key string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s+"?([^"\s]+)"?\s*$`)
	}
)

// redisConfOf is a Redis container's settings: its command line and every
// ConfigMap mounted into its pod.
func redisConfOf(objs []object, o object) string {
	var conf []string
	for _, c := range containers(o) {
		conf = append(conf, strings.Join(c.argv0(), " "))
	}
	for _, v := range list(podSpec(o), "volumes") {
		if cm := str(v, "configMap", "name"); cm != "" {
			for _, other := range objs {
				if other.kind() == "ConfigMap" && other.name() == cm {
					for _, k := range sortedKeys(dict(other.m, "data")) {
						conf = append(conf, str(other.m, "data", k))
					}
				}
			}
		}
	}
	return strings.Join(conf, "\n")
}

func isRedisImage(c container) bool {
	repo, _ := imageRef(str(c.m, "image"))
	return filepath.Base(repo) == "redis"
}

// checkRedisPassword: the container gets the Redis password from the Secret
// as REDISCLI_AUTH, and nothing of it reaches a command line (its own, or
// that of the script it runs).
func checkRedisPassword(t *testing.T, where string, c container, script string) {
	t.Helper()
	e := c.env()["REDISCLI_AUTH"]
	if str(e, "valueFrom", "secretKeyRef", "name") != "trellis-secrets" || str(e, "valueFrom", "secretKeyRef", "key") != "TRELLIS_REDIS_PASSWORD" {
		t.Errorf("%s: %s: REDISCLI_AUTH does not come from Secret trellis-secrets, key TRELLIS_REDIS_PASSWORD: %v", where, c, e)
	}
	for _, p := range secretArgvProblems(c.argv0(), secretEnvNames(c)) {
		t.Errorf("%s: %s: %s", where, c, p)
	}
	if script != "" {
		for _, p := range secretArgvProblems([]string{"sh", "-c", script}, secretEnvNames(c)) {
			t.Errorf("%s: %s: its script: %s", where, c, p)
		}
	}
}

// netPolicyAllows evaluates the rendered NetworkPolicies the way Kubernetes
// does, for pods of one namespace: traffic from src to dst on port is let
// out when no policy limits src's egress or one of those that do has a
// rule for it, and let in likewise for dst's ingress. Named ports resolve
// against dst's containers.
func netPolicyAllows(objs []object, src, dst object, port int) bool {
	named := map[string]int{}
	for _, c := range containers(dst) {
		for _, p := range list(c.m, "ports") {
			if n, ok := intOf(p, "containerPort"); ok {
				named[str(p, "name")] = n
			}
		}
	}
	portMatches := func(rule any) bool {
		ports := list(rule, "ports")
		if len(ports) == 0 {
			return true
		}
		for _, p := range ports {
			if n, ok := intOf(p, "port"); ok && n == port {
				return true
			}
			if n, ok := named[str(p, "port")]; ok && n == port {
				return true
			}
		}
		return false
	}
	peerMatches := func(rule any, key string, labels map[string]any) bool {
		peers, present := at(rule, key).([]any)
		if !present || len(peers) == 0 {
			return at(rule, key) == nil // absent: every peer
		}
		for _, peer := range peers {
			if ps, ok := at(peer, "podSelector").(map[string]any); ok && at(peer, "namespaceSelector") == nil && selects(ps, labels) {
				return true
			}
		}
		return false
	}
	side := func(pod object, policyType, rulesKey, peerKey string, peer object) bool {
		limited := false
		for _, p := range objs {
			if p.kind() != "NetworkPolicy" || !selects(dict(p.m, "spec", "podSelector"), podLabels(pod)) ||
				!slices.Contains(strs(p.m, "spec", "policyTypes"), policyType) {
				continue
			}
			limited = true
			for _, rule := range list(p.m, "spec", rulesKey) {
				if peerMatches(rule, peerKey, podLabels(peer)) && portMatches(rule) {
					return true
				}
			}
		}
		return !limited
	}
	return side(src, "Egress", "egress", "to", dst) && side(dst, "Ingress", "ingress", "from", src)
}

// clusterOverlays are the rendered overlays whose Redis is a cluster.
func clusterOverlays(t *testing.T) []rendered {
	var out []rendered
	for _, r := range realOverlays(renderOverlays(t)) {
		for _, o := range r.objs {
			if o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis" &&
				clusterEnabled.MatchString(redisConfOf(r.objs, o)) {
				out = append(out, r)
				break
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no overlay renders a Redis Cluster (overlays/cluster uses components/redis-cluster)")
	}
	return out
}

// An overlay with components/redis-cluster renders one Redis, a cluster:
// the base's single node is gone, the nodes are a StatefulSet behind a
// headless Service, each node announces its stable DNS name, keeps its
// nodes.conf on its volume and gets both its password and its replicas'
// primary login (masterauth) off the command line; the bootstrap Job lists
// exactly the StatefulSet's pods, and runs the committed bootstrap.sh.
func TestRenderedRedisCluster(t *testing.T) {
	for _, r := range clusterOverlays(t) {
		where := "overlay " + r.name
		var sts []object
		for _, o := range r.objs {
			switch {
			case o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis":
				sts = append(sts, o)
			case (o.kind() == "Service" || o.kind() == "ConfigMap") && o.name() == "trellis-redis":
				t.Errorf("%s: the base's single Redis %s %s is still there", where, o.kind(), o.name())
			}
		}
		if len(sts) != 1 {
			t.Fatalf("%s: %d Redis StatefulSets, want the cluster's alone", where, len(sts))
		}
		o := sts[0]
		conf := redisConfOf(r.objs, o)
		checkRedisConf(t, where+" "+o.String(), conf)
		for _, want := range []string{"cluster-preferred-endpoint-type hostname", "cluster-config-file /data/"} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s: %s: Redis without %q", where, o, want)
			}
		}
		n, _ := intOf(o.m, "spec", "replicas")
		if n < 6 {
			t.Errorf("%s: %s has %d pods, want 6 or more (3 primaries, 3 replicas)", where, o, n)
		}
		if p := str(o.m, "spec", "podManagementPolicy"); p != "Parallel" {
			t.Errorf("%s: %s: podManagementPolicy %q: ordered start waits for pod 0 to be ready, which it is not before the cluster exists", where, o, p)
		}
		svc := str(o.m, "spec", "serviceName")
		var headless bool
		for _, s := range r.objs {
			if s.kind() == "Service" && s.name() == svc {
				headless = str(s.m, "spec", "clusterIP") == "None" && str(s.m, "spec", "publishNotReadyAddresses") == "true"
			}
		}
		if !headless {
			t.Errorf("%s: %s: Service %q is not headless with publishNotReadyAddresses (the pods' names must resolve before they are ready)", where, o, svc)
		}
		pods := map[string]bool{}
		for i := range n {
			pods[fmt.Sprintf("%s-%d.%s:6379", o.name(), i, svc)] = true
		}

		for _, c := range containers(o) {
			if !isRedisImage(c) {
				continue
			}
			checkRedisPassword(t, where, c, "")
			if !c.hasContainerPort(6379) || !c.hasContainerPort(16379) {
				t.Errorf("%s: %s: container ports must include 6379 and the cluster bus 16379", where, c)
			}
			argv := c.argv0()
			if len(argv) < 3 || argv[1] != "-c" {
				t.Errorf("%s: %s: not a shell script feeding redis-server on stdin: %q", where, c, argv)
				continue
			}
			script := argv[2]
			outside := shellOutsideStdin(script)
			for _, key := range []string{"requirepass", "masterauth", "cluster-announce-hostname"} {
				m := heredocSetting(key).FindStringSubmatch(script)
				if m == nil || strings.Contains(outside, key) {
					t.Errorf("%s: %s: %s is not set in the here-document redis-server reads", where, c, key)
					continue
				}
				switch key {
				case "requirepass", "masterauth":
					if m[1] != "$REDISCLI_AUTH" {
						t.Errorf("%s: %s: %s %s, want the Secret's password ($REDISCLI_AUTH)", where, c, key, m[1])
					}
				case "cluster-announce-hostname":
					want := "$POD_NAME." + svc + ".$POD_NAMESPACE.svc.cluster.local"
					if m[1] != want {
						t.Errorf("%s: %s: announces %q, want %q (resolvable from KEDA's namespace too)", where, c, m[1], want)
					}
				}
			}
			for name, field := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"} {
				if got := str(c.env()[name], "valueFrom", "fieldRef", "fieldPath"); got != field {
					t.Errorf("%s: %s: %s from %q, want the downward API's %s", where, c, name, got, field)
				}
			}
		}

		// The bootstrap Job.
		var jobs int
		want, err := os.ReadFile(bootstrapScript)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range r.objs {
			if j.kind() != "Job" {
				continue
			}
			for _, c := range containers(j) {
				if _, ok := c.envValue("REDIS_CLUSTER_NODES"); !ok {
					continue
				}
				jobs++
				// The script, from the ConfigMap mounted where the command
				// runs it.
				var script string
				argv := c.argv0()
				for _, vm := range list(c.m, "volumeMounts") {
					for _, v := range list(podSpec(j), "volumes") {
						if str(v, "name") != str(vm, "name") || str(v, "configMap", "name") == "" {
							continue
						}
						for _, cm := range r.objs {
							if cm.kind() != "ConfigMap" || cm.name() != str(v, "configMap", "name") {
								continue
							}
							for _, key := range sortedKeys(dict(cm.m, "data")) {
								if slices.Contains(argv, filepath.Join(str(vm, "mountPath"), key)) {
									script = str(cm.m, "data", key)
								}
							}
						}
					}
				}
				if script != string(want) {
					t.Errorf("%s: %s: does not run %s from a mounted ConfigMap (command %q)", where, c, bootstrapScript, argv)
				}
				checkRedisPassword(t, where, c, script)
				nodes, _ := c.envValue("REDIS_CLUSTER_NODES")
				got := map[string]bool{}
				for _, f := range strings.FieldsFunc(nodes, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
					got[f] = true
				}
				if !maps(got, pods) {
					t.Errorf("%s: %s: REDIS_CLUSTER_NODES %v, want every pod of %s: %v", where, c, sortedKeys(got), o, sortedKeys(pods))
				}
				rs, _ := c.envValue("REDIS_CLUSTER_REPLICAS")
				if k, err := strconv.Atoi(rs); err != nil || k < 1 || n%(k+1) != 0 || n/(k+1) < 3 {
					t.Errorf("%s: %s: REDIS_CLUSTER_REPLICAS %q does not split %d pods into 3 or more primaries with replicas", where, c, rs, n)
				}
				if str(podLabels(j), "app.kubernetes.io/component") != "tools" {
					t.Errorf("%s: %s: pods not labelled as tools", where, j)
				}
				if !netPolicyAllows(r.objs, j, o, 6379) {
					t.Errorf("%s: the NetworkPolicies keep %s from Redis on 6379", where, j)
				}
			}
		}
		if jobs != 1 {
			t.Errorf("%s: %d bootstrap Jobs (a container with REDIS_CLUSTER_NODES), want 1", where, jobs)
		}
	}
}

// maps says whether two sets are equal.
func maps(a, b map[string]bool) bool {
	return slices.Equal(sortedKeys(a), sortedKeys(b))
}

// The NetworkPolicies of a cluster overlay let the nodes reach each other on
// the client port (replication) and the cluster bus (16379), both ways, and
// still let edges and workers reach them on 6379 only.
func TestRenderedRedisClusterNetworkPolicy(t *testing.T) {
	for _, r := range clusterOverlays(t) {
		var redis object
		clients := map[string]object{}
		for _, o := range r.objs {
			if o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis" {
				redis = o
			}
			for _, c := range containers(o) {
				if argv := c.argv(); c.isTrellis() && len(argv) > 0 && (argv[0] == "edge" || argv[0] == "worker") {
					clients[argv[0]] = o
				}
			}
		}
		for _, port := range []int{6379, 16379} {
			if !netPolicyAllows(r.objs, redis, redis, port) {
				t.Errorf("overlay %s: Redis pods cannot reach each other on %d", r.name, port)
			}
		}
		for _, role := range []string{"edge", "worker"} {
			c, ok := clients[role]
			if !ok {
				t.Errorf("overlay %s: no %s", r.name, role)
				continue
			}
			if !netPolicyAllows(r.objs, c, redis, 6379) {
				t.Errorf("overlay %s: %ss cannot reach Redis on 6379", r.name, role)
			}
			if netPolicyAllows(r.objs, c, redis, 16379) {
				t.Errorf("overlay %s: %ss reach the cluster bus (16379): only the nodes talk there", r.name, role)
			}
		}
	}
}

// The evaluator above must see a missing rule: the base's policy, where
// Redis pods send nothing, keeps node from node.
func TestNetPolicyAllowsCheck(t *testing.T) {
	objs := loadKubernetes(t)
	var base []object
	var redis object
	for _, o := range objs {
		if o.patch || !strings.HasPrefix(o.file, filepath.Join("kubernetes", "base")) {
			continue
		}
		base = append(base, o)
		if o.kind() == "StatefulSet" && str(podLabels(o), "app.kubernetes.io/component") == "redis" {
			redis = o
		}
	}
	edge, _ := workload(t, objs, "edge")
	if netPolicyAllows(base, redis, redis, 16379) {
		t.Error("the base's policies let Redis pods reach each other on 16379; the check cannot fail")
	}
	if !netPolicyAllows(base, edge, redis, 6379) {
		t.Error("the base's policies keep edges from Redis; the check is wrong")
	}
}

// Edges and workers of a cluster overlay list the cluster's pods (a list:
// store.Connect opens a cluster client for a comma-separated URL), and KEDA
// watches the control stream with its cluster-aware scaler, seeded with
// the headless Service in the overlay's namespace.
func TestRenderedRedisClusterClients(t *testing.T) {
	for _, r := range clusterOverlays(t) {
		roles := map[string]bool{}
		for _, o := range r.objs {
			for _, c := range containers(o) {
				u, ok := c.envValue("TRELLIS_REDIS_URL")
				if !ok {
					continue
				}
				nodes := redisURLNodes(t, c.String(), u)
				if argv := c.argv(); c.isTrellis() && len(argv) > 0 {
					roles[argv[0]] = true
				}
				if len(nodes) < 2 {
					t.Errorf("overlay %s: %s: TRELLIS_REDIS_URL %q is one node: store.Connect would open a single-node client on a cluster", r.name, c, u)
				}
				for _, n := range nodes {
					if !kubeAddrResolves(r.objs, n.host, n.port) {
						t.Errorf("overlay %s: %s: TRELLIS_REDIS_URL node %s:%d is no pod of the cluster", r.name, c, n.host, n.port)
					}
				}
			}
		}
		for _, role := range []string{"edge", "worker"} {
			if !roles[role] {
				t.Errorf("overlay %s: no %s with TRELLIS_REDIS_URL", r.name, role)
			}
		}

		var scalers int
		streams := map[string]bool{}
		for _, o := range r.objs {
			if o.kind() != "ScaledObject" {
				continue
			}
			for _, tr := range list(o.m, "spec", "triggers") {
				switch str(tr, "type") {
				case "redis-streams":
					t.Errorf("overlay %s: %s: a single-node redis-streams trigger on a cluster", r.name, o)
				case "redis-cluster-streams":
					scalers++
					got := str(tr, "metadata", "stream")
					if streams[got] {
						t.Errorf("overlay %s: %s: stream %q watched twice", r.name, o, got)
					}
					streams[got] = true
					if got := str(tr, "metadata", "consumerGroup"); got != store.GroupWorkers {
						t.Errorf("overlay %s: %s: consumerGroup %q, want %q", r.name, o, got, store.GroupWorkers)
					}
					addrs := str(tr, "metadata", "addresses")
					if addrs == "" {
						t.Errorf("overlay %s: %s: no addresses", r.name, o)
					}
					for _, a := range strings.Split(addrs, ",") {
						host, port, _ := strings.Cut(strings.TrimSpace(a), ":")
						svc, rest, _ := strings.Cut(host, ".")
						p, _ := strconv.Atoi(port)
						if rest != r.namespace+".svc.cluster.local" || !kubeAddrResolves(r.objs, svc, p) {
							t.Errorf("overlay %s: %s: KEDA address %q is not a Service of the overlay's namespace %s with port %d", r.name, o, a, r.namespace, p)
						}
					}
				}
			}
		}
		if scalers == 0 {
			t.Errorf("overlay %s: no redis-cluster-streams trigger scales the workers", r.name)
		}
		// One trigger per control stream a namespace gets on a cluster.
		for shard := range store.DefaultClusterControlShards {
			if name := store.ControlStreamName(store.DefaultNamespace, shard); !streams[name] {
				t.Errorf("overlay %s: no trigger watches control stream %s", r.name, name)
			}
		}
		if len(streams) != store.DefaultClusterControlShards {
			t.Errorf("overlay %s: triggers watch %d streams, want %d", r.name, len(streams), store.DefaultClusterControlShards)
		}
	}
}

// The bootstrap script keeps the password off every command line (redis-cli
// reads REDISCLI_AUTH), and the check would see it if it did not.
func TestBootstrapScriptPasswordOffArgv(t *testing.T) {
	data, err := os.ReadFile(bootstrapScript)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"REDISCLI_AUTH"}
	if p := secretArgvProblems([]string{"sh", "-c", string(data)}, secrets); len(p) > 0 {
		t.Errorf("%s: %v", bootstrapScript, p)
	}
	if passwordFlag.Match(data) {
		t.Errorf("%s: passes a password flag to redis-cli", bootstrapScript)
	}
	bad := string(data) + "\nredis-cli -h x -a \"$REDISCLI_AUTH\" ping\n"
	if len(secretArgvProblems([]string{"sh", "-c", bad}, secrets)) == 0 {
		t.Error("the argv check passes the script with redis-cli -a \"$REDISCLI_AUTH\" added")
	}
}

// Compose's cluster profile: six cluster nodes, each announcing its service
// name and keeping nodes.conf on its own volume, passwords on stdin; the
// one-shot runs the Kubernetes component's bootstrap script over exactly
// those nodes once they are healthy; every Trellis service of the profile
// lists only those nodes and waits for the one-shot. The default stack
// neither names nor waits for anything of the profile, so it runs as before.
func TestComposeClusterProfile(t *testing.T) {
	services := loadCompose(t)
	inProfile := func(s composeService) bool { return slices.Contains(strs(s.m, "profiles"), clusterProfile) }
	nodes := map[string]composeService{}
	for _, name := range sortedKeys(services) {
		s := services[name]
		if clusterEnabled.MatchString(strings.Join(s.command(), " ")) {
			if !inProfile(s) {
				t.Errorf("compose %s: a cluster node outside the %s profile", name, clusterProfile)
			}
			nodes[name] = s
		}
	}
	if len(nodes) < 6 {
		t.Fatalf("compose: %d cluster nodes, want 6 (3 primaries, 3 replicas)", len(nodes))
	}
	nodeAddrs := map[string]bool{}
	for name, s := range nodes {
		nodeAddrs[name+":6379"] = true
		argv := s.command()
		cmd := strings.Join(argv, " ")
		checkRedisConf(t, "compose "+name, cmd)
		if !strings.Contains(cmd, "--cluster-config-file /data/") || !strings.Contains(cmd, "--cluster-preferred-endpoint-type hostname") {
			t.Errorf("compose %s: wants --cluster-config-file on /data and --cluster-preferred-endpoint-type hostname", name)
		}
		var data bool
		for _, v := range strs(s.m, "volumes") {
			if _, dst, _ := strings.Cut(v, ":"); dst == "/data" {
				data = true
			}
		}
		if !data {
			t.Errorf("compose %s: no volume on /data: the node would forget its cluster with its container", name)
		}
		if !strings.HasPrefix(s.env()["REDISCLI_AUTH"], "${TRELLIS_REDIS_PASSWORD") {
			t.Errorf("compose %s: REDISCLI_AUTH is not ${TRELLIS_REDIS_PASSWORD...}", name)
		}
		if len(argv) < 3 || argv[1] != "-c" {
			t.Errorf("compose %s: not a shell script feeding redis-server on stdin", name)
			continue
		}
		script := strings.ReplaceAll(argv[2], "$$", "$")
		outside := shellOutsideStdin(script)
		for _, key := range []string{"requirepass", "masterauth", "cluster-announce-hostname"} {
			m := heredocSetting(key).FindStringSubmatch(script)
			if m == nil || strings.Contains(outside, key) {
				t.Errorf("compose %s: %s is not in the here-document redis-server reads", name, key)
				continue
			}
			value := m[1]
			if v, ok := strings.CutPrefix(value, "$"); ok && key == "cluster-announce-hostname" {
				value = s.env()[v]
			}
			switch {
			case key == "cluster-announce-hostname" && value != name:
				t.Errorf("compose %s: announces %q, not its service name", name, value)
			case key != "cluster-announce-hostname" && value != "$REDISCLI_AUTH":
				t.Errorf("compose %s: %s %s, want $REDISCLI_AUTH", name, key, value)
			}
		}
		if at(s.m, "healthcheck") == nil {
			t.Errorf("compose %s: no healthcheck: the one-shot cannot wait for it", name)
		}
	}

	// The one-shot.
	var inits []string
	for _, name := range sortedKeys(services) {
		s := services[name]
		list, ok := s.env()["REDIS_CLUSTER_NODES"]
		if !ok {
			continue
		}
		inits = append(inits, name)
		if !inProfile(s) || str(s.m, "restart") != "no" {
			t.Errorf("compose %s: a one-shot of the %s profile wants profiles [%s] and restart: \"no\"", name, clusterProfile, clusterProfile)
		}
		got := map[string]bool{}
		for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
			got[f] = true
		}
		if !maps(got, nodeAddrs) {
			t.Errorf("compose %s: REDIS_CLUSTER_NODES %v, want the profile's nodes %v", name, sortedKeys(got), sortedKeys(nodeAddrs))
		}
		var runs bool
		for _, v := range strs(s.m, "volumes") {
			src, rest, _ := strings.Cut(v, ":")
			dst, _, _ := strings.Cut(rest, ":")
			if filepath.Clean(src) == filepath.Clean(bootstrapScript) && slices.Contains(s.command(), dst) {
				runs = true
			}
		}
		if !runs {
			t.Errorf("compose %s: does not run %s (mounted) as its command", name, bootstrapScript)
		}
		if !strings.HasPrefix(s.env()["REDISCLI_AUTH"], "${TRELLIS_REDIS_PASSWORD") {
			t.Errorf("compose %s: REDISCLI_AUTH is not ${TRELLIS_REDIS_PASSWORD...}", name)
		}
		for node := range nodes {
			if str(s.m, "depends_on", node, "condition") != "service_healthy" {
				t.Errorf("compose %s: does not wait for %s to be healthy", name, node)
			}
		}
	}
	if len(inits) != 1 {
		t.Fatalf("compose: %d one-shots with REDIS_CLUSTER_NODES, want 1", len(inits))
	}
	init := inits[0]

	// Every Trellis service: the cluster profile's on the nodes, after the
	// one-shot; the rest never on or after anything of the profile.
	var clusterTrellis []string
	for _, name := range sortedKeys(services) {
		s := services[name]
		u, hasURL := s.env()["TRELLIS_REDIS_URL"]
		if inProfile(s) && s.isTrellis() {
			clusterTrellis = append(clusterTrellis, name)
			if !hasURL {
				t.Errorf("compose %s: no TRELLIS_REDIS_URL", name)
				continue
			}
			ns := redisURLNodes(t, "compose "+name, u)
			if len(ns) < 2 {
				t.Errorf("compose %s: TRELLIS_REDIS_URL %q is one node: store.Connect would open a single-node client", name, u)
			}
			for _, n := range ns {
				if !nodeAddrs[fmt.Sprintf("%s:%d", n.host, n.port)] {
					t.Errorf("compose %s: TRELLIS_REDIS_URL names %s:%d, which is no node of the %s profile", name, n.host, n.port, clusterProfile)
				}
			}
			if str(s.m, "depends_on", init, "condition") != "service_completed_successfully" {
				t.Errorf("compose %s: does not wait for %s to complete", name, init)
			}
			continue
		}
		if len(strs(s.m, "profiles")) > 0 {
			continue
		}
		if hasURL {
			for _, n := range redisURLNodes(t, "compose "+name, u) {
				if inProfile(services[n.host]) {
					t.Errorf("compose %s (default stack): TRELLIS_REDIS_URL names %s of the %s profile", name, n.host, clusterProfile)
				}
			}
		}
		deps := sortedKeys(dict(s.m, "depends_on"))
		deps = append(deps, strs(s.m, "depends_on")...)
		for _, d := range deps {
			if inProfile(services[d]) {
				t.Errorf("compose %s (default stack): depends on %s of the %s profile: `docker compose up` would refuse to start", name, d, clusterProfile)
			}
		}
	}
	roles := map[string]int{}
	for _, name := range clusterTrellis {
		if argv := services[name].command(); len(argv) > 0 {
			roles[argv[0]]++
		}
	}
	if roles["edge"] < 2 || roles["worker"] < 2 || roles["games"] < 1 {
		t.Errorf("compose %s profile: %v Trellis services by subcommand, want 2 edges, 2 workers and a games import", clusterProfile, roles)
	}
}
