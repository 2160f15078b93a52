package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// The bootstrap script (components/redis-cluster/bootstrap.sh, also compose's
// redis-cluster-init) run against six real redis-servers on loopback, each
// started with the component's redis.conf and its password, masterauth and
// announced hostname fed on stdin as in the StatefulSet: it creates the
// cluster once, does nothing the second time, re-joins a node that lost its
// cluster (and makes it a replica again), and fails at once, with a
// message, on a wrong password or a node that never answers.

const bootstrapPassword = "bootstrap-test-password"

// bootstrapNode is one redis-server started for the test.
type bootstrapNode struct {
	addr string
	cmd  *exec.Cmd
	done chan error
}

// componentRedisConf is the cluster component's redis.conf without the
// lines that only make sense in the pod (its /data paths).
func componentRedisConf(t *testing.T) string {
	t.Helper()
	for _, d := range decodeAll(t, filepath.Join(clusterComponent, "redis-cluster.yaml")) {
		if str(d, "kind") != "ConfigMap" {
			continue
		}
		var keep []string
		sc := bufio.NewScanner(strings.NewReader(str(d, "data", "redis.conf")))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 0 && (f[0] == "dir" || f[0] == "cluster-config-file") {
				continue
			}
			keep = append(keep, sc.Text())
		}
		return strings.Join(keep, "\n")
	}
	t.Fatalf("%s: no ConfigMap with redis.conf", clusterComponent)
	return ""
}

// freeLoopbackPorts returns n ports free on 127.0.0.1 at the time of asking.
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := redistest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// startBootstrapNodes starts n cluster-enabled redis-servers that are not
// yet a cluster, and stops them when the test ends.
func startBootstrapNodes(t *testing.T, n int) []*bootstrapNode {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found and CI is set", bin)
			}
			t.Skipf("%s not found: run `make deps`", bin)
		}
	}
	base := componentRedisConf(t)
	ports := freeLoopbackPorts(t, 2*n)
	var nodes []*bootstrapNode
	for i := range n {
		dir := t.TempDir()
		port, bus := ports[2*i], ports[2*i+1]
		// The component's settings, then the test's (a later line wins):
		// loopback, its own ports and directory, a short node timeout, no
		// AOF; then what the StatefulSet's here-document adds.
		conf := base + fmt.Sprintf(`
port %d
cluster-port %d
bind 127.0.0.1
dir %s
cluster-config-file %s
cluster-node-timeout 1000
appendonly no
maxmemory 64mb
logfile %s
requirepass "%s"
masterauth "%s"
cluster-announce-hostname "localhost"
`, port, bus, dir, filepath.Join(dir, "nodes.conf"), filepath.Join(dir, "redis.log"), bootstrapPassword, bootstrapPassword)
		cmd := exec.Command("redis-server", "-")
		cmd.Stdin = strings.NewReader(conf)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		node := &bootstrapNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan error, 1)}
		go func() { node.done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-node.done
		})
		nodes = append(nodes, node)
	}
	for _, node := range nodes {
		c := node.client()
		var err error
		for range 200 {
			if err = c.Ping(context.Background()).Err(); err == nil {
				break
			}
			select {
			case werr := <-node.done:
				t.Fatalf("redis-server %s exited: %v", node.addr, werr)
			case <-time.After(25 * time.Millisecond):
			}
		}
		c.Close()
		if err != nil {
			t.Fatalf("redis-server %s does not answer: %v", node.addr, err)
		}
	}
	return nodes
}

func (n *bootstrapNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.addr, Password: bootstrapPassword, MaxRetries: -1})
}

// runBootstrap runs the script with the nodes' addresses and a password,
// returning its output and error.
func runBootstrap(t *testing.T, addrs []string, password string, wait int) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", bootstrapScript)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"REDISCLI_AUTH=" + password,
		"REDIS_CLUSTER_NODES=" + strings.Join(addrs, ","),
		"REDIS_CLUSTER_REPLICAS=1",
		"REDIS_CLUSTER_WAIT=" + strconv.Itoa(wait),
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("bootstrap.sh did not finish: %v\n%s", ctx.Err(), out.String())
	}
	return out.String(), err
}

// clusterView is what one node says of the cluster.
type clusterView struct {
	state    string
	known    int
	role     string         // "master" or "slave"
	replicas map[string]int // primary id (with slots) -> replicas
}

func viewOf(t *testing.T, n *bootstrapNode) clusterView {
	t.Helper()
	c := n.client()
	defer c.Close()
	ctx := context.Background()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		t.Fatalf("%s: CLUSTER INFO: %v", n.addr, err)
	}
	v := clusterView{replicas: map[string]int{}}
	for _, line := range strings.Split(info, "\n") {
		k, val, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "cluster_state":
			v.state = val
		case "cluster_known_nodes":
			v.known, _ = strconv.Atoi(val)
		}
	}
	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("%s: CLUSTER NODES: %v", n.addr, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || strings.Contains(f[2], "fail") {
			continue
		}
		if strings.Contains(f[2], "myself") {
			v.role = "master"
			if strings.Contains(f[2], "slave") {
				v.role = "slave"
			}
		}
		switch {
		case strings.Contains(f[2], "master") && len(f) > 8:
			v.replicas[f[0]] += 0
		case strings.Contains(f[2], "slave"):
			v.replicas[f[3]]++
		}
	}
	return v
}

// checkHealthy: every node ok, knowing all; three primaries with slots and
// one replica each. The script returns once every node says ok; a
// replica's role reaches the other nodes by gossip soon after, so the
// roles are polled (a bounded number of times).
func checkHealthy(t *testing.T, nodes []*bootstrapNode) {
	t.Helper()
	for _, n := range nodes {
		v := viewOf(t, n)
		if v.state != "ok" || v.known != len(nodes) {
			t.Errorf("%s: cluster_state %s, %d known nodes; want ok, %d", n.addr, v.state, v.known, len(nodes))
		}
	}
	var problems []string
	for range 100 {
		problems = nil
		for _, n := range nodes {
			v := viewOf(t, n)
			if len(v.replicas) != 3 {
				problems = append(problems, fmt.Sprintf("%s sees %d primaries with slots, want 3: %v", n.addr, len(v.replicas), v.replicas))
			}
			for id, r := range v.replicas {
				if r != 1 {
					problems = append(problems, fmt.Sprintf("%s sees primary %s with %d replicas, want 1", n.addr, id, r))
				}
			}
		}
		if len(problems) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func TestRedisClusterBootstrap(t *testing.T) {
	nodes := startBootstrapNodes(t, 6)
	// The script is given names, as in a pod (localhost here), and asks
	// each node for its IP address.
	var names, addrs []string
	for _, n := range nodes {
		_, port, _ := net.SplitHostPort(n.addr)
		names = append(names, net.JoinHostPort("localhost", port))
		addrs = append(addrs, n.addr)
	}

	out, err := runBootstrap(t, names, bootstrapPassword, 30)
	if err != nil || !strings.Contains(out, "creating the cluster") {
		t.Fatalf("first run: %v, want a create:\n%s", err, out)
	}
	checkHealthy(t, nodes)

	// Trellis's own client reaches every shard through the announced
	// hostnames (cluster-preferred-endpoint-type hostname).
	rdb, err := store.Connect(store.Config{URL: "redis://" + strings.Join(addrs, ",redis://"), Password: bootstrapPassword, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("store.Connect made a %T for a list of nodes", rdb)
	}
	//lint:ignore SA1019 go-redis builds its slot map from CLUSTER SLOTS, so that is the reply that must name the announced hostnames
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		for _, n := range s.Nodes {
			if host, _, _ := net.SplitHostPort(n.Addr); host != "localhost" {
				t.Errorf("CLUSTER SLOTS %d-%d names %s, not the announced hostname", s.Start, s.End, n.Addr)
			}
		}
	}
	for i := range 30 { // keys on every shard
		key := fmt.Sprintf("bootstrap-test:%d", i)
		if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster: %v", key, err)
		}
	}

	out, err = runBootstrap(t, addrs, bootstrapPassword, 30)
	if err != nil || !strings.Contains(out, "already ok") {
		t.Fatalf("second run: %v, want nothing done:\n%s", err, out)
	}
	checkHealthy(t, nodes)

	// A replica that lost its cluster (as a pod back on an empty volume
	// would): the script meets it again and makes it a replica again.
	var lost *bootstrapNode
	for _, n := range nodes {
		if viewOf(t, n).role == "slave" {
			lost = n
			break
		}
	}
	c := lost.client()
	if err := c.ClusterResetSoft(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if v := viewOf(t, lost); v.known != 1 {
		t.Fatalf("%s knows %d nodes after CLUSTER RESET, want 1", lost.addr, v.known)
	}
	out, err = runBootstrap(t, names, bootstrapPassword, 30)
	if err != nil || !strings.Contains(out, "meets every node") || !strings.Contains(out, lost.addr+" replicates") {
		t.Fatalf("repair run: %v, want a meet and %s made a replica:\n%s", err, lost.addr, out)
	}
	// The new replica's link settles after the script's own check.
	var v clusterView
	for range 100 {
		if v = viewOf(t, lost); v.role == "slave" && v.state == "ok" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.role != "slave" {
		t.Errorf("%s is a %s after the repair, want a replica", lost.addr, v.role)
	}
	checkHealthy(t, nodes)
	for i := range 30 {
		key := fmt.Sprintf("bootstrap-test:%d", i)
		if got, err := rdb.Get(ctx, key).Int(); err != nil || got != i {
			t.Errorf("GET %s after the repair: %d, %v; want %d", key, got, err, i)
		}
	}

	// A wrong password fails at once, saying so; waiting would not mend it.
	out, err = runBootstrap(t, addrs, "not-the-password", 300)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "refuses the password") {
		t.Errorf("wrong password: %v, want a failure naming the password:\n%s", err, out)
	}
	if strings.Contains(out, "not-the-password") {
		t.Errorf("the script printed the password:\n%s", out)
	}

	// A node that never answers: a failure naming it once the wait is over.
	missing := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPorts(t, 1)[0]))
	out, err = runBootstrap(t, append(addrs, missing), bootstrapPassword, 1)
	if !errors.As(err, &exit) || !strings.Contains(out, missing+" did not answer") {
		t.Errorf("missing node: %v, want a failure naming %s:\n%s", err, missing, out)
	}
}
