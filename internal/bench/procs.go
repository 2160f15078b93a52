package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// ProcOptions configures a stack run as separate processes.
type ProcOptions struct {
	// Binary is the trellis executable whose subcommands (edge, worker,
	// demo-game, bench --serve-proxy) the stack runs. Default: this one.
	Binary string
	// MaxSessions is the worker's session limit. Default 20,000.
	MaxSessions   int
	Websockify    bool
	WebsockifyMax int
	// WorkerEnv and EdgeEnv are NAME=value settings added to the worker's
	// and the edge's environment after the bench's own, so they win: a
	// what-if (a longer lease TTL, a bigger flush) without a private build.
	WorkerEnv, EdgeEnv []string
	Log                *slog.Logger
}

// CheckStackEnv checks settings meant for WorkerEnv or EdgeEnv: each must
// be NAME=value with a TRELLIS_ name or one of the Go runtime's (GOGC,
// GOMEMLIMIT, GOMAXPROCS, GODEBUG), so a typo fails here rather than being
// ignored by the child.
func CheckStackEnv(kvs []string) error {
	for _, kv := range kvs {
		name, _, ok := strings.Cut(kv, "=")
		runtimeVar := name == "GOGC" || name == "GOMEMLIMIT" || name == "GOMAXPROCS" || name == "GODEBUG"
		if !ok || !(strings.HasPrefix(name, "TRELLIS_") || runtimeVar) || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("%q: want TRELLIS_NAME=value (or GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG)", kv)
		}
	}
	return nil
}

// Games of a process stack, besides the bench-mode game.
const (
	// LoginGameMCCP is the full demo game (login, every option, MCCP2).
	LoginGameMCCP = "demo-mccp"
	// LoginGamePlain is the same game with MCCP2 not offered.
	LoginGamePlain = "demo-plain"
)

// ProcStack is the system as an operator runs it: redis-server, three demo
// games (bench mode, login with MCCP2, login without), a worker, an edge
// and the direct proxy, each its own process of the trellis binary, on
// loopback ports. The benchmark's clients are this process. One process
// per part lets 10,000 sessions fit a descriptor limit that one process
// holding all four ends of each session would exceed, and lets memory be
// read per process from outside (RSS from /proc, heap from /metrics) the
// way it is paid in production.
type ProcStack struct {
	opts   ProcOptions
	redis  *redistest.Server
	store  *store.Store
	secret []byte

	// The edge's and the worker's addresses stay the same across
	// StartTrellis calls, so an Env taken once keeps working.
	edgeListen, edgeAdmin, workerAdmin string
	gameAddr                           map[string]string

	mu       sync.Mutex
	children map[string]*child
	ws       *exec.Cmd
	wsTarget *Target
	// proxies are the direct-proxy processes' names, proxyURLs their URLs.
	proxies   []string
	proxyURLs []string
}

// child is one process of the stack; done is closed once it has been
// waited for.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProcStack starts every process and waits until each listens. On
// error whatever was started is stopped again.
func StartProcStack(ctx context.Context, o ProcOptions) (_ *ProcStack, err error) {
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("the trellis binary: %w", err)
		}
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 20_000
	}
	if o.WebsockifyMax <= 0 {
		o.WebsockifyMax = 100
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &ProcStack{opts: o, children: map[string]*child{}, gameAddr: map[string]string{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.redis, err = redistest.Start(redistest.Options{}); err != nil {
		return nil, fmt.Errorf("the benchmark needs a real Redis: %w", err)
	}
	rc := store.Config{URL: s.redis.URL(0), PoolSize: 64, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
		OutputMaxLen: 5000, EventsMaxAge: time.Hour, ControlMaxLen: 1_000_000}
	if s.store, err = store.Open(rc); err != nil {
		return nil, err
	}
	// The edge takes TRELLIS_AUTH_SECRET's bytes as the key.
	s.secret = []byte(randHex(32))

	games := []struct {
		id   string
		args []string
	}{
		{benchGame, []string{"-bench"}},
		// Quiet: a thousand arrivals told to everyone online would be an
		// O(n²) storm still draining when idle memory is read.
		{LoginGameMCCP, []string{"-quiet"}},
		{LoginGamePlain, []string{"-quiet", "-no-mccp2"}},
	}
	for _, g := range games {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := append([]string{"demo-game", "-listen", addr}, g.args...)
		if err := s.start(ctx, "game-"+g.id, args, nil, addr); err != nil {
			return nil, err
		}
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if err := s.store.PutGame(ctx, store.Game{ID: g.id, Name: g.id, Host: host, Port: p}); err != nil {
			return nil, fmt.Errorf("register game %s: %w", g.id, err)
		}
		s.gameAddr[g.id] = addr
	}

	// The direct proxy holds both ends of each session, two descriptors:
	// one process per 8,000 sessions keeps each within the limit.
	for i := range max(1, (o.MaxSessions/2+7999)/8000) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("proxy-%d", i)
		if err := s.start(ctx, name, []string{"bench", "--serve-proxy", addr, "--game-addr", s.gameAddr[benchGame]}, nil, addr); err != nil {
			return nil, err
		}
		s.proxies = append(s.proxies, name)
		s.proxyURLs = append(s.proxyURLs, "ws://"+addr+"/")
	}
	for _, p := range []*string{&s.edgeListen, &s.edgeAdmin, &s.workerAdmin} {
		if *p, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if err := s.StartTrellis(ctx); err != nil {
		return nil, err
	}
	if o.Websockify {
		if cmd, t, err := startWebsockify(s.gameAddr[benchGame]); err != nil {
			o.Log.Warn("websockify baseline not available", "err", err)
		} else {
			s.ws, s.wsTarget = cmd, t
		}
	}
	return s, nil
}

// StartTrellis starts a fresh edge and worker (after StopTrellis): the
// logged-in memory figures start from processes that never held a session,
// so that the RSS they grow by is what the sessions cost, not pages freed
// by an earlier scenario and reused.
func (s *ProcStack) StartTrellis(ctx context.Context) error {
	common := []string{"TRELLIS_REDIS_URL=" + s.redis.URL(0), "TRELLIS_REDIS_POOL_SIZE=64"}
	worker := append(common,
		"TRELLIS_WORKER_NAME=bench-"+randHex(4),
		"TRELLIS_WORKER_ADMIN_LISTEN="+s.workerAdmin,
		"TRELLIS_WORKER_MAX_SESSIONS="+strconv.Itoa(s.opts.MaxSessions),
		"TRELLIS_WORKER_IDLE_GRACE=2s",
		"TRELLIS_WORKER_DRAIN_TIMEOUT=1s",
		"TRELLIS_WORKER_ALLOW_NETWORKS=127.0.0.0/8,::1/128",
		// As in the in-process stack: the flood measures the pipeline,
		// not the per-session output cap.
		"TRELLIS_WORKER_OUTPUT_RATE=-1",
	)
	if v := os.Getenv("TRELLIS_WORKER_PPROF"); v != "" { // to profile the worker: passed through
		worker = append(worker, "TRELLIS_WORKER_PPROF="+v)
	}
	worker = append(worker, s.opts.WorkerEnv...)
	if err := s.start(ctx, "worker", []string{"worker"}, worker, ""); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+s.workerAdmin+"/readyz", 15*time.Second); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	edge := append(common,
		"TRELLIS_AUTH_SECRET="+string(s.secret),
		"TRELLIS_EDGE_LISTEN="+s.edgeListen,
		"TRELLIS_EDGE_ADMIN_LISTEN="+s.edgeAdmin,
		"TRELLIS_EDGE_ID=bench-edge-"+randHex(4),
		"TRELLIS_EDGE_MAX_SESSIONS_PER_USER=0",
		"TRELLIS_EDGE_MAX_CONNECTIONS=0",
		// The cost scenario types as fast as echoes come back.
		"TRELLIS_EDGE_INPUT_RATE=1000",
		"TRELLIS_EDGE_INPUT_BURST=100",
	)
	edge = append(edge, s.opts.EdgeEnv...)
	return s.start(ctx, "edge", []string{"edge"}, edge, s.edgeListen)
}

// StopTrellis stops the edge and the worker and waits for them.
func (s *ProcStack) StopTrellis() error {
	return errors.Join(s.stop("edge"), s.stop("worker"))
}

// Restart replaces the edge and the worker with fresh processes.
func (s *ProcStack) Restart(ctx context.Context) error {
	if err := s.StopTrellis(); err != nil {
		return err
	}
	return s.StartTrellis(ctx)
}

// Env is what Run drives: the edge, the direct proxy in front of the
// bench game, websockify when installed.
func (s *ProcStack) Env() Env {
	return Env{
		Stack: Target{
			Name: "trellis", URL: "ws://" + s.edgeListen + "/ws", Protocol: JSON, Game: benchGame, Resumable: true,
			Token: s.Token,
		},
		Direct:        &Target{Name: "direct", URL: s.proxyURLs[0], URLs: s.proxyURLs, Protocol: JSON, Game: benchGame},
		Websockify:    s.wsTarget,
		WebsockifyMax: s.opts.WebsockifyMax,
		Redis:         s.store.Client(),
		Sessions:      s.sessions,
		Memory:        s.Memory,
		Restart:       s.Restart,
		LoginGames:    []LoginGame{{ID: LoginGameMCCP, MCCP: true}, {ID: LoginGamePlain}},
		Log:           s.opts.Log,
	}
}

// Token mints a player token the edge accepts.
func (s *ProcStack) Token(user string) (string, error) { return auth.Mint(s.secret, user, time.Hour) }

// sessions is the worker's live session count (its /metrics gauge); 1
// when it cannot be read, so that settle keeps waiting (bounded).
func (s *ProcStack) sessions() int {
	m, err := scrape("http://" + s.workerAdmin + "/metrics")
	if err != nil {
		return 1
	}
	return int(m["trellis_worker_sessions"])
}

// ProcMemory is one process's memory at one moment, read from outside:
// RSS from /proc/<pid>/status; heap, stacks and goroutines from the Go
// runtime's figures on /metrics for the edge and the worker (not after a
// forced GC: heap includes garbage not yet collected), used_memory for
// Redis.
type ProcMemory struct {
	Name       string `json:"name"`
	Pid        int    `json:"pid"`
	RSS        int64  `json:"rss"`
	Heap       int64  `json:"heap,omitempty"`  // Go: heap_inuse; Redis: used_memory
	Stack      int64  `json:"stack,omitempty"` // Go: stack_inuse
	Goroutines int64  `json:"goroutines,omitempty"`
}

// Memory reads every process of the stack.
func (s *ProcStack) Memory(ctx context.Context) []ProcMemory {
	var out []ProcMemory
	s.mu.Lock()
	for _, name := range append([]string{"edge", "worker", "game-" + benchGame, "game-" + LoginGameMCCP, "game-" + LoginGamePlain}, s.proxies...) {
		c := s.children[name]
		if c == nil {
			continue
		}
		pm := ProcMemory{Name: name, Pid: c.cmd.Process.Pid}
		pm.RSS, _ = pidStatus(pm.Pid)
		out = append(out, pm)
	}
	s.mu.Unlock()
	for i := range out {
		admin := map[string]string{"edge": s.edgeAdmin, "worker": s.workerAdmin}[out[i].Name]
		if admin == "" {
			continue
		}
		if m, err := scrape("http://" + admin + "/metrics"); err == nil {
			out[i].Heap, out[i].Stack = int64(m["go_memstats_heap_inuse_bytes"]), int64(m["go_memstats_stack_inuse_bytes"])
			out[i].Goroutines = int64(m["go_goroutines"])
		}
	}
	if r, err := readRedis(ctx, s.store.Client()); err == nil {
		pm := ProcMemory{Name: "redis", Heap: r.UsedMemory}
		if len(r.Pids) > 0 {
			pm.Pid = r.Pids[0]
			pm.RSS, _ = pidStatus(pm.Pid)
		}
		out = append(out, pm)
	}
	return out
}

// Close stops every process and waits for each.
func (s *ProcStack) Close() error {
	var errs []error
	for _, name := range append([]string{"edge", "worker", "game-" + benchGame, "game-" + LoginGameMCCP, "game-" + LoginGamePlain}, s.proxies...) {
		errs = append(errs, s.stop(name))
	}
	if s.ws != nil {
		stopGroup(s.ws)
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	return errors.Join(errs...)
}

// start runs the binary with args and extra environment, and waits until
// addr (when not empty) accepts connections. The child gets SIGKILL if this
// process dies first, so an interrupted bench leaves nothing behind.
func (s *ProcStack) start(ctx context.Context, name string, args, env []string, addr string) error {
	cmd := exec.Command(s.opts.Binary, args...)
	// Only what the component needs: no TRELLIS_ variable of the caller's
	// shell leaks into the stack.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TRELLIS_LOG_LEVEL=warn"}, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	s.mu.Lock()
	s.children[name] = c
	s.mu.Unlock()
	if addr == "" {
		return nil
	}
	if err := waitListen(ctx, addr, c.done, 15*time.Second); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// stop ends one child: SIGTERM, then SIGKILL after 10 s, and waits.
func (s *ProcStack) stop(name string) error {
	s.mu.Lock()
	c := s.children[name]
	delete(s.children, name)
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within 10s of SIGTERM; killed", name)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) && ee.Exited() {
		return fmt.Errorf("%s: %w", name, c.err)
	}
	return nil // ended by the signal, as asked
}

// startWebsockify runs websockify on a free port in front of the game. It
// relays raw bytes, so it is a baseline for the echo scenario only.
func startWebsockify(gameAddr string) (*exec.Cmd, *Target, error) {
	path, err := exec.LookPath("websockify")
	if err != nil {
		return nil, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(path, addr, gameAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start websockify: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stopGroup(cmd)
			return nil, nil, fmt.Errorf("websockify on %s not listening after 10s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, &Target{Name: "websockify", URL: "ws://" + addr + "/", Protocol: Raw}, nil
}

// stopGroup ends websockify and the children it forked per connection.
func stopGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitListen waits until addr accepts a connection, the process exits, or
// the time is up.
func waitListen(ctx context.Context, addr string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s: %w", addr, d, err)
		}
	}
}

var adminClient = &http.Client{Timeout: 5 * time.Second}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := adminClient.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", d, err)
		}
		if sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return ctx.Err()
		}
	}
}

// scrape reads the unlabelled samples of a Prometheus text exposition.
func scrape(url string) (map[string]float64, error) {
	resp, err := adminClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseExposition(resp.Body)
}

func parseExposition(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			m[name] = f
		}
	}
	return m, sc.Err()
}

// pidStatus reads VmRSS and VmHWM of a process in bytes.
func pidStatus(pid int) (rss, hwm int64) {
	return statusFile(fmt.Sprintf("/proc/%d/status", pid))
}
