package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// RedisMode is the Redis an in-process stack starts: a single node, or a
// local Redis Cluster of some primaries without replicas (replicas would
// only copy every write: they add CPU, not throughput).
type RedisMode struct {
	// Primaries is 0 for a single node (not a cluster), else the number
	// of cluster primaries, each taking an equal share of the slots.
	Primaries int
	// CPU, when above 0, caps every redis-server of the stack at this
	// many cores, each in a cgroup of its own (cgroup.go): a fixed budget
	// per primary, as a primary with cores of its own would have.
	CPU float64
}

// MaxPrimaries bounds cluster:N: every primary is a redis-server on this
// machine.
const MaxPrimaries = 16

// Cluster reports whether the mode is a Redis Cluster.
func (m RedisMode) Cluster() bool { return m.Primaries > 0 }

// String is the mode as ParseRedisMode reads it: "single", "cluster:3",
// and "@0.2" after it when capped.
func (m RedisMode) String() string {
	s := "single"
	if m.Cluster() {
		s = "cluster:" + strconv.Itoa(m.Primaries)
	}
	if m.CPU > 0 {
		s += "@" + strconv.FormatFloat(m.CPU, 'f', -1, 64)
	}
	return s
}

// ParseRedisMode reads "single" or "cluster:N" (N primaries, 1 to
// MaxPrimaries), each optionally followed by "@CORES", the CPU cap per
// redis-server (ParseRedisCPU); "cluster" alone is cluster:3.
func ParseRedisMode(s string) (RedisMode, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	s, capped, hasCap := strings.Cut(s, "@")
	m, err := parseTopology(strings.TrimSpace(s))
	if err != nil || !hasCap {
		return m, err
	}
	if m.CPU, err = ParseRedisCPU(capped); err != nil {
		return RedisMode{}, fmt.Errorf("%s@%s: the CPU cap %w", s, capped, err)
	}
	return m, nil
}

func parseTopology(s string) (RedisMode, error) {
	switch s {
	case "single", "":
		return RedisMode{}, nil
	case "cluster":
		return RedisMode{Primaries: 3}, nil
	}
	n, ok := strings.CutPrefix(s, "cluster:")
	if !ok {
		return RedisMode{}, fmt.Errorf("%q: want single or cluster:N (N primaries), optionally @CORES", s)
	}
	p, err := strconv.Atoi(n)
	if err != nil || p < 1 || p > MaxPrimaries {
		return RedisMode{}, fmt.Errorf("%q: want cluster:N with N from 1 to %d primaries", s, MaxPrimaries)
	}
	return RedisMode{Primaries: p}, nil
}

// clusterURL is TRELLIS_REDIS_URL for a local cluster. store reads one
// host:port as a mistake (a list selects the cluster client), so a
// one-node cluster is given twice: the cluster client discovers the same
// node from either seed.
func clusterURL(c *redistest.Cluster) string {
	addrs := c.Addrs()
	if len(addrs) == 1 {
		addrs = append(addrs, addrs[0])
	}
	return strings.Join(addrs, ",")
}

// SaturationResult is many sessions flooding at once: how many output
// messages (stream entries) per second the whole stack appends and
// delivers, and where the machine's CPU went meanwhile.
type SaturationResult struct {
	Redis     string `json:"redis"` // single, cluster:N
	Round     int    `json:"round"`
	Sessions  int    `json:"sessions"`
	Lines     int    `json:"lines_per_session"`
	LineBytes int    `json:"line_bytes"`
	// Entries is the output frames with a stream id the clients got:
	// every one is an entry the worker appended to a session's stream.
	Entries       int64         `json:"entries"`
	LinesReceived int64         `json:"lines_received"`
	Lost          int64         `json:"lost"`
	Gaps          int           `json:"gaps"`
	Elapsed       time.Duration `json:"elapsed_ns"` // first flood command sent -> last line of the last session
	EntriesPerSec float64       `json:"entries_per_s"`
	LinesPerSec   float64       `json:"lines_per_s"`
	MBps          float64       `json:"mb_per_s"`
	// XAddPerSec and CommandsPerSec are from INFO commandstats, summed
	// over the primaries (commands run by scripts included).
	XAddPerSec     float64  `json:"xadd_per_s"`
	CommandsPerSec float64  `json:"commands_per_s"`
	CPU            CPUShare `json:"cpu"`
	// Primaries is each redis-server's part (satprobe.go), in the order
	// of CPU.Redis; Steady the window in which every session was
	// flooding (nil when too short to measure).
	Primaries []PrimaryLoad `json:"primaries,omitempty"`
	// Balanced says the sessions were named so that every primary held
	// the same number (balancedUsers); otherwise they hashed as they fell.
	Balanced bool          `json:"balanced,omitempty"`
	Steady   *SteadyWindow `json:"steady,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// runSaturation connects sessions clients, has every one ask the game for
// lines numbered lines at once, and waits for the last line of each.
// keyOf, when set, names a key of a user's session, so that each session
// is counted on the primary holding it.
// With balance, the sessions are named so that every primary holds the
// same number (balancedUsers).
func runSaturation(ctx context.Context, t *Target, rdb redis.UniversalClient, keyOf func(user string) string, balance bool, prefix string, sessions, lines, size, rate int, deadline time.Time) SaturationResult {
	res := SaturationResult{Sessions: sessions, Lines: lines, LineBytes: size, Balanced: balance}
	users := make([]string, sessions)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	var err error
	if balance && rdb != nil {
		if users, err = balancedUsers(ctx, rdb, keyOf, prefix, sessions); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	conns, failed, err := connectUsers(ctx, t, users, rate, deadline, nil)
	defer closeAll(conns)
	if failed > 0 {
		res.Error = fmt.Sprintf("%d of %d sessions failed to connect; first: %v", failed, sessions, err)
		return res
	}
	var probe *satProbe
	if rdb != nil {
		if probe, err = newSatProbe(ctx, rdb, users, keyOf); err != nil {
			res.Error = fmt.Sprintf("mapping sessions to primaries: %v", err)
			return res
		}
		for i, c := range conns {
			c.live = probe.counter(i)
		}
	}
	var before redisSnapshot
	if rdb != nil {
		if before, err = readRedis(ctx, rdb); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	cpu0 := sampleCPU(before.Pids)

	type tally struct {
		lines, entries, lost int64
		gaps                 int
		first, last          time.Time
		err                  error
	}
	tallies := make([]tally, len(conns))
	var readers sync.WaitGroup
	start := make(chan struct{})
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			<-start
			tl := &tallies[i]
			e0, g0 := c.entries, c.gaps
			next := 1
			tl.err = c.readUntilLine(deadline, func(l string) bool {
				n, ok := floodNumber(l)
				if !ok {
					return false
				}
				tl.lines++
				if n > next {
					tl.lost += int64(n - next)
				}
				next = max(next, n+1)
				tl.last = time.Now()
				if tl.first.IsZero() {
					tl.first = tl.last
				}
				return n == lines
			})
			tl.lost += int64(lines - (next - 1))
			tl.entries, tl.gaps = c.entries-e0, c.gaps-g0
		}()
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	if probe != nil {
		probing.Go(func() { probe.run(probeCtx) })
	}
	t0 := time.Now()
	cmd := fmt.Sprintf("flood %d %d", lines, size)
	for _, c := range conns {
		if err := c.send(cmd); err != nil && res.Error == "" {
			res.Error = fmt.Sprintf("send: %v", err)
		}
	}
	close(start)
	readers.Wait()
	stopProbe()
	probing.Wait()
	cpu1 := sampleCPU(before.Pids)
	var after redisSnapshot
	if rdb != nil {
		after, err = readRedis(ctx, rdb)
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}
	var last time.Time
	spans := make([]sessionSpan, len(tallies))
	for i, tl := range tallies {
		spans[i] = sessionSpan{first: tl.first, last: tl.last}
		res.LinesReceived += tl.lines
		res.Entries += tl.entries
		res.Lost += tl.lost
		res.Gaps += tl.gaps
		if tl.last.After(last) {
			last = tl.last
		}
		if tl.err != nil && res.Error == "" {
			res.Error = tl.err.Error()
		}
	}
	res.CPU = cpuSince(cpu0, cpu1)
	if probe != nil {
		res.Primaries, res.Steady = probe.result(t0, spans)
	}
	if last.IsZero() {
		return res
	}
	res.Elapsed = last.Sub(t0)
	secs := res.Elapsed.Seconds()
	res.EntriesPerSec = float64(res.Entries) / secs
	res.LinesPerSec = float64(res.LinesReceived) / secs
	res.MBps = float64(res.LinesReceived) * float64(size) / 1e6 / secs
	if rdb != nil {
		// The span of the Redis snapshots, which is a little longer than
		// the flood's.
		span := cpu1.at.Sub(cpu0.at).Seconds()
		calls := callsSince(before, after)
		res.XAddPerSec = float64(calls["xadd"]) / span
		res.CommandsPerSec = float64(sum(calls)) / span
	}
	return res
}

// CompareOptions says how `trellis bench --cluster` drives its stacks.
type CompareOptions struct {
	// Rounds is how many times every stack takes its turn, in order
	// (single, cluster:1, cluster:3, single, ...): alternating spreads the
	// drift of a shared machine over all of them.
	Rounds int
	// Sessions flood at once, Lines lines of LineBytes bytes each.
	Sessions, Lines, LineBytes int
	// Unbalanced lets the flooding sessions hash over the primaries as
	// their names fall instead of giving each primary the same number
	// (balancedUsers).
	Unbalanced bool
	// Workers is the workers each stack runs, recorded in the result
	// (the caller starts the stacks with it).
	Workers int
	// FlushBytes is the stacks' worker FLUSH_BYTES, recorded in the
	// result (the caller starts the stacks with it).
	FlushBytes int
	// AppendWriters goroutines append to AppendBatch sessions each for
	// AppendDuration (the store-only saturation); AppendWriters < 0
	// leaves it out.
	AppendWriters, AppendBatch int
	AppendDuration             time.Duration
	// EchoClients are the echo client counts, EchoRounds lines each.
	EchoClients []int
	EchoRounds  int
	ConnectRate int
	// ScenarioTimeout bounds each step.
	ScenarioTimeout time.Duration
	// CPUProfile, when set, receives a CPU profile of this process taken
	// during the last saturation step of the stack with most primaries.
	CPUProfile string
	Progress   io.Writer
	Log        *slog.Logger
}

// DefaultCompareOptions is `trellis bench --cluster`.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{
		Rounds: 2, Sessions: 200, Lines: 5000, LineBytes: 100,
		AppendWriters: 16, AppendBatch: 64, AppendDuration: 3 * time.Second,
		EchoClients: []int{100, 1000}, EchoRounds: 6, ConnectRate: 500,
		ScenarioTimeout: time.Minute,
	}
}

// CompareResult is the comparison of Redis topologies in one run.
type CompareResult struct {
	Modes      []string           `json:"modes"`
	Rounds     int                `json:"rounds"`
	Saturation []SaturationResult `json:"saturation"`
	// Append is the store's append path alone at saturation.
	Append []AppendSaturationResult `json:"append"`
	// Echo rows are named by mode in Target.
	Echo []CompareEcho `json:"echo"`
	// Throughput is each mode's mean over its rounds.
	Throughput []ModeThroughput `json:"throughput"`
	// Scaling is entries/s of the mode with most primaries over that of
	// cluster:1 (noRatio without both).
	FlushBytes  int    `json:"flush_bytes,omitempty"`
	Workers     int    `json:"workers,omitempty"`
	Scaling     Ratio  `json:"scaling"`
	ScalingFrom string `json:"scaling_from,omitempty"`
	ScalingTo   string `json:"scaling_to,omitempty"`
	// AppendThroughput and AppendScaling are the same for the store-only
	// appends.
	AppendThroughput []ModeThroughput `json:"append_throughput"`
	AppendScaling    Ratio            `json:"append_scaling"`
	// Capped is the same scaling between stacks whose redis-servers ran
	// at a fixed CPU each (RedisMode.CPU); Scaling above leaves them out.
	Capped CappedScaling `json:"capped"`
}

// CappedScaling is output messages/s from 1 primary to the most, every
// redis-server held to the same CPU: what the Redis tier's capacity does
// as primaries are added, on a machine that cannot give each a core.
type CappedScaling struct {
	// CPU is the cap, cores per redis-server (0: no capped pair ran).
	CPU      float64 `json:"cpu_per_redis_server,omitempty"`
	Scaling  Ratio   `json:"scaling"`
	From     string  `json:"from,omitempty"`
	To       string  `json:"to,omitempty"`
	FromRate float64 `json:"from_entries_per_s,omitempty"`
	ToRate   float64 `json:"to_entries_per_s,omitempty"`
	// MinLoad is the least CPU any primary of those stacks used in a
	// saturation run, as a fraction of the cap, and Least says which:
	// below CapSaturated the run did not saturate the Redis tier and the
	// scaling says nothing about it.
	MinLoad float64 `json:"min_load_of_cap"`
	MaxLoad float64 `json:"max_load_of_cap"`
	Least   string  `json:"least_loaded,omitempty"`
	// AppendScaling is the store's appends alone between the same stacks.
	AppendScaling Ratio `json:"append_scaling"`
	// Steady is the same from the steady windows only (SteadyWindow):
	// entries/s and each primary's CPU while every session was still
	// flooding, without the ramp and the tail in which a primary whose
	// last sessions are draining has less to do whatever its capacity.
	// The capped verdict is judged on it when both stacks had a window.
	Steady         Ratio   `json:"steady_scaling"`
	SteadyFromRate float64 `json:"steady_from_entries_per_s,omitempty"`
	SteadyToRate   float64 `json:"steady_to_entries_per_s,omitempty"`
	SteadyMinLoad  float64 `json:"steady_min_load_of_cap"`
	SteadyMaxLoad  float64 `json:"steady_max_load_of_cap"`
	SteadyLeast    string  `json:"steady_least_loaded,omitempty"`
	// SteadyRuns and SteadyMissing count the saturation runs of the two
	// stacks with and without a steady window.
	SteadyRuns    int `json:"steady_runs"`
	SteadyMissing int `json:"steady_missing"`
}

// CapSaturated is the share of its cap a primary must use, in every
// saturation run, for the Redis tier to count as the bottleneck. CFS
// holds a busy process a little under its quota, and the flood ramps up
// and tails off inside the measured span.
const CapSaturated = 0.85

// CompareEcho is one echo run of one mode in one round.
type CompareEcho struct {
	Round int `json:"round"`
	EchoResult
}

// ModeThroughput is one mode's saturation figures averaged over rounds.
type ModeThroughput struct {
	Redis         string   `json:"redis"`
	Runs          int      `json:"runs"`
	EntriesPerSec float64  `json:"entries_per_s"`
	MBps          float64  `json:"mb_per_s"`
	XAddPerSec    float64  `json:"xadd_per_s"`
	CPU           CPUShare `json:"cpu"`
}

// TargetClusterScaling is the design's goal for 1 -> 3 primaries.
const TargetClusterScaling = 2.5

// RunCompare drives every stack in turn, Rounds times: the saturation
// flood, then the echo at each client count. Stacks should be given in
// the order they are reported in (single first, then growing clusters).
func RunCompare(ctx context.Context, stacks []*Stack, o CompareOptions) (*Results, error) {
	d := DefaultCompareOptions()
	if o.Rounds <= 0 {
		o.Rounds = d.Rounds
	}
	setInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt(&o.Sessions, d.Sessions)
	setInt(&o.Lines, d.Lines)
	setInt(&o.LineBytes, d.LineBytes)
	setInt(&o.EchoRounds, d.EchoRounds)
	if o.AppendWriters == 0 {
		o.AppendWriters = d.AppendWriters
	}
	setInt(&o.AppendBatch, d.AppendBatch)
	if o.AppendDuration <= 0 {
		o.AppendDuration = d.AppendDuration
	}
	setInt(&o.ConnectRate, d.ConnectRate)
	o.EchoRounds = max(o.EchoRounds, 2)
	if o.ScenarioTimeout <= 0 {
		o.ScenarioTimeout = d.ScenarioTimeout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if len(stacks) == 0 {
		return nil, errors.New("bench: no stack to compare")
	}
	res := &Results{Started: time.Now(), Machine: machine()}
	cmp := &CompareResult{Rounds: o.Rounds, Scaling: noRatio, AppendScaling: noRatio, FlushBytes: o.FlushBytes, Workers: max(o.Workers, 1),
		Capped: CappedScaling{Scaling: noRatio, AppendScaling: noRatio, Steady: noRatio}}
	res.Compare = cmp
	most := 0
	for i, s := range stacks {
		cmp.Modes = append(cmp.Modes, s.Mode.String())
		if s.Mode.Primaries > stacks[most].Mode.Primaries {
			most = i
		}
	}
	r := runner{opts: Options{Progress: o.Progress}, res: res}

	for round := 1; round <= o.Rounds; round++ {
		for i, s := range stacks {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			env := s.Env()
			env.Stack.Name = s.Mode.String()
			r.env = env
			r.settle(ctx)
			if o.AppendWriters > 0 {
				r.settle(ctx)
				a := runAppendSaturation(ctx, s.Store, r.prefix("p"), o.AppendWriters, o.AppendBatch, o.AppendDuration)
				a.Redis, a.Round = s.Mode.String(), round
				cmp.Append = append(cmp.Append, a)
				r.progress("append %s round %d: %.0f entries/s; cpu trellis %.2f redis %s other %.2f",
					a.Redis, round, a.EntriesPerSec, a.CPU.Trellis, cores(a.CPU.Redis), a.CPU.Other)
			}
			stopProfile := func() {}
			if o.CPUProfile != "" && i == most && round == o.Rounds {
				r.opts.CPUProfile = o.CPUProfile
				stopProfile = r.startProfile()
			}
			keyOf := func(u string) string { return s.Store.OutputChannel(store.SessionKey{User: u, Game: env.Stack.Game}) }
			sat := runSaturation(ctx, &env.Stack, env.Redis, keyOf, !o.Unbalanced, r.prefix("s"), o.Sessions, o.Lines, o.LineBytes, o.ConnectRate,
				time.Now().Add(o.ScenarioTimeout))
			stopProfile()
			sat.Redis, sat.Round = s.Mode.String(), round
			cmp.Saturation = append(cmp.Saturation, sat)
			r.progress("saturation %s round %d: %.0f entries/s, %.1f MB/s, lost %d; cpu trellis %.2f redis %.2f other %.2f",
				sat.Redis, round, sat.EntriesPerSec, sat.MBps, sat.Lost, sat.CPU.Trellis, sat.CPU.RedisTotal, sat.CPU.Other)
			if w := sat.Steady; w.Valid() {
				r.progress("  steady %s-%s: %.0f entries/s, redis %s, trellis %.2f", w.Start.Round(time.Millisecond), w.End.Round(time.Millisecond),
					w.EntriesPerSec, cores(w.Redis), w.Trellis)
			}
			for i, p := range sat.Primaries {
				r.progress("  primary %d (pid %d): %d sessions, %d entries, done at %s, cpu %.3f, steady %s, throttled %s",
					i+1, p.Pid, p.Sessions, p.Entries, p.Done.Round(time.Millisecond), p.CPU, orDash(p.Steady), throttled(p.Throttled))
			}

			for _, n := range o.EchoClients {
				r.settle(ctx)
				e := runEcho(ctx, &env.Stack, r.prefix("e"), echoPlan{
					clients: n, rounds: o.EchoRounds, period: time.Second,
					rate: o.ConnectRate, senders: min(n, 8),
					deadline: time.Now().Add(o.ScenarioTimeout),
				})
				cmp.Echo = append(cmp.Echo, CompareEcho{Round: round, EchoResult: e})
				r.progress("echo %s %d round %d: %s lost %d", e.Target, n, round, e.Latency, e.Lost)
			}
		}
	}
	cmp.summarize()
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// summarize averages each mode's runs and computes the scaling from
// cluster:1 to the cluster with most primaries.
func (c *CompareResult) summarize() {
	c.Throughput, c.AppendThroughput = nil, nil
	for _, m := range c.Modes {
		t := ModeThroughput{Redis: m}
		for _, s := range c.Saturation {
			if s.Redis == m && s.Error == "" && s.Elapsed > 0 {
				t.add(s.EntriesPerSec, s.MBps, s.XAddPerSec, s.CPU)
			}
		}
		c.Throughput = append(c.Throughput, t.mean())
		a := ModeThroughput{Redis: m}
		for _, s := range c.Append {
			if s.Redis == m && s.Error == "" && s.Elapsed > 0 {
				a.add(s.EntriesPerSec, 0, 0, s.CPU)
			}
		}
		if a.Runs > 0 {
			c.AppendThroughput = append(c.AppendThroughput, a.mean())
		}
	}
	c.Scaling, c.ScalingFrom, c.ScalingTo = scaling(c.Throughput, false)
	c.AppendScaling, _, _ = scaling(c.AppendThroughput, false)
	c.summarizeCapped()
}

// summarizeCapped is the scaling between the capped stacks, and how close
// to its cap every primary of them ran.
func (c *CompareResult) summarizeCapped() {
	cs := CappedScaling{Scaling: noRatio, AppendScaling: noRatio, Steady: noRatio}
	cs.Scaling, cs.From, cs.To = scaling(c.Throughput, true)
	var appendFrom string
	cs.AppendScaling, appendFrom, _ = scaling(c.AppendThroughput, true)
	if m, err := ParseRedisMode(appendFrom); err == nil {
		cs.CPU = m.CPU
	}
	if cs.Scaling.Valid() {
		from, _ := ParseRedisMode(cs.From)
		cs.CPU = from.CPU
		cs.MinLoad = math.Inf(1)
		for _, t := range c.Throughput {
			switch t.Redis {
			case cs.From:
				cs.FromRate = t.EntriesPerSec
			case cs.To:
				cs.ToRate = t.EntriesPerSec
			}
		}
		for _, s := range c.Saturation {
			if (s.Redis != cs.From && s.Redis != cs.To) || s.Error != "" || s.Elapsed <= 0 {
				continue
			}
			for i, r := range s.CPU.Redis {
				load := r / cs.CPU
				cs.MaxLoad = max(cs.MaxLoad, load)
				if load < cs.MinLoad {
					cs.MinLoad = load
					cs.Least = fmt.Sprintf("%s round %d, primary %d of %d: %.3f cores", s.Redis, s.Round, i+1, len(s.CPU.Redis), r)
				}
			}
		}
		if math.IsInf(cs.MinLoad, 1) {
			cs.MinLoad = 0
		}
		c.steadyCapped(&cs)
	}
	c.Capped = cs
}

// steadyCapped fills cs's steady figures from the saturation runs of
// cs.From and cs.To that had a steady window.
func (c *CompareResult) steadyCapped(cs *CappedScaling) {
	cs.Steady = noRatio
	var from, to []float64
	cs.SteadyMinLoad = math.Inf(1)
	for _, s := range c.Saturation {
		if (s.Redis != cs.From && s.Redis != cs.To) || s.Error != "" || s.Elapsed <= 0 {
			continue
		}
		if !s.Steady.Valid() {
			cs.SteadyMissing++
			continue
		}
		cs.SteadyRuns++
		if s.Redis == cs.From {
			from = append(from, s.Steady.EntriesPerSec)
		} else {
			to = append(to, s.Steady.EntriesPerSec)
		}
		for i, r := range s.Steady.Redis {
			load := r / cs.CPU
			cs.SteadyMaxLoad = max(cs.SteadyMaxLoad, load)
			if load < cs.SteadyMinLoad {
				cs.SteadyMinLoad = load
				cs.SteadyLeast = fmt.Sprintf("%s round %d, primary %d of %d: %.3f cores", s.Redis, s.Round, i+1, len(s.Steady.Redis), r)
			}
		}
	}
	if math.IsInf(cs.SteadyMinLoad, 1) {
		cs.SteadyMinLoad = 0
	}
	if len(from) == 0 || len(to) == 0 {
		return
	}
	mean := func(v []float64) float64 {
		t := 0.0
		for _, x := range v {
			t += x
		}
		return t / float64(len(v))
	}
	cs.SteadyFromRate, cs.SteadyToRate = mean(from), mean(to)
	cs.Steady = ratio(cs.SteadyToRate, cs.SteadyFromRate)
}

func (t *ModeThroughput) add(entries, mbps, xadd float64, cpu CPUShare) {
	t.Runs++
	t.EntriesPerSec += entries
	t.MBps += mbps
	t.XAddPerSec += xadd
	t.CPU.Trellis += cpu.Trellis
	t.CPU.RedisTotal += cpu.RedisTotal
	t.CPU.Other += cpu.Other
	t.CPU.Machine += cpu.Machine
	if n := len(cpu.Redis) - len(t.CPU.Redis); n > 0 {
		t.CPU.Redis = append(t.CPU.Redis, make([]float64, n)...)
	}
	for i, v := range cpu.Redis {
		t.CPU.Redis[i] += v
	}
}

func (t ModeThroughput) mean() ModeThroughput {
	if t.Runs == 0 {
		return t
	}
	k := float64(t.Runs)
	t.EntriesPerSec /= k
	t.MBps /= k
	t.XAddPerSec /= k
	t.CPU.Trellis /= k
	t.CPU.RedisTotal /= k
	t.CPU.Other /= k
	t.CPU.Machine /= k
	t.CPU.Redis = slices.Clone(t.CPU.Redis)
	for i := range t.CPU.Redis {
		t.CPU.Redis[i] /= k
	}
	return t
}

// scaling is entries/s of the cluster with most primaries over cluster:1's,
// among the uncapped stacks or among the capped ones (the first capped
// cluster:1, and larger clusters at the same cap).
func scaling(ts []ModeThroughput, capped bool) (Ratio, string, string) {
	var from, to *ModeThroughput
	best := 1
	for i := range ts {
		t := &ts[i]
		m, err := ParseRedisMode(t.Redis)
		if err != nil || t.Runs == 0 || (m.CPU > 0) != capped {
			continue
		}
		if m.Primaries == 1 && from == nil {
			from = t
		}
	}
	if from == nil {
		return noRatio, "", ""
	}
	cap0, _ := ParseRedisMode(from.Redis)
	for i := range ts {
		t := &ts[i]
		m, err := ParseRedisMode(t.Redis)
		if err != nil || t.Runs == 0 || m.CPU != cap0.CPU {
			continue
		}
		if m.Primaries > best {
			best, to = m.Primaries, t
		}
	}
	if from == nil || to == nil {
		return noRatio, "", ""
	}
	return ratio(to.EntriesPerSec, from.EntriesPerSec), from.Redis, to.Redis
}

// ParseRedisModes reads a comma-separated list of modes, each at most once.
func ParseRedisModes(s string) ([]RedisMode, error) {
	var out []RedisMode
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		m, err := ParseRedisMode(f)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, m) {
			return nil, fmt.Errorf("%s is listed twice", m)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no topology given")
	}
	return out, nil
}

// AppendSaturationResult is the store's append path alone at saturation:
// writers each owning a batch of sessions append one entry per session
// per pipelined round trip (as the worker's flusher does), as fast as
// Redis answers. No edge, no game, no clients: what is left is Trellis's
// append script and its publish, and the Go side that encodes and
// pipelines them.
type AppendSaturationResult struct {
	Redis          string        `json:"redis"`
	Round          int           `json:"round"`
	Writers        int           `json:"writers"`
	Batch          int           `json:"batch"` // sessions per writer: entries per round trip
	Entries        int64         `json:"entries"`
	Elapsed        time.Duration `json:"elapsed_ns"`
	EntriesPerSec  float64       `json:"entries_per_s"`
	CommandsPerSec float64       `json:"commands_per_s"`
	CPU            CPUShare      `json:"cpu"`
	Error          string        `json:"error,omitempty"`
}

// runAppendSaturation runs writers goroutines for d, each appending to its
// batch of leased sessions in one pipelined call after another.
func runAppendSaturation(ctx context.Context, st *store.Store, prefix string, writers, batch int, d time.Duration) AppendSaturationResult {
	res := AppendSaturationResult{Writers: writers, Batch: batch}
	text := strings.Repeat("x", 78) + "\r\n"
	batches := make([][]store.Append, writers)
	var leases []store.Lease
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, l := range leases {
			_ = st.ReleaseLease(rctx, l)
		}
	}()
	for w := range writers {
		for i := range batch {
			key := store.SessionKey{User: fmt.Sprintf("%s-%d-%d", prefix, w, i), Game: benchGame}
			l, err := st.AcquireLease(ctx, key, "bench-append", "s", time.Hour)
			if err != nil {
				res.Error = err.Error()
				return res
			}
			leases = append(leases, l)
			batches[w] = append(batches[w], store.Append{Key: key, Out: store.Output{Kind: store.OutText, Text: text, Fence: l.Fence}})
		}
	}
	rdb := st.Client()
	before, err := readRedis(ctx, rdb)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	cpu0 := sampleCPU(before.Pids)
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	counts := make([]int64, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			b := batches[w]
			for seq := uint64(1); runCtx.Err() == nil; seq++ {
				for i := range b {
					b[i].Out.Seq = seq
				}
				out, err := st.AppendOutputs(runCtx, b)
				if err != nil {
					if runCtx.Err() == nil {
						errs[w] = err
					}
					return
				}
				for _, r := range out {
					if r.Err == nil && !r.Duplicate {
						counts[w]++
					} else if r.Err != nil && errs[w] == nil && runCtx.Err() == nil {
						errs[w] = r.Err
					}
				}
			}
		})
	}
	wg.Wait()
	cpu1 := sampleCPU(before.Pids)
	after, err := readRedis(ctx, rdb)
	if err != nil {
		res.Error = err.Error()
	}
	for w := range writers {
		res.Entries += counts[w]
		if errs[w] != nil && res.Error == "" {
			res.Error = errs[w].Error()
		}
	}
	res.Elapsed = cpu1.at.Sub(cpu0.at)
	res.CPU = cpuSince(cpu0, cpu1)
	if secs := res.Elapsed.Seconds(); secs > 0 {
		res.EntriesPerSec = float64(res.Entries) / secs
		res.CommandsPerSec = float64(sum(callsSince(before, after))) / secs
	}
	return res
}
