package drills

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// Settings every drill's processes share. The lease TTL is short so that a
// dead worker's sessions move within seconds, and the edges check leases
// often so they notice.
const (
	leaseTTL     = 3 * time.Second
	drainTimeout = 2 * time.Second
	leaseCheck   = 500 * time.Millisecond
	authSecret   = "drills-secret-0123456789abcdef-0123456789abcdef"
	gameID       = "demo"

	readyTimeout = 30 * time.Second // a race-built process on a busy box starts slowly
	exitTimeout  = 20 * time.Second // SIGTERM to exit, drain included
	// recoveryBound is how long any failover may take before a drill
	// fails: the lease TTL, the edge's check period, and a wide margin for
	// a shared 2-core machine running race-enabled binaries.
	recoveryBound = leaseTTL + leaseCheck + 15*time.Second
)

// cluster is one drill's world: a redis-server of its own (AOF on) or a
// Redis Cluster of its own (newRedisCluster), the demo game, and the
// trellis processes started so far.
type cluster struct {
	t     *testing.T
	redis *redistest.Server // the single node; nil on a Redis Cluster
	rdb   *redis.Client     // a client of the single node; nil on a Redis Cluster
	st    *store.Store      // for looking at leases, as an operator would

	// On a Redis Cluster (newRedisCluster): the cluster, which the drill
	// may break (kill primaries, move slots), and the operator's cluster
	// client under st.
	rc   *redistest.Cluster
	crdb *redis.ClusterClient
	// workerEnv is added to every worker's environment before the
	// drill's own settings (which win).
	workerEnv []string

	game     *demogame.Server
	gameAddr string
	gameLog  *logBuffer

	mu    sync.Mutex
	procs []*proc // every process ever started, in start order
}

// newCluster starts Redis, the demo game and registers the game. Edges and
// workers are started by the drill (startEdge, startWorker).
func newCluster(t *testing.T) *cluster {
	t.Helper()
	if trellisBin == "" {
		t.Fatal("the trellis binary was not built (TestMain)")
	}
	srv, err := redistest.Start(redistest.Options{AOF: true})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := &cluster{t: t, redis: srv, gameLog: &logBuffer{}}
	c.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	c.st = store.New(c.rdb)
	c.startGame(func() {
		c.rdb.Close()
		srv.Close()
	})
	return c
}

// clusterLeaseTTL is the workers' lease TTL in a Redis Cluster world: the
// default (10 s), longer than a failover (about 2.5 s at the 1 s node
// timeout, plus the clients' retries), so that a primary's death is the
// drill's subject and not a lease takeover on top of it.
const clusterLeaseTTL = 10 * time.Second

// newRedisCluster is newCluster on a Redis Cluster of the drill's own (3
// primaries, 3 replicas, 1 s node timeout): every edge and worker gets
// TRELLIS_REDIS_URL = the node list, and the operator's store is a
// cluster client. The drill may kill primaries and move slots (c.rc).
func newRedisCluster(t *testing.T) *cluster {
	t.Helper()
	if trellisBin == "" {
		t.Fatal("the trellis binary was not built (TestMain)")
	}
	rc, err := redistest.StartCluster(redistest.ClusterOptions{})
	if err != nil {
		t.Fatalf("start the Redis Cluster: %v", err)
	}
	c := &cluster{t: t, rc: rc, gameLog: &logBuffer{}}
	c.crdb = redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: rc.Addrs(), Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	c.st = store.New(c.crdb)
	c.workerEnv = []string{"TRELLIS_WORKER_LEASE_TTL=" + clusterLeaseTTL.String()}
	c.startGame(func() {
		c.crdb.Close() // the latest operator client (newOperatorClient)
		rc.Close()
	})
	return c
}

// newOperatorClient replaces the operator's cluster client with a fresh
// one, after the drill broke the cluster: go-redis learns of a failover
// only from MOVED or a periodic reload (ReloadState is asynchronous), and
// the drill's own reads must not wait on that.
func (c *cluster) newOperatorClient() {
	old := c.crdb
	c.crdb = redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.rc.Addrs(), Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	c.st = store.New(c.crdb)
	old.Close()
}

// onRedisCluster is newRedisCluster for drills that break the trellis
// processes, not Redis: the workers keep the drills' short lease TTL.
func onRedisCluster(t *testing.T) *cluster {
	t.Helper()
	c := newRedisCluster(t)
	c.workerEnv = nil
	return c
}

// startGame starts the demo game, registers it, and arranges the world's
// teardown: processes first, then the game, then closeRedis.
func (c *cluster) startGame(closeRedis func()) {
	t := c.t
	t.Helper()
	gameLogger := slog.New(slog.NewTextHandler(c.gameLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	game, addr, stopGame, err := demogame.Start(context.Background(), demogame.Config{Logger: gameLogger}, "127.0.0.1:0")
	if err != nil {
		closeRedis()
		t.Fatalf("start demo game: %v", err)
	}
	c.game, c.gameAddr = game, addr

	t.Cleanup(func() {
		c.stopAll()
		if t.Failed() {
			c.dumpLogs()
		}
		stopGame()
		closeRedis()
	})

	_, port, _ := net.SplitHostPort(addr)
	c.trellis("games", "add", "-id", gameID, "-name", "Demo", "-host", "127.0.0.1", "-port", port)
}

// addGame registers one more game at addr (a hostile game, a proxy), as
// an operator would.
func (c *cluster) addGame(id, name, addr string) {
	c.t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.t.Fatalf("game %s at %q: %v", id, addr, err)
	}
	c.trellis("games", "add", "-id", id, "-name", name, "-host", host, "-port", port)
}

// redisURL is what every process connects to: the single node, or the
// Redis Cluster's node list.
func (c *cluster) redisURL() string {
	if c.rc != nil {
		return c.rc.URL()
	}
	return c.redis.URL(0)
}

// baseEnv is the environment of every trellis process: the parent's,
// without any TRELLIS_ variable a developer's shell might carry.
func (c *cluster) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRELLIS_") {
			env = append(env, kv)
		}
	}
	level := os.Getenv("DRILLS_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	return append(env,
		"TRELLIS_REDIS_URL="+c.redisURL(),
		"TRELLIS_LOG_LEVEL="+level,
	)
}

// trellis runs a one-shot subcommand (games add, ...) and fails the test
// if it fails.
func (c *cluster) trellis(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, trellisBin, args...)
	cmd.Env = c.baseEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("trellis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startEdge starts an edge with the given id and waits until /readyz says
// ready.
func (c *cluster) startEdge(id string) *proc {
	c.t.Helper()
	var admin string
	p := c.startReady(id, func(addr string) []string {
		// The admin listener (/metrics) defaults to 127.0.0.1:9090,
		// which two edges cannot share.
		admin = freeAddr(c.t)
		return []string{
			"TRELLIS_AUTH_SECRET=" + authSecret,
			"TRELLIS_EDGE_ID=" + id,
			"TRELLIS_EDGE_LISTEN=" + addr,
			"TRELLIS_EDGE_ADMIN_LISTEN=" + admin,
			"TRELLIS_EDGE_LEASE_CHECK=" + leaseCheck.String(),
		}
	}, "edge", "/readyz")
	p.admin = admin
	return p
}

// startWorker starts a worker with the given consumer name and waits until
// /healthz answers 200; the process's instance id is then known.
func (c *cluster) startWorker(name string) *proc {
	c.t.Helper()
	return c.startWorkerEnv(name)
}

// allowNetworks lets the drills' workers dial games on loopback: the
// worker's dial guard refuses loopback and private addresses by default,
// and every game of a drill (the demo game, the hostile games, proxies)
// listens on 127.0.0.1.
const allowNetworks = "127.0.0.0/8,::1/128"

// startWorkerEnv is startWorker with extra TRELLIS_* settings (later
// entries win over the drills' defaults).
func (c *cluster) startWorkerEnv(name string, extra ...string) *proc {
	c.t.Helper()
	p := c.startReady(name, func(addr string) []string {
		env := []string{
			"TRELLIS_WORKER_NAME=" + name,
			"TRELLIS_WORKER_ADMIN_LISTEN=" + addr,
			"TRELLIS_WORKER_LEASE_TTL=" + leaseTTL.String(),
			"TRELLIS_WORKER_DRAIN_TIMEOUT=" + drainTimeout.String(),
			"TRELLIS_WORKER_ALLOW_NETWORKS=" + allowNetworks,
		}
		env = append(env, c.workerEnv...)
		return append(env, extra...)
	}, "worker", "/healthz")
	h, err := p.health()
	if err != nil {
		c.t.Fatalf("worker %s: %v", name, err)
	}
	p.instance = h.Worker
	return p
}

// startReady starts a subcommand listening on a free port and waits for
// its readiness endpoint. A process that dies before it is ready (its port
// was taken in between, say) is retried twice on another port.
func (c *cluster) startReady(name string, env func(addr string) []string, sub, path string) *proc {
	c.t.Helper()
	var lastErr error
	for range 3 {
		addr := freeAddr(c.t)
		p, err := c.start(name, env(addr), sub)
		if err != nil {
			c.t.Fatalf("start %s: %v", name, err)
		}
		p.addr = addr
		if lastErr = p.waitReady(path, readyTimeout); lastErr == nil {
			return p
		}
		p.kill()
		if !p.exitedEarly() {
			break
		}
	}
	c.t.Fatalf("%s not ready: %v", name, lastErr)
	return nil
}

// start launches `trellis <sub>` with extra environment.
func (c *cluster) start(name string, extraEnv []string, sub string) (*proc, error) {
	p := &proc{name: name, log: &logBuffer{}, exited: make(chan struct{})}
	cmd := exec.Command(trellisBin, sub)
	cmd.Env = append(c.baseEnv(), extraEnv...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The child dies with the test binary, even if the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.cmd = cmd
	p.started = time.Now()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// stopAll kills whatever still runs and checks every process's output for
// data races and panics, which fail the drill even when its players were
// served.
func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for _, p := range procs {
		out := p.log.String()
		if strings.Contains(out, "WARNING: DATA RACE") {
			c.t.Errorf("%s reported a data race (output below)", p.name)
		}
		if strings.Contains(out, "panic: ") || strings.Contains(out, "fatal error: ") {
			c.t.Errorf("%s panicked (output below)", p.name)
		}
	}
}

// dumpLogs prints the tail of every process's output and the game's log.
func (c *cluster) dumpLogs() {
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		c.t.Logf("===== %s (%s, %v) =====\n%s", p.name, p.addr, p.waitErr, p.log.Tail(64<<10))
	}
	c.t.Logf("===== demo game =====\n%s", c.gameLog.Tail(32<<10))
}

// lease returns the live lease of user's session, if any.
func (c *cluster) lease(user string) (store.Lease, bool) {
	c.t.Helper()
	return c.leaseOf(store.SessionKey{User: user, Game: gameID})
}

// leaseOf returns the live lease of the session key, if any.
func (c *cluster) leaseOf(key store.SessionKey) (store.Lease, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, ok, err := c.st.GetLease(ctx, key)
	if err != nil {
		c.t.Fatalf("get lease of %s: %v", key, err)
	}
	return l, ok
}

// owner is the worker process holding user's lease.
func (c *cluster) owner(user string) *proc {
	c.t.Helper()
	return c.ownerOf(store.SessionKey{User: user, Game: gameID})
}

// ownerOf is the worker process holding the lease of key.
func (c *cluster) ownerOf(key store.SessionKey) *proc {
	c.t.Helper()
	l, ok := c.leaseOf(key)
	if !ok {
		c.t.Fatalf("%s has no lease", key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.instance != "" && p.instance == l.Owner {
			return p
		}
	}
	c.t.Fatalf("lease of %s is held by %q, which is none of our workers", key, l.Owner)
	return nil
}

// entriesContaining lists the entries of user's output stream whose text
// contains s, with their fence and sequence number: which writer wrote a
// line, and whether it was written twice.
func (c *cluster) entriesContaining(user, s string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := c.st.OutputRange(ctx, store.SessionKey{User: user, Game: gameID}, "-", "+", 100_000)
	if err != nil {
		return "read output stream: " + err.Error()
	}
	var b strings.Builder
	for _, o := range entries {
		if strings.Contains(o.Text, s) {
			fmt.Fprintf(&b, "  %s fence %d seq %d %q\n", o.ID, o.Fence, o.Seq, o.Text)
		}
	}
	return b.String()
}

// checkSecretKept fails the test if p's password reached the session's
// output stream or any process's log: typed under server echo, it must
// travel only from the browser through the edge and worker to the game.
func (c *cluster) checkSecretKept(p *player) {
	c.t.Helper()
	if found := c.entriesContaining(p.user, p.pass); found != "" {
		c.t.Errorf("%s's password is in the output stream:\n%s", p.user, found)
	}
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for _, pr := range procs {
		if strings.Contains(pr.log.String(), p.pass) {
			c.t.Errorf("%s's password is in the log of %s", p.user, pr.name)
		}
	}
}

// proc is one trellis process.
type proc struct {
	name     string // e1, w1, ...
	addr     string // the edge's listener or the worker's admin address
	admin    string // the edge's admin address (/metrics); "" for a worker
	instance string // a worker's instance id (lease owner), from /healthz
	cmd      *exec.Cmd
	log      *logBuffer
	started  time.Time

	exited  chan struct{} // closed once Wait returned
	waitErr error         // Wait's result; read after exited is closed
}

// waitReady polls path on the process's address until it answers 200.
func (p *proc) waitReady(path string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.waitErr)
		default:
		}
		resp, err := client.Get("http://" + p.addr + path)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s%s not ready after %s: %s", p.addr, path, timeout, last)
}

// workerHealth is the body of a worker's /healthz.
type workerHealth struct {
	Worker   string `json:"worker"`
	Status   string `json:"status"`
	Sessions int    `json:"sessions"`
}

func (p *proc) health() (workerHealth, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + p.addr + "/healthz")
	if err != nil {
		return workerHealth{}, fmt.Errorf("healthz of %s: %w", p.name, err)
	}
	defer resp.Body.Close()
	var h workerHealth
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return workerHealth{}, fmt.Errorf("healthz of %s: decode: %w", p.name, err)
	}
	return h, nil
}

// kill sends SIGKILL, like a node dying, and waits for the process.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// terminate sends SIGTERM, like Kubernetes stopping a pod, and waits up to
// timeout for the process to exit on its own. It returns how long that
// took; a process that does not exit in time is killed and reported.
func (p *proc) terminate(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
		took := time.Since(start)
		if p.waitErr != nil {
			return took, fmt.Errorf("%s exited after SIGTERM with %v", p.name, p.waitErr)
		}
		return took, nil
	case <-time.After(timeout):
		p.kill()
		return time.Since(start), fmt.Errorf("%s still running %s after SIGTERM: killed", p.name, timeout)
	}
}

// exitedEarly reports whether the process ended on its own (not killed by
// us) — a sign its port was taken.
func (p *proc) exitedEarly() bool {
	<-p.exited
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return false
		}
	}
	return strings.Contains(p.log.String(), "address already in use")
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// logBuffer collects a process's output, keeping the first and the last
// part when it grows past its limit (the start has the configuration, the
// end the failure).
type logBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int
}

const (
	logHeadMax = 64 << 10
	logTailMax = 4 << 20
)

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := logHeadMax - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - logTailMax; over > 0 {
		b.tail = append(b.tail[:0], b.tail[over:]...)
		b.dropped += over
	}
	return n, nil
}

// String is everything kept.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return string(b.head) + fmt.Sprintf("\n[... %d bytes dropped ...]\n", b.dropped) + string(b.tail)
	}
	return string(b.head) + string(b.tail)
}

// Tail is the last n bytes kept.
func (b *logBuffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "[...]\n" + s[len(s)-n:]
	}
	return s
}
