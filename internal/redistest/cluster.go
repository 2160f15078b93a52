package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Slots is how many hash slots a Redis Cluster has.
const Slots = 16384

// ErrNoRedisCLI says redis-cli is not installed; StartCluster needs it for
// `redis-cli --cluster create`.
var ErrNoRedisCLI = errors.New("redis-cli not found in PATH: run `make deps` (Debian's redis-server pulls in redis-tools, which has redis-cli)")

// ClusterOptions configures a cluster. The zero value is the usual test
// cluster: 3 primaries with one replica each and a 1 s node timeout.
type ClusterOptions struct {
	// Primaries is how many primaries share the slots: 3 if 0. Fewer
	// than 3 only without replicas (Replicas -1): redis-cli --cluster
	// create will not build such a cluster, so the harness assigns the
	// slots itself (benchmarks compare 1 primary with 3).
	Primaries int
	// Replicas is how many replicas each primary has: 1 if 0; -1 for none.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable before the others count it as failed. 1 s if 0. A
	// failover (kill to healthy cluster) takes about this plus 1 to 2 s:
	// 2.1 to 2.9 s at 1 s, 1.8 to 2 s at 500 ms, 3.8 to 4.9 s at 2 s.
	NodeTimeout time.Duration
	// ReadyTimeout bounds every wait for the cluster to settle: at start,
	// after a failover, a restart or a slot move. 30 s if 0.
	ReadyTimeout time.Duration
}

func (o ClusterOptions) withDefaults() (ClusterOptions, error) {
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	if o.Primaries < 1 || o.Primaries < 3 && o.Replicas >= 0 {
		return o, fmt.Errorf("redistest: a cluster needs at least 3 primaries (1 or 2 only with Replicas -1), not %d", o.Primaries)
	}
	switch {
	case o.Replicas == 0:
		o.Replicas = 1
	case o.Replicas < 0:
		o.Replicas = 0
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = time.Second
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	return o, nil
}

// Node is one redis-server of a cluster. Its port, bus port, directory and
// cluster node id stay the same for the cluster's life, across Kill and
// Restart; its role (primary or replica) may change.
type Node struct {
	ID      string // cluster node id (CLUSTER MYID), kept in its nodes.conf
	Addr    string // 127.0.0.1:Port
	Port    int
	BusPort int // cluster bus port (cluster-port), chosen free on its own

	dir   string
	admin *redis.Client // for the harness's own commands

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// String is the node's address.
func (n *Node) String() string { return n.Addr }

// Running reports whether the node's process is up (not killed).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Client returns a plain (non-cluster) client connected to this node only,
// closed when the test ends: for commands that must reach one node, such
// as WAIT after a write or INFO replication. It does not follow MOVED.
func (n *Node) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:                  n.Addr,
		Protocol:              2, // as store.Connect: see there
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func (n *Node) logPath() string { return filepath.Join(n.dir, "redis.log") }

func (n *Node) start(o ClusterOptions) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return errors.New("already running")
	}
	args := []string{
		"--port", strconv.Itoa(n.Port),
		"--bind", "127.0.0.1",
		"--dir", n.dir,
		"--logfile", n.logPath(),
		"--protected-mode", "yes",
		"--save", "",
		"--appendonly", "no",
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
		// An explicit bus port: the default, port+10000, may be taken,
		// and is refused outright for a port above 55535.
		"--cluster-port", strconv.Itoa(n.BusPort),
		// Replicas sync at once: the default diskless sync waits 5 s for
		// more replicas to come along before it starts.
		"--repl-diskless-sync-delay", "0",
		// A replica may fail over however recently it heard from its
		// primary: tests kill primaries right after writing.
		"--cluster-replica-validity-factor", "0",
	}
	cmd, exited, err := launch(n.Port, n.logPath(), args)
	if err != nil {
		return err
	}
	n.cmd, n.exited = cmd, exited
	return nil
}

// kill sends SIGKILL and waits for the process to go.
func (n *Node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Pause stops the node's process (SIGSTOP) without killing it: it keeps
// its sockets open and answers nothing, as a hung or overloaded server
// does, until Resume. Pausing a node that is not running is an error.
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP) }

// Resume continues a node Pause stopped (SIGCONT).
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT) }

func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("redistest: node %s is not running", n.Addr)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("redistest: signal %v to node %s: %w", sig, n.Addr, err)
	}
	return nil
}

// Cluster is a running local Redis Cluster: primaries and replicas on free
// loopback ports, each in its own temporary directory, with no persistence.
// Its methods are not safe for concurrent use with each other, but
// Addrs, URL, Nodes and clients may be used while it fails over or moves
// slots (that is what it is for).
type Cluster struct {
	opts  ClusterOptions
	dir   string
	nodes []*Node // start order: the first opts.Primaries began as primaries

	closeOnce sync.Once
}

// StartCluster starts a cluster and waits until it is ready: every node
// reports cluster_state:ok, every node agrees on who serves which of the
// 16384 slots, and every replica has synced with its primary.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redistest: %w", ErrNoRedis)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, fmt.Errorf("redistest: %w", ErrNoRedisCLI)
	}
	dir, err := os.MkdirTemp("", "trellis-redis-cluster-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	c := &Cluster{opts: o, dir: dir}
	total := o.Primaries * (1 + o.Replicas)
	// All ports at once, so that no two nodes are handed the same one.
	ports, err := freePorts(2 * total)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redistest: %w", err)
	}
	for i := range total {
		n := &Node{Port: ports[2*i], BusPort: ports[2*i+1], dir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		n.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port))
		if err := os.Mkdir(n.dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redistest: %w", err)
		}
		c.nodes = append(c.nodes, n)
	}
	fail := func(err error) (*Cluster, error) {
		err = fmt.Errorf("redistest: start cluster: %w\n%s", err, c.logTails())
		c.Close()
		return nil, err
	}

	errs := make([]error, total)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = c.startFresh(n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.ReadyTimeout)
	defer cancel()
	for _, n := range c.nodes {
		n.admin = adminClient(n.Addr)
		if n.ID, err = n.admin.ClusterMyID(ctx).Result(); err != nil {
			return fail(fmt.Errorf("%s: CLUSTER MYID: %w", n.Addr, err))
		}
	}
	if o.Primaries < 3 {
		if err := c.formSmall(ctx); err != nil {
			return fail(err)
		}
		if err := c.waitHealthy(ctx, "after assigning the slots"); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// --cluster create makes the first Primaries addresses primaries and
	// spreads the rest over them as replicas. It needs every node empty
	// (no keys, no known nodes), which fresh nodes are.
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	cli := exec.CommandContext(ctx, "redis-cli", args...)
	cli.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cli.Env = append(os.Environ(), "TERM=dumb") // no colour codes in its output
	if out, err := cli.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %w: %s", err, tail(out, 1500)))
	}
	if err := c.waitHealthy(ctx, "after redis-cli --cluster create"); err != nil {
		c.Close()
		return nil, err // with the logs' tails already
	}
	return c, nil
}

// formSmall builds a cluster of 1 or 2 primaries without replicas, which
// redis-cli --cluster create refuses: each node takes an equal range of
// slots and the others meet the first.
func (c *Cluster) formSmall(ctx context.Context) error {
	p := len(c.nodes)
	for i, n := range c.nodes {
		lo, hi := i*Slots/p, (i+1)*Slots/p-1
		if err := n.admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER ADDSLOTSRANGE %d %d: %w", n.Addr, lo, hi, err)
		}
		if i > 0 {
			first := c.nodes[0]
			if err := n.admin.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", first.Port, first.BusPort).Err(); err != nil {
				return fmt.Errorf("%s: CLUSTER MEET %s: %w", n.Addr, first.Addr, err)
			}
		}
	}
	return nil
}

// startFresh starts a new node, on fresh ports if its own are taken.
func (c *Cluster) startFresh(n *Node) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			ports, perr := freePorts(2)
			if perr != nil {
				err = perr
				continue
			}
			n.Port, n.BusPort = ports[0], ports[1]
			n.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port))
			os.Remove(filepath.Join(n.dir, "nodes.conf"))
		}
		if err = n.start(c.opts); err == nil {
			return nil
		}
	}
	return err
}

// freePorts is FreePorts (ports.go), under the name this file's callers use.
func freePorts(n int) ([]int, error) { return FreePorts(n) }

func adminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, Protocol: 2,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
		PoolSize: 2,
	})
}

// Nodes returns every node, running or not, in start order: the first
// ClusterOptions.Primaries of them were the primaries when the cluster was
// created. Roles change with failovers: ask Primaries or PrimaryFor.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// Addrs returns the host:port of every node, in the order of Nodes
// (primaries at creation first).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr
	}
	return out
}

// URL is the cluster as store.Config.URL (TRELLIS_REDIS_URL) takes it: a
// comma-separated list of every node's host:port.
func (c *Cluster) URL() string { return strings.Join(c.Addrs(), ",") }

// Client returns a cluster client seeded with every node, closed when the
// test ends. It is set up like store.Connect's: RESP2, short timeouts, one
// retry, one dial per attempt, context deadlines honoured.
//
// go-redis reloads its slot map on MOVED or ASK and otherwise only every
// 60 s: after a failover, call ReloadState (or the client keeps sending the
// dead primary's slots to it until then).
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.Addrs(),
		Protocol:              2, // as store.Connect: see there
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		PoolTimeout:           3 * time.Second,
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// byID is the node with cluster node id id, or nil.
func (c *Cluster) byID(id string) *Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

func (c *Cluster) running() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// view is one running node's CLUSTER NODES.
func (c *Cluster) view(ctx context.Context) (map[string]*nodeEntry, error) {
	var firstErr error
	for _, n := range c.running() {
		txt, err := n.admin.ClusterNodes(ctx).Result()
		if err == nil {
			return parseClusterNodes(txt)
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: CLUSTER NODES: %w", n.Addr, err)
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no node is running")
	}
	return nil, firstErr
}

func (c *Cluster) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.ReadyTimeout)
}

// Slot is the hash slot of key, as CLUSTER KEYSLOT computes it (CRC16 of
// the key, or of its first non-empty {hash tag}, mod 16384).
func Slot(key string) int {
	k := key
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			k = k[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(k); i++ {
		crc ^= uint16(k[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % Slots)
}

// PrimaryFor returns the node that serves key's slot now, as a running
// node sees the cluster. Call it when the cluster has settled (after
// StartCluster, KillPrimary, Restart or MoveSlot returned).
func (c *Cluster) PrimaryFor(key string) (*Node, error) {
	return c.PrimaryForSlot(Slot(key))
}

// PrimaryForSlot returns the node that serves slot now (see PrimaryFor).
func (c *Cluster) PrimaryForSlot(slot int) (*Node, error) {
	if slot < 0 || slot >= Slots {
		return nil, fmt.Errorf("redistest: slot %d out of range", slot)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.view(ctx)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	for id, e := range v {
		if e.master() && e.serves(slot) {
			if n := c.byID(id); n != nil {
				return n, nil
			}
			return nil, fmt.Errorf("redistest: slot %d is served by unknown node %s", slot, id)
		}
	}
	return nil, fmt.Errorf("redistest: no node serves slot %d", slot)
}

// Primaries returns the nodes that serve slots now, in the order of Nodes.
func (c *Cluster) Primaries() ([]*Node, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.view(ctx)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	var out []*Node
	for _, n := range c.nodes {
		if e := v[n.ID]; e != nil && e.master() && len(e.slots) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// ReplicasOf returns the nodes that replicate p now (running or not), in
// the order of Nodes.
func (c *Cluster) ReplicasOf(p *Node) ([]*Node, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.view(ctx)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	var out []*Node
	for _, n := range c.nodes {
		if e := v[n.ID]; e != nil && !e.master() && e.masterID == p.ID {
			out = append(out, n)
		}
	}
	return out, nil
}

// Kill stops n abruptly (SIGKILL), like a crash, and returns at once. If n
// was a primary the cluster fails over by itself: WaitHealthy waits for it.
func (c *Cluster) Kill(n *Node) error {
	if !n.Running() {
		return fmt.Errorf("redistest: node %s is not running", n.Addr)
	}
	n.kill()
	return nil
}

// KillPrimary kills primary p (SIGKILL) and waits until one of its replicas
// has taken over all its slots and the cluster is healthy again (see
// WaitHealthy). It returns the new primary. Writes p acknowledged but had
// not yet sent to the replica are lost, as in a real crash: WAIT first for
// the ones a test relies on.
func (c *Cluster) KillPrimary(p *Node) (*Node, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.view(ctx)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	e := v[p.ID]
	if e == nil || !e.master() || len(e.slots) == 0 {
		return nil, fmt.Errorf("redistest: node %s is not a primary with slots", p.Addr)
	}
	hasReplica := false
	for id, r := range v {
		if !r.master() && r.masterID == p.ID && c.byID(id) != nil && c.byID(id).Running() {
			hasReplica = true
		}
	}
	if !hasReplica {
		return nil, fmt.Errorf("redistest: primary %s has no running replica to fail over to", p.Addr)
	}
	if err := c.Kill(p); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, "after killing primary "+p.Addr); err != nil {
		return nil, err
	}
	after, err := c.view(ctx)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	for id, ne := range after {
		if np := c.byID(id); np != nil && np != p && ne.master() && ne.serves(e.slots[0][0]) {
			for _, r := range e.slots {
				for slot := r[0]; slot <= r[1]; slot++ {
					if !ne.serves(slot) {
						return nil, fmt.Errorf("redistest: after the failover of %s, %s took slot %d but not slot %d", p.Addr, np.Addr, e.slots[0][0], slot)
					}
				}
			}
			return np, nil
		}
	}
	return nil, fmt.Errorf("redistest: after the failover of %s no running node serves slot %d", p.Addr, e.slots[0][0])
}

// WaitHealthy waits (ClusterOptions.ReadyTimeout at most) until the running
// nodes form a healthy cluster: each reports cluster_state:ok, all agree on
// every node's role and slots, running primaries serve all 16384 slots, no
// slot is being migrated, and every running replica has synced with its
// primary. Killed nodes are left out; they may be marked failed.
func (c *Cluster) WaitHealthy() error {
	ctx, cancel := c.ctx()
	defer cancel()
	return c.waitHealthy(ctx, "")
}

func (c *Cluster) waitHealthy(ctx context.Context, when string) error {
	start := time.Now()
	for {
		err := c.checkHealthy(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			took := time.Since(start).Round(time.Millisecond)
			if when == "" {
				return fmt.Errorf("redistest: cluster not healthy after %v: %v\n%s", took, err, c.logTails())
			}
			return fmt.Errorf("redistest: cluster not healthy %v %s: %v\n%s", took, when, err, c.logTails())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkHealthy returns nil if the cluster is healthy now, or what is not.
func (c *Cluster) checkHealthy(ctx context.Context) error {
	running := c.running()
	if len(running) == 0 {
		return errors.New("no node is running")
	}
	isRunning := map[string]bool{}
	for _, n := range running {
		isRunning[n.ID] = true
	}
	var ref string
	var refNode *Node
	var refView map[string]*nodeEntry
	for _, n := range running {
		info, err := n.admin.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr, st)
		}
		txt, err := n.admin.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER NODES: %w", n.Addr, err)
		}
		v, err := parseClusterNodes(txt)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		me := v[n.ID]
		if me == nil || !me.flags["myself"] {
			return fmt.Errorf("%s: CLUSTER NODES does not list it as myself", n.Addr)
		}
		if me.open {
			return fmt.Errorf("%s: has a slot in migration (importing or migrating)", n.Addr)
		}
		for _, m := range running {
			e := v[m.ID]
			if e == nil {
				return fmt.Errorf("%s does not know node %s yet", n.Addr, m.Addr)
			}
			for _, bad := range []string{"fail", "fail?", "handshake", "noaddr"} {
				if e.flags[bad] {
					return fmt.Errorf("%s sees %s as %s", n.Addr, m.Addr, bad)
				}
			}
			if m != n && e.link != "connected" {
				return fmt.Errorf("%s: bus link to %s is %s", n.Addr, m.Addr, e.link)
			}
		}
		sig := signature(v, isRunning)
		if refNode == nil {
			ref, refNode, refView = sig, n, v
		} else if sig != ref {
			return fmt.Errorf("%s and %s do not agree yet on roles and slots", refNode.Addr, n.Addr)
		}
	}
	// Coverage: every slot served by a running primary.
	var covered [Slots]bool
	for id, e := range refView {
		if !e.master() || !isRunning[id] {
			continue
		}
		for _, r := range e.slots {
			for s := r[0]; s <= r[1]; s++ {
				covered[s] = true
			}
		}
	}
	for s, ok := range covered {
		if !ok {
			return fmt.Errorf("slot %d is served by no running primary", s)
		}
	}
	// Replication: each running replica synced, each primary sees them.
	want := map[string]int{}
	for _, n := range running {
		e := refView[n.ID]
		if e.master() {
			continue
		}
		m := c.byID(e.masterID)
		if m == nil || !isRunning[m.ID] {
			return fmt.Errorf("replica %s follows a node that is not running (%s)", n.Addr, e.masterID)
		}
		want[m.ID]++
		info, err := n.admin.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", n.Addr, err)
		}
		if infoField(info, "role") != "slave" || infoField(info, "master_port") != strconv.Itoa(m.Port) {
			return fmt.Errorf("replica %s does not replicate %s yet", n.Addr, m.Addr)
		}
		if infoField(info, "master_link_status") != "up" || infoField(info, "master_sync_in_progress") != "0" {
			return fmt.Errorf("replica %s has not synced with %s yet", n.Addr, m.Addr)
		}
	}
	for _, n := range running {
		if !refView[n.ID].master() {
			continue
		}
		info, err := n.admin.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", n.Addr, err)
		}
		if got := infoField(info, "connected_slaves"); got != strconv.Itoa(want[n.ID]) {
			return fmt.Errorf("primary %s has %s replicas attached, want %d", n.Addr, got, want[n.ID])
		}
		for i := range want[n.ID] {
			if !strings.Contains(infoField(info, "slave"+strconv.Itoa(i)), "state=online") {
				return fmt.Errorf("primary %s: replica %d not online yet", n.Addr, i)
			}
		}
	}
	return nil
}

// signature is the part of a view that every node must agree on: the
// role, primary and slots of every running node.
func signature(v map[string]*nodeEntry, running map[string]bool) string {
	var ids []string
	for id := range running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		e := v[id]
		if e == nil {
			fmt.Fprintf(&b, "%s ?\n", id)
			continue
		}
		fmt.Fprintf(&b, "%s %v %s %v\n", id, e.master(), e.masterID, e.slots)
	}
	return b.String()
}

// Restart starts a killed node again on its ports and directory. It keeps
// its node id (nodes.conf) but not its data (no persistence). If its slots
// were failed over, it rejoins as a replica of the node that took them and
// copies that node's data; Restart waits until it has, and the cluster is
// healthy. Restarting a killed primary before a replica took its slots
// brings it back as an empty primary, and its replica then copies the
// emptiness: use KillPrimary, which waits for the failover.
func (c *Cluster) Restart(n *Node) error {
	if n.Running() {
		return fmt.Errorf("redistest: node %s is running", n.Addr)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var err error
	// The ports may linger briefly in the kernel after a kill; retry.
	for range 50 {
		if err = n.start(c.opts); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("redistest: restart node %s: %w", n.Addr, err)
	}
	return c.waitHealthy(ctx, "after restarting "+n.Addr)
}

// MoveSlot moves slot, with its keys, to primary to, the way redis-cli
// --cluster reshard does, while clients keep working: CLUSTER SETSLOT
// IMPORTING on to and MIGRATING on the slot's primary, MIGRATE of its keys
// in batches of 100, then CLUSTER SETSLOT NODE on to, the old primary and
// every other primary. Meanwhile clients get ASK for keys already moved,
// and MOVED afterwards. It waits until the cluster is healthy again. Use
// MoveSlot(Slot(key), to) to move a given key.
func (c *Cluster) MoveSlot(slot int, to *Node) error {
	from, err := c.PrimaryForSlot(slot)
	if err != nil {
		return err
	}
	if from == to {
		return nil
	}
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.view(ctx)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	if e := v[to.ID]; e == nil || !e.master() || !to.Running() {
		return fmt.Errorf("redistest: move slot %d: %s is not a running primary", slot, to.Addr)
	}
	fail := func(step string, err error) error {
		return fmt.Errorf("redistest: move slot %d from %s to %s: %s: %w", slot, from.Addr, to.Addr, step, err)
	}
	if err := setSlot(ctx, to, slot, "importing", from.ID).Err(); err != nil {
		return fail("SETSLOT IMPORTING", err)
	}
	if err := setSlot(ctx, from, slot, "migrating", to.ID).Err(); err != nil {
		return fail("SETSLOT MIGRATING", err)
	}
	for {
		keys, err := from.admin.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			return fail("GETKEYSINSLOT", err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", "127.0.0.1", to.Port, "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := from.admin.Do(ctx, args...).Err(); err != nil {
			return fail("MIGRATE", err)
		}
	}
	// The new owner first, so that it ends importing and claims the slot
	// with a new epoch; then the old one, then the rest.
	owners := []*Node{to, from}
	for _, n := range c.running() {
		if e := v[n.ID]; n != to && n != from && e != nil && e.master() {
			owners = append(owners, n)
		}
	}
	for _, n := range owners {
		if err := setSlot(ctx, n, slot, "node", to.ID).Err(); err != nil {
			return fail("SETSLOT NODE on "+n.Addr, err)
		}
	}
	return c.waitHealthy(ctx, fmt.Sprintf("after moving slot %d to %s", slot, to.Addr))
}

// FlushAll deletes every key (FLUSHALL on every running primary; replicas
// follow). A cluster has only database 0, so tests that share one isolate
// by flushing, or by key prefixes when they run in parallel.
func (c *Cluster) FlushAll(ctx context.Context) error {
	ps, err := c.Primaries()
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := p.admin.FlushAll(ctx).Err(); err != nil {
			return fmt.Errorf("redistest: FLUSHALL on %s: %w", p.Addr, err)
		}
	}
	return nil
}

// Close kills every node and removes the cluster's directory.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		for _, n := range c.nodes {
			n.kill()
			if n.admin != nil {
				n.admin.Close()
			}
		}
		os.RemoveAll(c.dir)
	})
	return nil
}

// logTails is the end of every node's log, for error messages.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		log, _ := os.ReadFile(n.logPath())
		// Every start warns about vm.overcommit_memory: not news.
		log = overcommitWarning.ReplaceAll(log, nil)
		state := "running"
		if !n.Running() {
			state = "not running"
		}
		fmt.Fprintf(&b, "--- node %s (id %.8s, %s), end of its log:\n", n.Addr, n.ID, state)
		b.WriteString(lastLines(log, 6))
	}
	return b.String()
}

var overcommitWarning = regexp.MustCompile(`(?m)^.*WARNING Memory overcommit.*\n`)

// lastLines is the last n lines of b, 1500 bytes at most.
func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for range n {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			i = 0
			break
		}
		i = j
	}
	out := strings.TrimLeft(string(b[i:]), "\n")
	if len(out) > 1500 {
		out = out[len(out)-1500:]
	}
	return out + "\n"
}

// setSlot is CLUSTER SETSLOT slot sub id on n.
func setSlot(ctx context.Context, n *Node, slot int, sub, id string) *redis.Cmd {
	return n.admin.Do(ctx, "cluster", "setslot", slot, sub, id)
}

// nodeEntry is one line of CLUSTER NODES.
type nodeEntry struct {
	id, addr string
	flags    map[string]bool
	masterID string // the primary's id, for a replica
	link     string // connected or disconnected
	slots    [][2]int
	open     bool // a slot being imported or migrated (listed by myself only)
}

func (e *nodeEntry) master() bool { return e.flags["master"] }

func (e *nodeEntry) serves(slot int) bool {
	for _, r := range e.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// parseClusterNodes reads CLUSTER NODES: per line, id ip:port@cport flags
// master ping-sent pong-recv config-epoch link-state slot...
func parseClusterNodes(txt string) (map[string]*nodeEntry, error) {
	out := map[string]*nodeEntry{}
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES: bad line %q", line)
		}
		e := &nodeEntry{id: f[0], addr: f[1], flags: map[string]bool{}, link: f[7]}
		for _, fl := range strings.Split(f[2], ",") {
			e.flags[fl] = true
		}
		if f[3] != "-" {
			e.masterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				e.open = true
				continue
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("CLUSTER NODES: bad slot %q in %q", s, line)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil, fmt.Errorf("CLUSTER NODES: bad slot %q in %q", s, line)
				}
			}
			e.slots = append(e.slots, [2]int{a, b})
		}
		out[e.id] = e
	}
	return out, nil
}

// NewCluster starts a cluster owned by one test (for tests that kill nodes
// or move slots); it is removed when the test ends.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	c, err := StartCluster(opts)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

var (
	sharedClusterMu  sync.Mutex
	sharedCluster    *Cluster
	sharedClusterErr error
)

// SharedCluster returns the test binary's cluster (default options),
// starting it on first use; Main stops it. Tests that share it must not
// kill nodes or move slots, and should flush (FlushAll) or use their own
// key prefixes.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	sharedClusterMu.Lock()
	defer sharedClusterMu.Unlock()
	if sharedCluster == nil && sharedClusterErr == nil {
		sharedCluster, sharedClusterErr = StartCluster(ClusterOptions{})
	}
	if sharedClusterErr != nil {
		tb.Fatalf("%v", sharedClusterErr)
	}
	return sharedCluster
}

func closeSharedCluster() {
	sharedClusterMu.Lock()
	defer sharedClusterMu.Unlock()
	if sharedCluster != nil {
		sharedCluster.Close()
	}
}
