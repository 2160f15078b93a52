package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { Main(m) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// spreadKeys are n keys that land in many different slots.
func spreadKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return keys
}

func TestSlotMatchesRedis(t *testing.T) {
	c := SharedCluster(t)
	ctx := testCtx(t)
	admin := c.Nodes()[0].Client(t)
	keys := append(spreadKeys("k", 200), "", "{", "}", "{}", "{}x", "a{b}c", "a{b", "a}b{c}", "{{a}}", "x{}{y}",
		"trellis:{ug:alice:demo}:out", "\xff\x00binary")
	for _, k := range keys {
		want, err := admin.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(k); got != int(want) {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

func TestSharedCluster(t *testing.T) {
	start := time.Now()
	c := SharedCluster(t)
	t.Logf("shared cluster ready (or already up) after %v", time.Since(start).Round(time.Millisecond))
	ctx := testCtx(t)

	if got := len(c.Nodes()); got != 6 {
		t.Fatalf("%d nodes, want 6", got)
	}
	for _, n := range c.Nodes() {
		if len(n.ID) != 40 || n.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) || n.BusPort == 0 || n.BusPort == n.Port {
			t.Errorf("node %+v", n)
		}
	}
	if got, want := c.URL(), strings.Join(c.Addrs(), ","); got != want || strings.Count(got, ",") != 5 {
		t.Errorf("URL() = %q", got)
	}
	ps, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ps, c.Nodes()[:3]) {
		t.Errorf("primaries %v, want the first three nodes %v", ps, c.Nodes()[:3])
	}
	for _, p := range ps {
		rs, err := c.ReplicasOf(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || slices.Contains(ps, rs[0]) {
			t.Errorf("replicas of %v: %v", p, rs)
		}
	}

	rdb := c.Client(t)
	keys := spreadKeys(t.Name(), 300)
	slots := map[int]bool{}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
		slots[Slot(k)] = true
	}
	if len(slots) < 250 {
		t.Fatalf("keys in %d slots only", len(slots))
	}
	// Each key is on the primary PrimaryFor names.
	for _, k := range keys[:30] {
		p, err := c.PrimaryFor(k)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Client(t).Get(ctx, k).Result(); err != nil || got != "v-"+k {
			t.Errorf("GET %s on %v = %q, %v", k, p, got, err)
		}
	}
	if err := c.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if n, err := p.Client(t).DBSize(ctx).Result(); err != nil || n != 0 {
			t.Errorf("DBSIZE on %v after FlushAll = %d, %v", p, n, err)
		}
	}
}

// TestClusterFailover kills the primary of a key's slot, checks that its
// replica serves the slot with the data written before the kill, and
// brings the old primary back as a replica.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := NewCluster(t, ClusterOptions{})
	t.Logf("cluster start: %v", time.Since(start).Round(time.Millisecond))
	ctx := testCtx(t)
	rdb := c.Client(t)

	keys := spreadKeys("fo", 500)
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	const key = "fo:the-key"
	p, err := c.PrimaryFor(key)
	if err != nil {
		t.Fatal(err)
	}
	replicas, err := c.ReplicasOf(p)
	if err != nil {
		t.Fatal(err)
	}
	// SET and WAIT on one connection of the primary: WAIT covers this
	// connection's last write, and so every write the primary took before.
	// WAIT 1 100 may time out when the machine is busy (the replica's ack
	// is late): it is asked again, on the same connection.
	conn := p.Client(t).Conn()
	defer conn.Close()
	if err := conn.Set(ctx, key, "before-kill", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		n, err := conn.Do(ctx, "wait", 1, 100).Int()
		if err != nil {
			t.Fatal(err)
		}
		if n >= 1 {
			if i > 0 {
				t.Logf("WAIT 1 100 needed %d tries", i+1)
			}
			break
		}
		if i == 50 {
			info, _ := conn.Info(ctx, "replication").Result()
			t.Fatalf("WAIT 1 100: no replica acknowledged after %d tries; primary's INFO replication:\n%s", i+1, info)
		}
	}

	killed := time.Now()
	np, err := c.KillPrimary(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover (kill to healthy cluster, node timeout %v): %v", time.Second, time.Since(killed).Round(time.Millisecond))
	if np == p || !slices.Contains(replicas, np) {
		t.Fatalf("new primary %v, want one of %v's replicas %v", np, p, replicas)
	}
	if got, err := c.PrimaryFor(key); err != nil || got != np {
		t.Fatalf("PrimaryFor(%q) = %v, %v; want %v", key, got, err, np)
	}
	if p.Running() {
		t.Fatal("killed node still running")
	}

	// go-redis reloads its slot map on MOVED/ASK or every 60 s only.
	rdb.ReloadState(ctx)
	served := time.Now()
	for i := 0; ; i++ {
		v, err := rdb.Get(ctx, key).Result()
		if err == nil {
			if v != "before-kill" {
				t.Fatalf("GET %s = %q after failover", key, v)
			}
			break
		}
		if i > 200 {
			t.Fatalf("GET %s after failover: %v", key, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("cluster client served the key %v after the cluster was healthy", time.Since(served).Round(time.Millisecond))
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != "v-"+k {
			t.Fatalf("GET %s after failover = %q, %v", k, v, err)
		}
	}
	if err := rdb.Set(ctx, key, "after-failover", 0).Err(); err != nil {
		t.Fatal(err)
	}

	restarted := time.Now()
	if err := c.Restart(p); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart of the old primary until it is a synced replica: %v", time.Since(restarted).Round(time.Millisecond))
	if rs, err := c.ReplicasOf(np); err != nil || !slices.Contains(rs, p) {
		t.Fatalf("replicas of %v after restart: %v, %v; want %v among them", np, rs, err, p)
	}
	old := p.Client(t)
	info, err := old.Info(ctx, "replication").Result()
	if err != nil || infoField(info, "role") != "slave" {
		t.Fatalf("restarted node: role %q, %v", infoField(info, "role"), err)
	}
	// It copied the new primary's data, the write after the failover too.
	want, _ := np.Client(t).DBSize(ctx).Result()
	if got, err := old.DBSize(ctx).Result(); err != nil || got != want || got == 0 {
		t.Fatalf("restarted replica has %d keys (%v), primary %d", got, err, want)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "after-failover" {
		t.Fatalf("GET %s after restart = %q, %v", key, v, err)
	}
}

// redirects counts MOVED and ASK replies seen by a cluster client's nodes.
type redirects struct{ moved, ask atomic.Int64 }

func (r *redirects) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *redirects) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.count(err)
		return err
	}
}
func (r *redirects) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			r.count(c.Err())
		}
		return err
	}
}
func (r *redirects) count(err error) {
	if err == nil {
		return
	}
	switch s := err.Error(); {
	case strings.HasPrefix(s, "MOVED "):
		r.moved.Add(1)
	case strings.HasPrefix(s, "ASK "):
		r.ask.Add(1)
	}
}

// TestClusterMoveSlotUnderTraffic moves a slot full of keys to another
// primary while clients keep reading, writing and creating keys in it.
func TestClusterMoveSlotUnderTraffic(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	rdb := c.Client(t)
	var redir redirects
	rdb.OnNewNode(func(n *redis.Client) { n.AddHook(&redir) })

	const tag = "{mv}"
	slot := Slot(tag)
	const preload = 5000
	pipe := rdb.Pipeline()
	for i := range preload {
		pipe.Set(ctx, fmt.Sprintf("%s:k%d", tag, i), i, 0)
	}
	others := spreadKeys("other", 200)
	for _, k := range others {
		pipe.Set(ctx, k, k, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	from, err := c.PrimaryForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	to := ps[0]
	if to == from {
		to = ps[1]
	}

	// Traffic: each worker reads preloaded keys (which must never be
	// missing), overwrites its own keys and creates new ones, and INCRs a
	// counter, until the move is done (or 20 s at most).
	const workers = 4
	var (
		stop    atomic.Bool
		ops     atomic.Int64
		incrs   atomic.Int64
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errs    []error
		created = make([]int, workers)
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
				k := fmt.Sprintf("%s:k%d", tag, (i*workers+w)%preload)
				if v, err := rdb.Get(ctx, k).Result(); err != nil {
					fail(fmt.Errorf("GET %s: %w", k, err))
				} else if want := strconv.Itoa((i*workers + w) % preload); v != want {
					fail(fmt.Errorf("GET %s = %q, want %s", k, v, want))
				}
				if err := rdb.Set(ctx, fmt.Sprintf("%s:new:%d:%d", tag, w, i), i, 0).Err(); err != nil {
					fail(fmt.Errorf("SET new key: %w", err))
				} else {
					created[w] = i + 1
				}
				if err := rdb.Incr(ctx, tag+":ctr").Err(); err != nil {
					fail(fmt.Errorf("INCR: %w", err))
				} else {
					incrs.Add(1)
				}
				ops.Add(3)
			}
		})
	}
	for ops.Load() < 100 { // traffic is flowing before the move starts
		time.Sleep(time.Millisecond)
	}
	moveStart := time.Now()
	opsBefore := ops.Load()
	err = c.MoveSlot(slot, to)
	moveTook := time.Since(moveStart)
	opsDuring := ops.Load() - opsBefore
	time.Sleep(50 * time.Millisecond) // some traffic after the move too
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moved slot %d (%d+ keys) from %v to %v in %v, with %d commands during the move; redirects seen: %d ASK, %d MOVED",
		slot, preload, from, to, moveTook.Round(time.Millisecond), opsDuring, redir.ask.Load(), redir.moved.Load())
	for _, err := range errs {
		t.Error(err)
	}
	if redir.ask.Load() == 0 {
		t.Error("no ASK redirect: the traffic never met the slot while it was migrating")
	}

	if got, err := c.PrimaryForSlot(slot); err != nil || got != to {
		t.Fatalf("slot %d served by %v (%v), want %v", slot, got, err, to)
	}
	total := int64(preload + 1)
	for _, n := range created {
		total += int64(n)
	}
	if n, err := to.Client(t).ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != total {
		t.Errorf("%v has %d keys in slot %d (%v), want %d", to, n, slot, err, total)
	}
	if n, err := from.Client(t).ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != 0 {
		t.Errorf("%v still has %d keys in slot %d (%v)", from, n, slot, err)
	}
	for i := range preload {
		k := fmt.Sprintf("%s:k%d", tag, i)
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET %s after the move = %q, %v", k, v, err)
		}
	}
	for w, n := range created {
		for i := range n {
			k := fmt.Sprintf("%s:new:%d:%d", tag, w, i)
			if v, err := rdb.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
				t.Fatalf("GET %s after the move = %q, %v", k, v, err)
			}
		}
	}
	if v, err := rdb.Get(ctx, tag+":ctr").Int64(); err != nil || v != incrs.Load() {
		t.Errorf("counter = %d (%v), want %d", v, err, incrs.Load())
	}
	for _, k := range others {
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
			t.Fatalf("GET %s after the move = %q, %v", k, v, err)
		}
	}
}

func TestClusterCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	c, err := StartCluster(ClusterOptions{Replicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Nodes()); got != 3 {
		t.Fatalf("%d nodes, want 3", got)
	}
	var pids []int
	for _, n := range c.Nodes() {
		n.mu.Lock()
		pids = append(pids, n.cmd.Process.Pid)
		n.mu.Unlock()
	}
	if _, err := c.KillPrimary(c.Nodes()[0]); err == nil {
		t.Error("KillPrimary of a primary without replica: no error")
	}
	c.Close()
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster dir %s: %v after Close", c.dir, err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("redis-server pid %d: %v after Close", pid, err)
		}
	}
	for _, n := range c.Nodes() {
		for _, port := range []int{n.Port, n.BusPort} {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				t.Errorf("port %d still taken after Close: %v", port, err)
				continue
			}
			ln.Close()
		}
	}
}

func TestClusterMissingBinaries(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip(err)
	}
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if _, err := StartCluster(ClusterOptions{}); !errors.Is(err, ErrNoRedis) {
		t.Errorf("without redis-server: %v, want ErrNoRedis", err)
	}
	if err := os.Symlink(server, filepath.Join(bin, "redis-server")); err != nil {
		t.Fatal(err)
	}
	if _, err := StartCluster(ClusterOptions{}); !errors.Is(err, ErrNoRedisCLI) {
		t.Errorf("without redis-cli: %v, want ErrNoRedisCLI", err)
	}
}

// TestClusterStartFailureSaysWhy starts clusters with a fake redis-cli: one
// that fails, and one that does nothing, so the cluster never forms. The
// errors must say what went wrong and show the end of the nodes' logs.
func TestClusterStartFailureSaysWhy(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(server, filepath.Join(bin, "redis-server")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	fakeCLI := func(script string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(bin, "redis-cli"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	fakeCLI(`echo "[ERR] Node 127.0.0.1:1 is not empty." >&2; exit 1`)
	_, err = StartCluster(ClusterOptions{Replicas: -1, ReadyTimeout: time.Second})
	if err == nil {
		t.Fatal("no error with a failing redis-cli")
	}
	for _, want := range []string{"redis-cli --cluster create", "is not empty", "end of its log", "Ready to accept connections"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}

	fakeCLI(`exit 0`)
	start := time.Now()
	_, err = StartCluster(ClusterOptions{Replicas: -1, ReadyTimeout: time.Second})
	if err == nil {
		t.Fatal("no error when the cluster never forms")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %v, with ReadyTimeout 1s", took)
	}
	// How long it waited, then when: "998ms after ..." or "1.001s after ...".
	if !regexp.MustCompile(`not healthy [0-9.]+m?s after redis-cli --cluster create`).MatchString(err.Error()) {
		t.Errorf("error does not say how long after redis-cli --cluster create it gave up:\n%v", err)
	}
	// What the last check saw: the state, or (on a loaded machine) that
	// the node did not answer CLUSTER INFO in time.
	if !strings.Contains(err.Error(), "cluster_state:fail") && !strings.Contains(err.Error(), "CLUSTER INFO") {
		t.Errorf("error does not say what the last check saw:\n%v", err)
	}
	for _, want := range []string{"end of its log", "Ready to accept connections"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	t.Logf("the error:\n%v", err)
}

// A cluster of fewer than 3 primaries is built without redis-cli (which
// refuses it), and only without replicas.
func TestSmallCluster(t *testing.T) {
	if _, err := StartCluster(ClusterOptions{Primaries: 2}); err == nil {
		t.Fatal("2 primaries with replicas: want an error")
	}
	for _, p := range []int{1, 2} {
		t.Run(strconv.Itoa(p), func(t *testing.T) {
			c := NewCluster(t, ClusterOptions{Primaries: p, Replicas: -1})
			ps, err := c.Primaries()
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != p || len(c.Nodes()) != p {
				t.Fatalf("%d primaries of %d nodes, want %d", len(ps), len(c.Nodes()), p)
			}
			ctx := testCtx(t)
			rdb := c.Client(t)
			for _, k := range spreadKeys("small", 50) {
				if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
					t.Fatalf("SET %s: %v", k, err)
				}
			}
		})
	}
}
