package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

// StackOptions configures an in-process stack.
type StackOptions struct {
	// MaxSessions is the worker's session limit; it must exceed the
	// largest client count. Default 20,000.
	MaxSessions int
	// IdleGrace is how long a session outlives its last viewer. Short,
	// so that one scenario's sessions are gone before the next starts,
	// but longer than the reattach scenario's time away. Default 2s.
	IdleGrace time.Duration
	// Websockify starts /usr/bin/websockify in front of the game as a
	// second baseline when it is installed.
	Websockify bool
	// WebsockifyMax is the largest client count websockify is driven
	// with. Default 100.
	WebsockifyMax int
	// Redis is the Redis the stack starts: a single node (the zero value)
	// or a local cluster of some primaries without replicas.
	// Redis.CPU caps each redis-server (needs root and a cgroup cpu
	// controller; StartStack fails without them).
	Redis RedisMode
	// NoHeapSampling leaves the heap profile's sampling rate alone: the
	// idle-memory attribution needs it fine, the cluster comparison does
	// not measure memory and would pay for it in CPU.
	NoHeapSampling bool
	// Workers is how many workers the stack runs (default 1). Each has one
	// output flusher with one pipelined round trip in flight, which on a
	// cluster waits for its slowest primary; production runs many workers,
	// and a saturation run with one only would measure that one round
	// trip's latency rather than the Redis tier.
	Workers int
	// FlushBytes is the worker's FLUSH_BYTES, the most one output entry
	// holds (0: the worker's default).
	FlushBytes int
	Log        *slog.Logger
}

// Stack is the whole system in this process: a real redis-server (a child
// process), the demo game in bench mode, a worker and an edge, plus the
// baselines in front of the same game. Close stops all of it.
type Stack struct {
	Mode    RedisMode
	Redis   *redistest.Server  // a single node; nil on a cluster
	Cluster *redistest.Cluster // nil on a single node
	Store   *store.Store
	Worker  *worker.Worker
	// Extra are the workers after the first (StackOptions.Workers).
	Extra    []*worker.Worker
	Edge     *edge.Server
	GameAddr string
	env      Env

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	errs   []error
	ws     *exec.Cmd
	cpuCap *cpuCapper // nil when Redis is not capped
}

// memProfileRate is the heap profile's sampling rate during a run.
const memProfileRate = 4096

// benchGame is the id the bench game is registered under.
const benchGame = "bench"

// StartStack starts everything on loopback ports. It refuses to run
// without redis-server: an in-memory imitation would measure the wrong
// thing.
func StartStack(ctx context.Context, o StackOptions) (_ *Stack, err error) {
	if o.MaxSessions <= 0 {
		o.MaxSessions = 20_000
	}
	if o.IdleGrace <= 0 {
		o.IdleGrace = 2 * time.Second
	}
	if o.WebsockifyMax <= 0 {
		o.WebsockifyMax = 100
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	// The idle-memory figures split the heap by component from the heap
	// profile; the default rate (one sample per 512 KiB) is too coarse
	// for per-session figures. It must be set before the stack allocates.
	if !o.NoHeapSampling {
		runtime.MemProfileRate = memProfileRate
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{Mode: o.Redis, cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var rc store.Config
	if o.Redis.Cluster() {
		s.Cluster, err = redistest.StartCluster(redistest.ClusterOptions{Primaries: o.Redis.Primaries, Replicas: -1})
		if err == nil {
			rc.URL = clusterURL(s.Cluster)
		}
	} else {
		s.Redis, err = redistest.Start(redistest.Options{})
		if err == nil {
			rc.URL = s.Redis.URL(0)
		}
	}
	if err != nil {
		if errors.Is(err, redistest.ErrNoRedis) || errors.Is(err, redistest.ErrNoRedisCLI) {
			return nil, fmt.Errorf("the benchmark needs a real Redis: %w (or target a running stack with --url)", err)
		}
		return nil, fmt.Errorf("%s: %w", o.Redis, err)
	}

	// Per node: a cluster client keeps a pool for each primary.
	rc.PoolSize = 64
	rc.DialTimeout, rc.ReadTimeout = 2*time.Second, 5*time.Second
	rc.OutputMaxLen, rc.EventsMaxAge, rc.ControlMaxLen = 5000, time.Hour, 1_000_000
	if s.Store, err = store.Open(rc); err != nil {
		return nil, err
	}
	if o.Redis.CPU > 0 {
		if err := s.capRedis(ctx, o.Redis); err != nil {
			return nil, err
		}
	}

	gameLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench game: listen: %w", err)
	}
	s.GameAddr = gameLn.Addr().String()
	game := demogame.New(demogame.Config{Bench: true, Logger: o.Log.With("component", "demo-game")})
	s.goRun("demo game", func() error { return game.Serve(runCtx, gameLn) })
	host, port, _ := net.SplitHostPort(s.GameAddr)
	p, _ := strconv.Atoi(port)
	if err := s.Store.PutGame(ctx, store.Game{ID: benchGame, Name: "Bench", Host: host, Port: p}); err != nil {
		return nil, fmt.Errorf("register bench game: %w", err)
	}

	wc := worker.Config{
		Name:          "bench",
		MaxSessions:   o.MaxSessions,
		IdleGrace:     o.IdleGrace,
		DrainTimeout:  time.Second,
		AllowNetworks: []string{"127.0.0.0/8", "::1/128"},
		// The flood scenario measures the pipeline's own throughput, not
		// the per-session output rate operators cap it at.
		OutputRate: -1,
		FlushBytes: o.FlushBytes,
	}
	if s.Worker, err = worker.New(wc, s.Store, o.Log.With("component", "worker")); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	s.goRun("worker", func() error { return s.Worker.Run(runCtx) })
	for i := 2; i <= o.Workers; i++ {
		wc := wc
		wc.Name = fmt.Sprintf("bench-%d", i)
		w, err := worker.New(wc, s.Store, o.Log.With("component", "worker", "worker", wc.Name))
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", wc.Name, err)
		}
		s.Extra = append(s.Extra, w)
		s.goRun("worker "+wc.Name, func() error { return w.Run(runCtx) })
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	verifier, err := auth.NewVerifier(secret)
	if err != nil {
		return nil, err
	}
	ec := edge.Config{
		Listen:             "127.0.0.1:0",
		ID:                 "bench-edge",
		MaxSessionsPerUser: 0,
		// The cost scenario types as fast as echoes come back; the
		// rate limit is not what is measured.
		InputRate:  1000,
		InputBurst: 100,
	}
	if s.Edge, err = edge.New(ec, verifier, s.Store, o.Log.With("component", "edge")); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	edgeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("edge: listen: %w", err)
	}
	s.goRun("edge", func() error { return s.Edge.Serve(runCtx, edgeLn) })

	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("direct proxy: listen: %w", err)
	}
	proxy := NewProxy(s.GameAddr, o.Log.With("component", "direct-proxy"))
	s.goRun("direct proxy", func() error { return proxy.Serve(runCtx, proxyLn) })

	s.env = Env{
		Stack: Target{
			Name: "trellis", URL: "ws://" + edgeLn.Addr().String() + "/ws", Protocol: JSON, Game: benchGame,
			Token:     func(user string) (string, error) { return auth.Mint(secret, user, time.Hour) },
			Resumable: true,
		},
		Direct:        &Target{Name: "direct", URL: "ws://" + proxyLn.Addr().String() + "/", Protocol: JSON, Game: benchGame},
		Redis:         s.Store.Client(),
		InProcess:     true,
		Sessions:      s.sessions,
		WebsockifyMax: o.WebsockifyMax,
		Log:           o.Log,
	}
	if o.Websockify {
		if cmd, t, err := startWebsockify(s.GameAddr); err != nil {
			o.Log.Warn("websockify baseline not available", "err", err)
		} else {
			s.ws, s.env.Websockify = cmd, t
		}
	}
	return s, nil
}

// capRedis puts each primary's redis-server in a CPU cgroup of its own.
// The pids come from the servers themselves (INFO server), so every
// process that serves slots is capped, whichever way it was started.
func (s *Stack) capRedis(ctx context.Context, m RedisMode) (err error) {
	if s.cpuCap, err = newCPUCapper(m.CPU); err != nil {
		return err
	}
	snap, err := readRedis(ctx, s.Store.Client())
	if err != nil {
		return fmt.Errorf("%s: finding the redis-server processes to cap: %w", m, err)
	}
	if want := max(m.Primaries, 1); len(snap.Pids) != want {
		return fmt.Errorf("%s: found %d redis-server processes to cap (pids %v), want %d", m, len(snap.Pids), snap.Pids, want)
	}
	for _, pid := range snap.Pids {
		if _, err := s.cpuCap.place(pid); err != nil {
			return fmt.Errorf("%s: redis-server %d: %w", m, pid, err)
		}
	}
	return nil
}

// sessions is the live game sessions of every worker.
func (s *Stack) sessions() int {
	n := s.Worker.Sessions()
	for _, w := range s.Extra {
		n += w.Sessions()
	}
	return n
}

// Env is what Run drives for this stack.
func (s *Stack) Env() Env { return s.env }

// goRun runs one component until the stack is closed, keeping its error.
func (s *Stack) goRun(name string, run func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := run(); err != nil && !errors.Is(err, context.Canceled) {
			s.errMu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.errMu.Unlock()
		}
	}()
}

// Close stops every component, waits for them and returns the errors
// they ended with.
func (s *Stack) Close() error {
	s.cancel()
	s.wg.Wait()
	if s.ws != nil {
		// websockify forks a child per connection: end the whole group.
		stopGroup(s.ws)
	}
	if s.Store != nil {
		s.Store.Close()
	}
	if s.Redis != nil {
		s.Redis.Close()
	}
	if s.Cluster != nil {
		s.Cluster.Close()
	}
	if s.cpuCap != nil {
		// After the servers are gone, so their groups are empty; a server
		// that outlived its Close is moved back first.
		if err := s.cpuCap.Close(); err != nil {
			s.errMu.Lock()
			s.errs = append(s.errs, err)
			s.errMu.Unlock()
		}
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

// RaiseFileLimit lifts the open-file limit as far as allowed: every
// session costs about four descriptors in one process (client and edge
// ends of the WebSocket, worker and game ends of the telnet connection).
// It returns the limit in effect.
func RaiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	want := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if want.Max > l.Max {
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			return want.Cur
		}
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}
