package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/bench"
	"github.com/trellis-mud/trellis/store"
)

func runBench(ctx context.Context, args []string) error {
	var lc LogConfig
	fs := newFlags("bench", "bench [--quick] [--procs] [--redis single|cluster:N] [--cluster] [--redis-cpu CORES] [--url ws://host/ws --token-secret S] [-o table|json] [--report FILE]", logSection(&lc))
	quick := fs.Bool("quick", false, "every scenario, small (100 and 1,000 clients); about 75 s")
	url := fs.String("url", "", "drive a running edge at this WebSocket URL (ws://host:port/ws) instead of an in-process stack")
	secret := fs.String("token-secret", "", "with --url: the edge's TRELLIS_AUTH_SECRET, to mint tokens (default: $TRELLIS_AUTH_SECRET)")
	game := fs.String("game", "bench", "with --url: the game id to play; it must be a demo game in -bench mode")
	redisURL := fs.String("redis-url", "", "with --url: the stack's Redis, for the memory and command-count figures")
	gameAddr := fs.String("game-addr", "", "with --url: host:port of that game, to run the direct-proxy baseline against it")
	clients := fs.String("clients", "", "echo client counts, comma-separated (default 100,1000,10000; --quick 100,1000)")
	rounds := fs.Int("rounds", 0, "lines each echo client sends, one per second or per --echo-rate's period (default 15; --quick 6)")
	echoRate := fs.Int("echo-rate", 0, "the most lines per second all echo clients send together: beyond that many clients, each sends a line per clients/rate seconds (default 1000)")
	out := fs.String("o", "table", "output: table or json")
	report := fs.String("report", "", "also write a Markdown report to this file")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process during the stack's largest echo run (or the flood, when echo is not run)")
	memprofile := fs.String("memprofile", "", "write a heap profile of this process once every client of the largest echo count is connected (in-process stack: the edge's and the worker's heap)")
	wsMax := fs.Int("websockify-max", 100, "largest client count to drive websockify with (it forks a process per connection); 0: not at all")
	only := fs.String("only", "", "run only these scenarios, comma-separated: "+strings.Join(bench.Scenarios, ", "))
	timeout := fs.Duration("scenario-timeout", 0, "deadline of each scenario (default 3m; --quick 45s; --cluster 1m)")
	redisMode := fs.String("redis", "single", "the Redis the in-process stack starts: single (one node) or cluster:N (a local Redis Cluster of N primaries, no replicas, loopback only)")
	redisCPU := fs.String("redis-cpu", "", fmt.Sprintf("cap every redis-server the bench starts at this many cores (%g to %g), each in a cgroup of its own (needs root and a cgroup cpu controller), so that the Redis tier is the saturated resource; with --cluster it caps every topology in --cluster-modes that has no cap of its own (a topology can carry one: cluster:3@0.2). 0.05 suits a 2-core machine: one such primary is the bottleneck, and three plus the bench process still fit", bench.MinRedisCPU, float64(bench.MaxRedisCPU)))
	compare := fs.Bool("cluster", false, "instead of the scenarios: compare Redis topologies in one run (--cluster-modes), taking turns: output messages/s of many sessions flooding at once, and echo latency (--clients, --rounds)")
	modes := fs.String("cluster-modes", "single,cluster:1,cluster:3", "with --cluster: the topologies, in the order they take turns")
	cmpRounds := fs.Int("cluster-rounds", 0, "with --cluster: how many turns each topology takes (default 2)")
	floodSessions := fs.Int("cluster-sessions", 0, "with --cluster: sessions flooding at once (default 200)")
	floodLines := fs.Int("cluster-lines", 0, "with --cluster: lines each flooding session asks for (default 5000)")
	floodBytes := fs.Int("cluster-line-bytes", 0, "with --cluster: bytes per flood line (default 100)")
	workers := fs.Int("cluster-workers", 1, "with --cluster: workers in each stack, each with one output flusher (one pipelined round trip in flight, which waits for its slowest primary)")
	unbalanced := fs.Bool("cluster-unbalanced", false, "with --cluster: let the flooding sessions hash over the primaries as their names fall (a few hundred split 10-15% unevenly) instead of giving every primary the same number of sessions, as tens of thousands would")
	flushBytes := fs.Int("cluster-flush-bytes", 0, "with --cluster: the workers' FLUSH_BYTES, the most one output message holds (default: the worker's, 16384)")
	procs := fs.Bool("procs", false, "run the stack as separate processes of this binary (redis-server, edge, worker, demo games, direct proxy; this process holds only the clients): 10,000 sessions within one process's open-file limit, memory per process from outside, and the logged-in scenario")
	loginSessions := fs.Int("login-sessions", 0, "with --procs: sessions logged in to each demo game (MCCP2 on, off) for the logged-in idle memory (default 1000)")
	var workerEnv, edgeEnv []string
	fs.Func("worker-env", "with --procs: a TRELLIS_NAME=value setting (or GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG) for the worker, after the bench's own (repeatable), e.g. TRELLIS_WORKER_LEASE_TTL=5m", func(v string) error {
		workerEnv = append(workerEnv, v)
		return bench.CheckStackEnv([]string{v})
	})
	fs.Func("edge-env", "with --procs: a TRELLIS_NAME=value setting (or GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG) for the edge, after the bench's own (repeatable), e.g. TRELLIS_EDGE_LEASE_CHECK=5m", func(v string) error {
		edgeEnv = append(edgeEnv, v)
		return bench.CheckStackEnv([]string{v})
	})
	serveProxy := fs.String("serve-proxy", "", "internal to --procs: serve only the direct-proxy baseline on this address, in front of --game-addr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serveProxy != "" {
		return serveDirectProxy(ctx, *serveProxy, *gameAddr)
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("%w: -o %q: want table or json", errUsage, *out)
	}
	mode, err := bench.ParseRedisMode(*redisMode)
	if err != nil {
		return fmt.Errorf("%w: --redis %v", errUsage, err)
	}
	cmpModes, err := bench.ParseRedisModes(*modes)
	if err != nil {
		return fmt.Errorf("%w: --cluster-modes %v", errUsage, err)
	}
	capped := mode.CPU > 0
	for _, m := range cmpModes {
		capped = capped || (*compare && m.CPU > 0)
	}
	if *redisCPU != "" {
		cores, err := bench.ParseRedisCPU(*redisCPU)
		if err != nil {
			return fmt.Errorf("%w: --redis-cpu %v", errUsage, err)
		}
		if mode.CPU == 0 {
			mode.CPU = cores
		}
		for i := range cmpModes {
			if cmpModes[i].CPU == 0 {
				cmpModes[i].CPU = cores
			}
		}
		capped = true
	}
	if capped && (*procs || *url != "") {
		return fmt.Errorf("%w: --redis-cpu caps the redis-servers of an in-process stack; it does not combine with --procs or --url", errUsage)
	}
	if capped {
		if err := bench.CheckRedisCPU(); err != nil {
			return fmt.Errorf("--redis-cpu: %w", err)
		}
	}
	if !*procs && len(workerEnv)+len(edgeEnv) > 0 {
		return fmt.Errorf("%w: --worker-env and --edge-env set the processes of --procs; an in-process stack takes no environment", errUsage)
	}
	if *procs && (*url != "" || mode.Cluster() || *compare) {
		return fmt.Errorf("%w: --procs starts its own stack on a single Redis; it does not combine with --url, --redis cluster or --cluster", errUsage)
	}
	if *url != "" && (mode.Cluster() || *compare) {
		return fmt.Errorf("%w: --redis and --cluster start their own Redis for an in-process stack; with --url the stack's Redis is --redis-url", errUsage)
	}
	if *compare && *quick {
		return fmt.Errorf("%w: --cluster and --quick are different runs; size --cluster with --cluster-sessions, --cluster-lines, --clients and --rounds", errUsage)
	}
	if err := loadEnv(logSection(&lc)); err != nil {
		return err
	}
	// Components log warnings only: at 10,000 clients, info lines would
	// be the benchmark.
	if os.Getenv("TRELLIS_LOG_LEVEL") == "" {
		lc.Level = "warn"
	}
	log, err := lc.logger(os.Stderr)
	if err != nil {
		return err
	}

	opts := bench.FullOptions()
	if *quick {
		opts = bench.QuickOptions()
	}
	if *clients != "" {
		opts.Clients = nil
		for _, f := range strings.Split(*clients, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("%w: --clients %q: want positive numbers separated by commas", errUsage, *clients)
			}
			opts.Clients = append(opts.Clients, n)
		}
	}
	if *rounds > 0 {
		opts.EchoRounds = *rounds
	}
	if *echoRate > 0 {
		opts.EchoRate = *echoRate
	}
	if *loginSessions > 0 {
		opts.LoginSessions = *loginSessions
	}
	if *timeout > 0 {
		opts.ScenarioTimeout = *timeout
	}
	if *only != "" {
		for _, name := range strings.Split(*only, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(bench.Scenarios, name) {
				return fmt.Errorf("%w: --only %q: scenarios are %s", errUsage, name, strings.Join(bench.Scenarios, ", "))
			}
			opts.Only = append(opts.Only, name)
		}
	}
	opts.CPUProfile = *cpuprofile
	opts.HeapProfile = *memprofile
	opts.Progress = os.Stderr
	if *compare {
		co := bench.DefaultCompareOptions()
		co.Rounds, co.Sessions, co.Lines, co.LineBytes, co.FlushBytes = *cmpRounds, *floodSessions, *floodLines, *floodBytes, *flushBytes
		co.Unbalanced, co.Workers = *unbalanced, *workers
		if *clients != "" {
			co.EchoClients = opts.Clients
		}
		co.EchoRounds = *rounds
		co.ScenarioTimeout = *timeout
		co.CPUProfile = *cpuprofile
		co.Progress, co.Log = os.Stderr, log
		return runCompare(ctx, args, cmpModes, co, *out, *report, log)
	}

	limit := bench.RaiseFileLimit()
	largest := 0
	for _, n := range opts.Clients {
		largest = max(largest, n)
	}
	// In one process each session holds about four descriptors; with the
	// stack elsewhere this process holds the client end only. The
	// processes of a --procs stack inherit the limit raised here and hold
	// one end each (the direct proxy, holding two, runs as several).
	perSession := uint64(4)
	if *url != "" || *procs {
		perSession = 1
	}
	if need := uint64(largest)*perSession + 512; limit > 0 && limit < need {
		return fmt.Errorf("%d clients need about %d open files; the limit is %d (raise it with ulimit -n, or use --clients)", largest, need, limit)
	}

	var (
		env     bench.Env
		stopEnv func() error
	)
	switch {
	case *procs:
		fmt.Fprintln(os.Stderr, "bench: starting the stack as separate processes")
		ps, err := bench.StartProcStack(ctx, bench.ProcOptions{
			MaxSessions:   largest*2 + 1000,
			Websockify:    *wsMax > 0,
			WebsockifyMax: *wsMax,
			WorkerEnv:     workerEnv,
			EdgeEnv:       edgeEnv,
			Log:           log,
		})
		if err != nil {
			return err
		}
		env, stopEnv = ps.Env(), ps.Close
	case *url == "":
		st, err := bench.StartStack(ctx, bench.StackOptions{
			MaxSessions:   largest*2 + 1000,
			Websockify:    *wsMax > 0,
			WebsockifyMax: *wsMax,
			Redis:         mode,
			Log:           log,
		})
		if err != nil {
			return err
		}
		env, stopEnv = st.Env(), st.Close
	default:
		env, stopEnv, err = externalEnv(ctx, *url, *secret, *game, *redisURL, *gameAddr, log)
		if err != nil {
			return err
		}
	}

	res, runErr := bench.Run(ctx, env, opts)
	res.Command = "trellis bench " + strings.Join(args, " ")
	if err := stopEnv(); err != nil {
		log.Warn("stopping the stack", "err", err)
	}
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bench: interrupted; partial results follow")
	}
	if *out == "json" {
		err = res.WriteJSON(os.Stdout)
	} else {
		err = res.WriteTable(os.Stdout)
	}
	if err != nil {
		return err
	}
	if *report != "" {
		if err := writeReport(*report, res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: report written to %s\n", *report)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// runCompare starts one in-process stack per Redis topology, all at once
// (an idle stack costs little: lease renewals and heartbeats), and lets
// them take turns.
func runCompare(ctx context.Context, args []string, modes []bench.RedisMode, o bench.CompareOptions, out, report string, log *slog.Logger) error {
	largest := o.Sessions
	if largest <= 0 {
		largest = bench.DefaultCompareOptions().Sessions
	}
	for _, n := range o.EchoClients {
		largest = max(largest, n)
	}
	if limit, need := bench.RaiseFileLimit(), uint64(largest)*4+512*uint64(len(modes)); limit > 0 && limit < need {
		return fmt.Errorf("%d clients need about %d open files; the limit is %d (raise it with ulimit -n, or use --clients, --cluster-sessions)", largest, need, limit)
	}
	var stacks []*bench.Stack
	defer func() {
		for _, st := range stacks {
			if err := st.Close(); err != nil {
				log.Warn("stopping a stack", "redis", st.Mode, "err", err)
			}
		}
	}()
	for _, m := range modes {
		fmt.Fprintf(os.Stderr, "bench: starting a stack on %s redis\n", m)
		st, err := bench.StartStack(ctx, bench.StackOptions{MaxSessions: largest*2 + 1000, Redis: m, NoHeapSampling: true, FlushBytes: o.FlushBytes, Workers: o.Workers, Log: log})
		if err != nil {
			return err
		}
		stacks = append(stacks, st)
	}
	res, runErr := bench.RunCompare(ctx, stacks, o)
	if res == nil {
		return runErr
	}
	res.Command = "trellis bench " + strings.Join(args, " ")
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bench: interrupted; partial results follow")
	}
	var err error
	if out == "json" {
		err = res.WriteJSON(os.Stdout)
	} else {
		err = res.WriteTable(os.Stdout)
	}
	if err != nil {
		return err
	}
	if report != "" {
		if err := writeReport(report, res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: report written to %s\n", report)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// serveDirectProxy is the direct-proxy baseline as a process of its own
// (the --procs stack starts it), until ctx ends.
func serveDirectProxy(ctx context.Context, addr, gameAddr string) error {
	if gameAddr == "" {
		return fmt.Errorf("%w: --serve-proxy needs --game-addr", errUsage)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("direct proxy: listen: %w", err)
	}
	err = bench.NewProxy(gameAddr, slog.Default()).Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func writeReport(path string, res *bench.Results) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := res.WriteMarkdown(f); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	return f.Close()
}

// externalEnv targets a running stack. The direct-proxy baseline runs in
// this process when the game's address is known.
func externalEnv(ctx context.Context, url, secret, game, redisURL, gameAddr string, log *slog.Logger) (bench.Env, func() error, error) {
	if secret == "" {
		secret = os.Getenv("TRELLIS_AUTH_SECRET")
	}
	if secret == "" {
		return bench.Env{}, nil, fmt.Errorf("%w: --url needs --token-secret (or TRELLIS_AUTH_SECRET) to mint tokens", errUsage)
	}
	key := []byte(secret)
	if _, err := auth.Mint(key, "bench", time.Minute); err != nil {
		return bench.Env{}, nil, err
	}
	env := bench.Env{
		Stack: bench.Target{
			Name: "trellis", URL: url, Protocol: bench.JSON, Game: game, Resumable: true,
			Token: func(user string) (string, error) { return auth.Mint(key, user, time.Hour) },
		},
		Log: log,
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	if redisURL != "" {
		st, err := store.Open(store.Config{URL: redisURL, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
			OutputMaxLen: 5000, EventsMaxAge: time.Hour, ControlMaxLen: 1000})
		if err != nil {
			return bench.Env{}, nil, err
		}
		if err := st.Ping(ctx); err != nil {
			st.Close()
			return bench.Env{}, nil, err
		}
		env.Redis = st.Client()
		closers = append(closers, st.Close)
	}
	if gameAddr != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return bench.Env{}, nil, fmt.Errorf("direct proxy: listen: %w", err)
		}
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = bench.NewProxy(gameAddr, log).Serve(pctx, ln)
		}()
		closers = append(closers, func() error { stop(); <-done; return nil })
		env.Direct = &bench.Target{Name: "direct", URL: "ws://" + ln.Addr().String() + "/", Protocol: bench.JSON, Game: game}
	}
	return env, closeAll, nil
}
