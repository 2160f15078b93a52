package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env is what a run drives: the stack and the baselines.
type Env struct {
	Stack Target
	// Direct is the minimal WebSocket-to-TCP proxy in front of the same
	// game; nil when there is no game address to proxy to.
	Direct *Target
	// Websockify relays raw bytes; nil when it is not installed. It is
	// only used for the echo scenario.
	Websockify *Target
	// WebsockifyMax is the largest client count websockify is driven
	// with: it forks a process per connection.
	WebsockifyMax int
	// Redis is the stack's Redis, for memory and command counts; nil
	// leaves those figures out.
	Redis redis.UniversalClient
	// InProcess says the edge and the worker run in this process, so its
	// memory is theirs (plus the clients', which is attributed apart).
	InProcess bool
	// Sessions returns the number of live game sessions; the run waits for
	// zero between scenarios so each starts from the same state. Nil: no
	// waiting.
	Sessions func() int
	// Memory reads each process of a stack run as separate processes
	// (ProcStack); nil for the in-process stack, whose memory is
	// attributed by heap profile instead.
	Memory func(context.Context) []ProcMemory
	// Restart replaces the edge and the worker with fresh processes, so
	// that the logged-in scenario measures processes that never held a
	// session. Nil: the scenario is not run.
	Restart func(context.Context) error
	// LoginGames are the games (MCCP2 on, off) the logged-in scenario
	// plays, with whether each compresses.
	LoginGames []LoginGame
	// Log receives what goes wrong in the targets; nil is slog.Default().
	Log *slog.Logger
}

// Options says how long and how hard to drive.
type Options struct {
	Clients    []int // echo client counts
	EchoRounds int   // lines per client in the echo scenario (the first is warm-up)
	// EchoRate is the most lines per second all echo clients type
	// together: each client types one line per second, or one per
	// clients/EchoRate seconds when there are more clients than that. It
	// keeps the offered load of the largest run at what a player typing
	// a line every few seconds brings, instead of a line per second per
	// session; the capacity in lines per second is the flood's and the
	// smaller runs' figure.
	EchoRate        int
	ConnectRate     int // client connects per second
	AttachSamples   int
	ReattachSamples int
	FloodLines      int
	FloodBytes      int
	CostClients     int
	CostLines       int // per client
	// CostWindow is the unit of the cost scenario's measured windows:
	// the background, the flood and the echoes each last a whole number
	// of them, so that the stack's periodic Redis work (lease renewals,
	// the edge's lease checks and heartbeats, viewer checks) runs as
	// often in each as in the background. Zero: costWindow(), the period
	// over which that work repeats with the components' defaults (10 s).
	CostWindow time.Duration
	// LoginSessions is how many sessions log in to each demo game in the
	// logged-in idle scenario (process stacks only).
	LoginSessions int
	// ScenarioTimeout bounds each scenario.
	ScenarioTimeout time.Duration
	// CPUProfile, when set, receives a CPU profile of this process taken
	// while the stack runs the echo scenario at the largest client count.
	CPUProfile string
	// HeapProfile, when set, receives this process's heap profile at the
	// idle-memory measurement (every client of the largest echo count
	// connected, none typing yet).
	HeapProfile string
	// Progress receives one line per step; nil is silent.
	Progress io.Writer
	// Only, when not empty, names the scenarios to run (attach, echo,
	// reattach, flood, cost).
	Only []string
}

// echoPeriod is the time between two lines of one of n echo clients that
// together type at most rate lines per second: one second, or longer.
func echoPeriod(n, rate int) time.Duration {
	if rate <= 0 || n <= rate {
		return time.Second
	}
	return time.Duration(n) * time.Second / time.Duration(rate)
}

// Scenarios are the names Options.Only accepts, in the order they run.
var Scenarios = []string{"login", "attach", "echo", "reattach", "flood", "cost"}

// QuickOptions is `trellis bench --quick`: every scenario, small.
func QuickOptions() Options {
	return Options{
		Clients: []int{100, 1000}, EchoRounds: 6, EchoRate: 1000, ConnectRate: 500,
		AttachSamples: 50, ReattachSamples: 30,
		FloodLines: 200_000, FloodBytes: 100,
		CostClients: 10, CostLines: 50, LoginSessions: 1000,
		ScenarioTimeout: 45 * time.Second,
	}
}

// FullOptions is `trellis bench`: the figures of the design's targets.
func FullOptions() Options {
	return Options{
		Clients: []int{100, 1000, 10_000}, EchoRounds: 15, EchoRate: 1000, ConnectRate: 500,
		AttachSamples: 200, ReattachSamples: 100,
		FloodLines: 1_000_000, FloodBytes: 100,
		CostClients: 20, CostLines: 100, LoginSessions: 1000,
		ScenarioTimeout: 3 * time.Minute,
	}
}

// Results is one run: what was measured, with ratios to the baselines.
type Results struct {
	Started  time.Time         `json:"started"`
	Elapsed  time.Duration     `json:"elapsed_ns"`
	Command  string            `json:"command,omitempty"`
	Machine  Machine           `json:"machine"`
	Attach   []AttachResult    `json:"attach"`
	Echo     []EchoResult      `json:"echo"`
	Reattach *ReattachResult   `json:"reattach,omitempty"`
	Flood    []FloodResult     `json:"flood"`
	Idle     *IdleResult       `json:"idle,omitempty"`
	LoggedIn []LoginIdleResult `json:"logged_in,omitempty"`
	Cost     *CostResult       `json:"cost,omitempty"`
	// Compare is `trellis bench --cluster`: the same stack on different
	// Redis topologies. A run has either it or the scenarios above.
	Compare *CompareResult `json:"compare,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	CPUModel  string `json:"cpu_model,omitempty"`
}

// IdleResult is the memory one connected, idle session costs.
type IdleResult struct {
	Sessions int `json:"sessions"`
	// Per session, bytes: heap and goroutine stacks attributed to the edge
	// and the worker (see memory.go), their sum, Redis used_memory, and
	// the whole process's RSS (which includes the benchmark's clients and
	// the demo game: an upper bound).
	Edge       int64   `json:"edge_per_session"`
	Worker     int64   `json:"worker_per_session"`
	Trellis    int64   `json:"trellis_per_session"`
	Shared     int64   `json:"shared_per_session"`
	Client     int64   `json:"client_per_session"`
	Game       int64   `json:"game_per_session"`
	Redis      int64   `json:"redis_per_session"`
	ProcessRSS int64   `json:"process_rss_per_session"`
	HeapStack  int64   `json:"process_heap_stack_per_session"`
	Goroutines float64 `json:"goroutines_per_session"`
	// Procs is each process's growth per session when the stack runs as
	// separate processes (then Edge and Worker are their heap + stacks).
	Procs []ProcIdle `json:"procs,omitempty"`
}

// ProcIdle is what one process grew by per session, in bytes.
type ProcIdle struct {
	Name  string `json:"name"`
	RSS   int64  `json:"rss_per_session"`
	Heap  int64  `json:"heap_per_session"` // Go heap in use; Redis used_memory
	Stack int64  `json:"stack_per_session,omitempty"`
}

// procGrowth is after - before per session, process by process.
func procGrowth(before, after []ProcMemory, n int) []ProcIdle {
	var out []ProcIdle
	for _, a := range after {
		for _, b := range before {
			if a.Name == b.Name && a.Pid == b.Pid {
				out = append(out, ProcIdle{Name: a.Name, RSS: (a.RSS - b.RSS) / int64(n),
					Heap: (a.Heap - b.Heap) / int64(n), Stack: (a.Stack - b.Stack) / int64(n)})
			}
		}
	}
	return out
}

func procOf(ps []ProcIdle, name string) (ProcIdle, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return ProcIdle{}, false
}

func (o *Options) defaults() {
	q := QuickOptions()
	if len(o.Clients) == 0 {
		o.Clients = q.Clients
	}
	setInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setInt(&o.EchoRounds, q.EchoRounds)
	setInt(&o.EchoRate, q.EchoRate)
	setInt(&o.ConnectRate, q.ConnectRate)
	setInt(&o.AttachSamples, q.AttachSamples)
	setInt(&o.ReattachSamples, q.ReattachSamples)
	setInt(&o.FloodLines, q.FloodLines)
	setInt(&o.FloodBytes, q.FloodBytes)
	setInt(&o.CostClients, q.CostClients)
	setInt(&o.CostLines, q.CostLines)
	setInt(&o.LoginSessions, q.LoginSessions)
	if o.CostWindow <= 0 {
		o.CostWindow = costWindow()
	}
	if o.ScenarioTimeout <= 0 {
		o.ScenarioTimeout = q.ScenarioTimeout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	o.EchoRounds = max(o.EchoRounds, 2)
}

// Run drives env through every scenario. A scenario that fails is
// recorded with its error and the run goes on; Run itself fails only when
// ctx is cancelled.
func Run(ctx context.Context, env Env, opts Options) (*Results, error) {
	opts.defaults()
	if env.Log == nil {
		env.Log = slog.Default()
	}
	res := &Results{Started: time.Now(), Machine: machine()}
	r := runner{env: env, opts: opts, res: res}
	steps := []struct {
		name string
		run  func(context.Context)
	}{
		{"login", r.login},
		{"attach", r.attach},
		{"echo", r.echo},
		{"reattach", r.reattach},
		{"flood", r.flood},
		{"cost", r.cost},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, s.name) {
			continue
		}
		r.progress("%s ...", s.name)
		s.run(ctx)
	}
	res.Elapsed = time.Since(res.Started)
	return res, ctx.Err()
}

type runner struct {
	env  Env
	opts Options
	res  *Results
	seq  int
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", args...)
}

func (r *runner) note(format string, args ...any) {
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// prefix returns a user-name prefix no earlier scenario used, so every
// scenario starts fresh sessions.
func (r *runner) prefix(what string) string {
	r.seq++
	return fmt.Sprintf("b%d%s%d", time.Now().Unix()%100000, what, r.seq)
}

func (r *runner) deadline() time.Time { return time.Now().Add(r.opts.ScenarioTimeout) }

// settle waits until the sessions of earlier scenarios have ended (their
// clients are gone; the worker's idle grace ends them), bounded in time.
func (r *runner) settle(ctx context.Context) {
	if r.env.Sessions == nil {
		return
	}
	// Thousands of sessions end slowly on a loaded machine; a scenario
	// that starts among them measures their teardown (the cost
	// scenario's PEXPIREs), so wait up to two minutes.
	limit := time.Now().Add(2 * time.Minute)
	for r.env.Sessions() > 0 && time.Now().Before(limit) {
		if sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return
		}
	}
	if n := r.env.Sessions(); n > 0 {
		r.note("%d sessions of an earlier scenario were still running when the next one started", n)
	}
}

func (r *runner) attach(ctx context.Context) {
	r.settle(ctx)
	st := runAttach(ctx, &r.env.Stack, r.prefix("a"), r.opts.AttachSamples, r.deadline())
	if r.env.Direct != nil {
		d := runAttach(ctx, r.env.Direct, r.prefix("a"), r.opts.AttachSamples, r.deadline())
		st.P50VsDirect = ratio(float64(st.FirstByte.P50), float64(d.FirstByte.P50))
		st.P99VsDirect = ratio(float64(st.FirstByte.P99), float64(d.FirstByte.P99))
		r.res.Attach = append(r.res.Attach, st, d)
	} else {
		r.res.Attach = append(r.res.Attach, st)
	}
	r.progress("attach: %s first byte %s", st.Target, st.FirstByte)
}

func (r *runner) echo(ctx context.Context) {
	largest := slices.Max(r.opts.Clients)
	for _, n := range r.opts.Clients {
		plan := func() echoPlan {
			period := echoPeriod(n, r.opts.EchoRate)
			// The deadline leaves room for the connects and every round
			// when the rounds alone outlast the scenario timeout.
			need := time.Duration(n/max(r.opts.ConnectRate, 1))*time.Second + time.Duration(r.opts.EchoRounds)*period + 30*time.Second
			return echoPlan{
				clients: n, rounds: r.opts.EchoRounds, period: period,
				rate: r.opts.ConnectRate, senders: min(n, 8),
				deadline: time.Now().Add(max(r.opts.ScenarioTimeout, need)),
			}
		}
		var direct *EchoResult
		if r.env.Direct != nil {
			d := runEcho(ctx, r.env.Direct, r.prefix("e"), plan())
			direct = &d
		}

		r.settle(ctx)
		p := plan()
		var stopProfile func()
		if n == largest {
			p.afterConnect = r.idleProbe(ctx, n)
			if r.opts.CPUProfile != "" {
				prev := p.afterConnect
				p.afterConnect = func(k int) {
					prev(k)
					stopProfile = r.startProfile()
				}
			}
		}
		st := runEcho(ctx, &r.env.Stack, r.prefix("e"), p)
		if stopProfile != nil {
			stopProfile()
		}
		if direct != nil {
			st.P50VsDirect = ratio(float64(st.Latency.P50), float64(direct.Latency.P50))
			st.P99VsDirect = ratio(float64(st.Latency.P99), float64(direct.Latency.P99))
		}
		r.res.Echo = append(r.res.Echo, st)
		r.progress("echo %d: %s %s lost %d", n, st.Target, st.Latency, st.Lost)
		if direct != nil {
			r.res.Echo = append(r.res.Echo, *direct)
			r.progress("echo %d: %s %s lost %d", n, direct.Target, direct.Latency, direct.Lost)
		}
		if ws := r.env.Websockify; ws != nil {
			if n <= r.env.WebsockifyMax {
				w := runEcho(ctx, ws, r.prefix("w"), plan())
				r.res.Echo = append(r.res.Echo, w)
				r.progress("echo %d: %s %s lost %d", n, w.Target, w.Latency, w.Lost)
			} else {
				r.note("websockify was not run at %d clients: it forks a process per connection (limit %d, --websockify-max)", n, r.env.WebsockifyMax)
			}
		}
	}
}

// idleProbe measures memory before the clients connect and returns the
// hook that measures it again once they are all connected.
func (r *runner) idleProbe(ctx context.Context, n int) func(int) {
	if !r.env.InProcess && r.env.Redis == nil && r.env.Memory == nil {
		return func(int) {}
	}
	var before Memory
	if r.env.InProcess {
		before = readAttributed()
	}
	var procsBefore []ProcMemory
	if r.env.Memory != nil {
		procsBefore = r.env.Memory(ctx)
	}
	var rb redisSnapshot
	if r.env.Redis != nil {
		rb, _ = readRedis(ctx, r.env.Redis)
	}
	return func(connected int) {
		if connected == 0 {
			return
		}
		// Let the last attaches finish their writes (status entries,
		// session records) before measuring.
		_ = sleepUntil(ctx, time.Now().Add(500*time.Millisecond))
		idle := &IdleResult{Sessions: connected}
		if r.opts.HeapProfile != "" {
			r.writeHeapProfile()
		}
		if r.env.Memory != nil {
			idle.Procs = procGrowth(procsBefore, r.env.Memory(ctx), connected)
			e, _ := procOf(idle.Procs, "edge")
			w, _ := procOf(idle.Procs, "worker")
			idle.Edge, idle.Worker = e.Heap+e.Stack, w.Heap+w.Stack
			idle.Trellis = idle.Edge + idle.Worker
		}
		if r.env.InProcess {
			after := readAttributed()
			per := func(c string) int64 { return (after.Components[c] - before.Components[c]) / int64(connected) }
			idle.Edge, idle.Worker = per(CompEdge), per(CompWorker)
			idle.Trellis = idle.Edge + idle.Worker
			idle.Shared, idle.Client, idle.Game = per(CompShared), per(CompClient), per(CompGame)
			idle.ProcessRSS = (after.RSS - before.RSS) / int64(connected)
			idle.HeapStack = (after.HeapAlloc + after.StackInuse - before.HeapAlloc - before.StackInuse) / int64(connected)
			idle.Goroutines = float64(after.Goroutines-before.Goroutines) / float64(connected)
		}
		if r.env.Redis != nil {
			if ra, err := readRedis(ctx, r.env.Redis); err == nil {
				idle.Redis = (ra.UsedMemory - rb.UsedMemory) / int64(connected)
			}
		}
		r.res.Idle = idle
	}
}

func (r *runner) writeHeapProfile() {
	f, err := os.Create(r.opts.HeapProfile)
	if err != nil {
		r.note("heap profile: %v", err)
		return
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		r.note("heap profile: %v", err)
	}
	f.Close()
}

func (r *runner) startProfile() func() {
	f, err := os.Create(r.opts.CPUProfile)
	if err != nil {
		r.note("cpu profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		r.note("cpu profile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func (r *runner) reattach(ctx context.Context) {
	if !r.env.Stack.Resumable {
		r.note("reattach: the target does not keep sessions; skipped")
		return
	}
	r.settle(ctx)
	rr := runReattach(ctx, &r.env.Stack, r.prefix("r"), r.opts.ReattachSamples, 100, r.deadline())
	r.res.Reattach = &rr
	r.progress("reattach: %s lost %d", rr.Latency, rr.Lost)
}

// floodProgress says how a flood went, with what ended it early if
// anything did: lines counted lost because the client's connection ended
// are not the same finding as lines missing from the middle.
func (r *runner) floodProgress(st FloodResult) {
	if st.Error != "" {
		r.progress("flood: %s %.1f MB/s lost %d reordered %d gaps %d; ended early: %s", st.Target, st.MBps, st.Lost, st.Reordered, st.Gaps, st.Error)
		return
	}
	r.progress("flood: %s %.1f MB/s lost %d", st.Target, st.MBps, st.Lost)
}

func (r *runner) flood(ctx context.Context) {
	r.settle(ctx)
	stopProfile := func() {}
	if r.opts.CPUProfile != "" && !r.runsEcho() {
		// With echo selected the profile covers echo; else the flood.
		stopProfile = r.startProfile()
	}
	st := runFlood(ctx, &r.env.Stack, r.prefix("f"), r.opts.FloodLines, r.opts.FloodBytes, r.deadline())
	stopProfile()
	r.floodProgress(st)
	if r.env.Direct != nil {
		d := runFlood(ctx, r.env.Direct, r.prefix("f"), r.opts.FloodLines, r.opts.FloodBytes, r.deadline())
		st.MBpsVsDirect = ratio(st.MBps, d.MBps)
		r.res.Flood = append(r.res.Flood, st, d)
		r.floodProgress(d)
		return
	}
	r.res.Flood = append(r.res.Flood, st)
}

func (r *runner) cost(ctx context.Context) {
	if r.env.Redis == nil {
		r.note("cost: no Redis to read INFO from (--redis-url); skipped")
		return
	}
	r.settle(ctx)
	// Three windows of at least one unit each, the longest of them
	// waiting out the type-ahead hold of the last line's record.
	deadline := time.Now().Add(max(r.opts.ScenarioTimeout, 4*r.opts.CostWindow+30*time.Second))
	c := runCost(ctx, &r.env.Stack, r.env.Redis, r.prefix("c"), r.opts.CostClients, r.opts.CostLines, r.opts.CostWindow, deadline)
	r.res.Cost = &c
	r.progress("cost: %.2f commands per input line, %.2f per output message", c.PerInputLine, c.PerOutputMessage)
}

func machine() Machine {
	m := Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// runsEcho reports whether the echo scenario is selected.
func (r *runner) runsEcho() bool {
	return len(r.opts.Only) == 0 || slices.Contains(r.opts.Only, "echo")
}
