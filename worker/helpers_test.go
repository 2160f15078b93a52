package worker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// childEnv, when set, makes the test binary run as a bare worker process
// (for the SIGKILL failover test): its value is the Redis URL.
const childEnv = "TRELLIS_WORKER_TEST_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		os.Exit(runChildWorker(url))
	}
	redistest.Main(m)
}

// runChildWorker runs one worker until SIGTERM; it prints "ready <id>" once
// it is serving, so the parent knows its instance id.
func runChildWorker(url string) int {
	rdb, err := store.Connect(store.Config{URL: url, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer rdb.Close()
	st := store.New(rdb, store.WithNamespace(os.Getenv(childNamespaceEnv)))
	ttl, _ := time.ParseDuration(os.Getenv("TRELLIS_TEST_LEASE_TTL"))
	w, err := New(Config{
		Name: "child", LeaseTTL: ttl, ClaimMinIdle: 300 * time.Millisecond,
		FlushDelay: time.Millisecond, DrainTimeout: time.Millisecond,
		AllowNetworks: []string{"127.0.0.0/8"},
	}, st, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Printf("ready %s\n", w.ID())
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func mustParseURL(u string) *redis.Options {
	o, err := redis.ParseURL(u)
	if err != nil {
		panic(err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = time.Second, 2*time.Second, 2*time.Second, 1
	o.Protocol = 2 // as store.Connect: see there
	return o
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is one test's world: a fresh Redis database, a demo game registered
// as "demo", and workers started on demand.
type env struct {
	t      testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	st     *store.Store
	url    string
	ns     string
	game   *demogame.Server
	logs   *lockedBuffer
	prefix string // user-name prefix: pub/sub channels are shared across databases
}

func newEnv(t testing.TB, gameCfg demogame.Config) *env {
	t.Helper()
	tgt := redistest.Isolated(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, rdb: tgt.Client, st: store.New(tgt.Client, store.WithNamespace(tgt.Namespace)),
		url: tgt.URL, ns: tgt.Namespace, logs: &lockedBuffer{},
		prefix: strings.ToLower(uuid.NewString()[:6])}
	if gameCfg.Logger == nil {
		gameCfg.Logger = slog.New(slog.DiscardHandler)
	}
	if gameCfg.NegotiationWait == 0 {
		gameCfg.NegotiationWait = 50 * time.Millisecond
	}
	game, addr, stop, err := demogame.Start(ctx, gameCfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	e.game = game
	e.addGame("demo", addr)
	return e
}

func (e *env) addGame(id, addr string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if err := e.st.PutGame(e.ctx, store.Game{ID: id, Name: "Demo " + id, Host: host, Port: p, MNES: true}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) user(name string) string { return e.prefix + "-" + name }

func testConfig() Config {
	return Config{
		Name:         "w" + uuid.NewString()[:4],
		LeaseTTL:     time.Second,
		ClaimMinIdle: 200 * time.Millisecond,
		FlushDelay:   time.Millisecond,
		DrainTimeout: 50 * time.Millisecond,
		BackoffMin:   10 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		CloseTimeout: 2 * time.Second,
		// Test games listen on loopback, which the dial guard refuses by
		// default.
		AllowNetworks: []string{"127.0.0.0/8", "::1/128"},
	}
}

// fakeGame is a game server written by a test: each connection is handed
// to serve on its own goroutine, which must return when the connection
// fails (the server closes them all at clean-up).
func (e *env) fakeGame(id string, serve func(net.Conn)) string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	e.t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	e.addGame(id, ln.Addr().String())
	return ln.Addr().String()
}

// attachTo is attach for a game other than the demo.
func (e *env) attachTo(user, game string) {
	e.t.Helper()
	_, err := e.st.PublishControl(e.ctx, store.Command{Type: store.CmdAttach, User: user, Game: game,
		Viewer: "v1", Cols: 100, Rows: 30, Correlation: uuid.NewString()})
	if err != nil {
		e.t.Fatal(err)
	}
}

// outputsOf reads the whole output stream of (user, game).
func (e *env) outputsOf(user, game string) []store.Output {
	e.t.Helper()
	out, err := e.st.OutputRange(e.ctx, store.SessionKey{User: user, Game: game}, "-", "+", 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// running is a worker started by a test.
type running struct {
	*Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop drains the worker and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.once.Do(func() { r.stopOnce(t) })
}

func (r *running) stopOnce(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s")
	}
}

func (e *env) startWorker(cfg Config) *running {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(cfg, e.st, log)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Worker: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// attach publishes an attach as an edge would and returns its correlation.
func (e *env) attach(user, viewer, edge string, reason string) string {
	e.t.Helper()
	corr := uuid.NewString()
	_, err := e.st.PublishControl(e.ctx, store.Command{Type: store.CmdAttach, User: user, Game: "demo",
		Viewer: viewer, Edge: edge, Cols: 100, Rows: 30, IP: "203.0.113.7", Reason: reason, Correlation: corr})
	if err != nil {
		e.t.Fatal(err)
	}
	return corr
}

func (e *env) control(c store.Command) {
	e.t.Helper()
	if _, err := e.st.PublishControl(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
}

func key(user string) store.SessionKey { return store.SessionKey{User: user, Game: "demo"} }

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outputs reads the whole output stream of user's session.
func (e *env) outputs(user string) []store.Output {
	e.t.Helper()
	out, err := e.st.OutputRange(e.ctx, key(user), "-", "+", 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func text(outs []store.Output) string {
	var b strings.Builder
	for _, o := range outs {
		if o.Kind == store.OutText {
			b.WriteString(o.Text)
		}
	}
	return b.String()
}

func states(outs []store.Output) []string {
	var s []string
	for _, o := range outs {
		if o.Kind == store.OutStatus {
			s = append(s, o.State)
		}
	}
	return s
}

func hasState(outs []store.Output, state string) bool {
	for _, s := range states(outs) {
		if s == state {
			return true
		}
	}
	return false
}

// waitText waits until the session's transcript contains sub.
func (e *env) waitText(user, sub string) []store.Output {
	e.t.Helper()
	var outs []store.Output
	waitFor(e.t, 10*time.Second, fmt.Sprintf("%q in %s's output", sub, user), func() bool {
		outs = e.outputs(user)
		return strings.Contains(text(outs), sub)
	})
	return outs
}

func (e *env) waitState(user, state string) []store.Output {
	e.t.Helper()
	var outs []store.Output
	waitFor(e.t, 10*time.Second, fmt.Sprintf("status %s of %s", state, user), func() bool {
		outs = e.outputs(user)
		return hasState(outs, state)
	})
	return outs
}

func (e *env) lease(user string) (store.Lease, bool) {
	e.t.Helper()
	l, ok, err := e.st.GetLease(e.ctx, key(user))
	if err != nil {
		e.t.Fatal(err)
	}
	return l, ok
}

// input sends a line as an edge would: to the lease owner, with its fence.
func (e *env) input(user, line string) {
	e.t.Helper()
	l, ok := e.lease(user)
	if !ok {
		e.t.Fatalf("no lease for %s", user)
	}
	e.inputFenced(user, line, l.Owner, l.Fence)
}

func (e *env) inputFenced(user, line, owner string, fence int64) {
	e.t.Helper()
	err := e.st.SendInput(e.ctx, owner, store.Command{Type: store.CmdInput, User: user, Game: "demo", Fence: fence, Text: line})
	if err != nil {
		e.t.Fatal(err)
	}
}

// login plays the demo game's login: name, then password under echo.
func (e *env) login(user, name, password string) {
	e.t.Helper()
	e.waitText(user, "What is your name?")
	e.input(user, name)
	waitFor(e.t, 10*time.Second, "echo on at the password prompt", func() bool {
		outs := e.outputs(user)
		return strings.Contains(text(outs), "Password:") && lastEcho(outs)
	})
	e.input(user, password)
	e.waitText(user, "Welcome")
}

func lastEcho(outs []store.Output) bool {
	echo := false
	for _, o := range outs {
		if o.Kind == store.OutEcho {
			echo = o.Echo
		}
	}
	return echo
}

// events returns the lifecycle events of user's session.
func (e *env) events(user string) []store.Event {
	e.t.Helper()
	evs, err := e.st.ReadEvents(e.ctx, "-", "+", 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if user == "" || ev.Subject == key(user).String() {
			out = append(out, ev)
		}
	}
	return out
}

func countEvents(evs []store.Event, typ string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// readLines starts copying a child's stdout lines into a channel.
func readLines(r *bufio.Scanner) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		for r.Scan() {
			ch <- r.Text()
		}
	}()
	return ch
}

func get(t *testing.T, h http.Handler, path string, code int) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != code {
		t.Fatalf("GET %s = %d, want %d: %s", path, rec.Code, code, rec.Body)
	}
	return rec.Body.String()
}

// childNamespaceEnv passes the test's namespace to a child worker.
const childNamespaceEnv = "TRELLIS_TEST_CHILD_NAMESPACE"

// redisPort is the port of (the first node of) the test's Redis.
func (e *env) redisPort() int {
	first, _, _ := strings.Cut(e.url, ",")
	first = strings.TrimPrefix(strings.TrimPrefix(first, "redis://"), "rediss://")
	hostport, _, _ := strings.Cut(first, "/")
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

// keys lists every key of the test's namespace, on every node.
func (e *env) keys() []string {
	e.t.Helper()
	pattern := e.ns + ":*"
	cc, ok := e.rdb.(*redis.ClusterClient)
	if !ok {
		k, err := e.rdb.Keys(e.ctx, pattern).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		return k
	}
	var (
		mu  sync.Mutex
		all []string
	)
	if err := cc.ForEachMaster(e.ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, k...)
		mu.Unlock()
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return all
}
