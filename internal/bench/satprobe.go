package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A saturation flood's figures over its whole span mix two things: the
// rate while every session still has lines to come, and the tail, when
// the sessions of one primary are done and that primary idles while the
// others drain theirs. With a few hundred sessions hashed over three
// primaries the split is uneven (one primary gets 10-15% more than
// another), so over the whole span the least-loaded primary can never be
// at its cap, however saturated it was while it had work. The probe
// tells the two apart: which primary each session's keys live on, when
// each session's flood starts and ends, and every primary's CPU and
// delivered entries sampled every probeInterval.

// probeInterval is how often the probe samples CPU and entries.
const probeInterval = 100 * time.Millisecond

// minSteady is the shortest steady window a figure is taken from: ten
// samples, so that one sample's jitter moves it by a few percent at most.
const minSteady = time.Second

// PrimaryLoad is one redis-server's part in a saturation run, in the
// order of CPUShare.Redis (by pid).
type PrimaryLoad struct {
	Pid      int    `json:"pid"`
	Addr     string `json:"addr,omitempty"`
	Sessions int    `json:"sessions"` // sessions whose keys it holds
	Entries  int64  `json:"entries"`  // entries its sessions' clients got
	// Done is t0 -> the last line of its last session.
	Done time.Duration `json:"done_ns"`
	// CPU is cores over the whole run (schedstat, all threads); Steady
	// over the steady window (-1 without one).
	CPU    float64 `json:"cpu_cores"`
	Steady float64 `json:"steady_cpu_cores"`
	// Throttled is the share of CFS periods in the steady window in which
	// the group used up its quota (capped stacks only; -1 unknown).
	Throttled float64 `json:"steady_throttled"`
}

// SteadyWindow is the part of a saturation run in which every session was
// flooding: from the moment the last session got its first flood line to
// the moment the first session got its last one. No primary has run out
// of work in it, so the rate measures the tier, not the flood's shape.
type SteadyWindow struct {
	Start         time.Duration `json:"start_ns"` // since the flood command
	End           time.Duration `json:"end_ns"`
	Entries       int64         `json:"entries"`
	EntriesPerSec float64       `json:"entries_per_s"`
	Redis         []float64     `json:"redis_cores"` // per primary
	Trellis       float64       `json:"trellis_cores"`
}

// Valid reports whether the window is long enough to take figures from.
func (w *SteadyWindow) Valid() bool { return w != nil && w.End-w.Start >= minSteady }

// probeSample is one tick of the probe.
type probeSample struct {
	at       time.Time
	entries  []int64         // per primary, cumulative
	cpu      []time.Duration // per primary, cumulative (schedstat)
	periods  []int64         // per primary: CFS periods, throttled periods
	throttle []int64
	self     time.Duration
}

// satProbe watches one saturation run.
type satProbe struct {
	pids     []int
	addrs    []string
	cpuStat  []string // each primary's cgroup cpu.stat, "" when none
	owner    []int    // per session: index into pids
	counters []atomic.Int64

	mu      sync.Mutex
	samples []probeSample
}

// primaries are the redis-servers behind rdb in pid order, with their
// addresses and, on a cluster, which owns each slot.
func primaries(ctx context.Context, rdb redis.UniversalClient) (pids []int, addrs []string, slotOwner func(int) int, err error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		var s redisSnapshot
		if err := readNode(ctx, rdb, &s); err != nil {
			return nil, nil, nil, err
		}
		return s.Pids, []string{""}, func(int) int { return 0 }, nil
	}
	byAddr := map[string]int{}
	var mu sync.Mutex
	err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		var s redisSnapshot
		if err := readNode(ctx, node, &s); err != nil {
			return err
		}
		if len(s.Pids) != 1 {
			return fmt.Errorf("%s: no process_id in INFO server", node.Options().Addr)
		}
		mu.Lock()
		byAddr[node.Options().Addr] = s.Pids[0]
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b string) int { return byAddr[a] - byAddr[b] })
	index := map[string]int{}
	for i, a := range addrs {
		pids = append(pids, byAddr[a])
		index[a] = i
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	owner := make([]int, 16384)
	for i := range owner {
		owner[i] = -1
	}
	for _, sh := range shards {
		primary := -1
		for _, nd := range sh.Nodes {
			if nd.Role != "master" {
				continue
			}
			host := nd.Endpoint
			if host == "" || host == "?" {
				host = nd.IP
			}
			if i, ok := index[net.JoinHostPort(host, strconv.FormatInt(nd.Port, 10))]; ok {
				primary = i
			}
		}
		if primary < 0 {
			continue
		}
		for _, r := range sh.Slots {
			for s := max(r.Start, 0); s <= r.End && s < int64(len(owner)); s++ {
				owner[s] = primary
			}
		}
	}
	return pids, addrs, func(s int) int { return owner[s] }, nil
}

// newSatProbe maps every session (its user name) to the primary holding
// its keys; keyOf is any key of a session's hash tag.
func newSatProbe(ctx context.Context, rdb redis.UniversalClient, users []string, keyOf func(user string) string) (*satProbe, error) {
	// users are the sessions in connection order.
	pids, addrs, slotOwner, err := primaries(ctx, rdb)
	if err != nil {
		return nil, err
	}
	p := &satProbe{pids: pids, addrs: addrs, owner: make([]int, len(users)), counters: make([]atomic.Int64, len(pids))}
	if cc, ok := rdb.(*redis.ClusterClient); ok && keyOf != nil {
		cmds := make([]*redis.IntCmd, len(users))
		_, err := cc.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, u := range users {
				cmds[i] = pl.ClusterKeySlot(ctx, keyOf(u))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		for i, c := range cmds {
			o := slotOwner(int(c.Val()))
			if o < 0 {
				return nil, fmt.Errorf("slot %d of session %s has no primary", c.Val(), users[i])
			}
			p.owner[i] = o
		}
	}
	if root, v2, err := findCPUController(); err == nil {
		for _, pid := range pids {
			stat := ""
			if g, err := cgroupOf(pid, v2); err == nil && g != "/" {
				stat = filepath.Join(root, g, "cpu.stat")
			}
			p.cpuStat = append(p.cpuStat, stat)
		}
	} else {
		p.cpuStat = make([]string, len(pids))
	}
	return p, nil
}

// counter is the entries counter of session i's primary.
func (p *satProbe) counter(i int) *atomic.Int64 { return &p.counters[p.owner[i]] }

// run samples every probeInterval until ctx ends, then once more.
func (p *satProbe) run(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	p.sample()
	for {
		select {
		case <-ctx.Done():
			p.sample()
			return
		case <-t.C:
			p.sample()
		}
	}
}

func (p *satProbe) sample() {
	s := probeSample{at: time.Now()}
	s.self, _ = procCPU(0)
	for i, pid := range p.pids {
		s.entries = append(s.entries, p.counters[i].Load())
		s.cpu = append(s.cpu, schedCPU(pid))
		n, k := cfsPeriods(p.cpuStat[i])
		s.periods, s.throttle = append(s.periods, n), append(s.throttle, k)
	}
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// schedCPU is the CPU time of every thread of pid so far, in nanoseconds
// (/proc/<pid>/task/*/schedstat): /proc's stat counts in 10 ms ticks,
// too coarse for a 0.05-core server sampled every 100 ms.
func schedCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		total += time.Duration(n)
	}
	return total
}

// cfsPeriods reads nr_periods and nr_throttled from a cgroup's cpu.stat
// (-1, -1 when there is none).
func cfsPeriods(path string) (periods, throttled int64) {
	if path == "" {
		return -1, -1
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, -1
	}
	periods, throttled = -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "nr_periods":
			periods = n
		case "nr_throttled":
			throttled = n
		}
	}
	return periods, throttled
}

// sessionSpan is when one session's flood began and ended on the client.
type sessionSpan struct{ first, last time.Time }

// result is the per-primary figures and the steady window of a run that
// started at t0.
func (p *satProbe) result(t0 time.Time, spans []sessionSpan) ([]PrimaryLoad, *SteadyWindow) {
	p.mu.Lock()
	samples := slices.Clone(p.samples)
	p.mu.Unlock()
	loads := make([]PrimaryLoad, len(p.pids))
	for i := range loads {
		loads[i] = PrimaryLoad{Pid: p.pids[i], Addr: p.addrs[i], Steady: -1, Throttled: -1}
	}
	for i, sp := range spans {
		l := &loads[p.owner[i]]
		l.Sessions++
		if d := sp.last.Sub(t0); !sp.last.IsZero() && d > l.Done {
			l.Done = d
		}
	}
	if len(samples) < 2 {
		return loads, nil
	}
	a, b := samples[0], samples[len(samples)-1]
	for i := range loads {
		loads[i].Entries = b.entries[i] - a.entries[i]
		loads[i].CPU = coresOver(b.cpu[i]-a.cpu[i], b.at.Sub(a.at))
	}
	w := steadyWindow(t0, spans, samples)
	if w == nil {
		return loads, nil
	}
	for i := range loads {
		loads[i].Steady = w.Redis[i]
	}
	sa, sb := windowSamples(samples, t0.Add(w.Start), t0.Add(w.End))
	for i := range loads {
		if n := sb.periods[i] - sa.periods[i]; sa.periods[i] >= 0 && n > 0 {
			loads[i].Throttled = float64(sb.throttle[i]-sa.throttle[i]) / float64(n)
		}
	}
	return loads, w
}

func coresOver(d time.Duration, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return d.Seconds() / span.Seconds()
}

// steadyWindow is the samples' figures between the last session's first
// line and the first session's last line, taken from the first sample
// inside the window to the last sample inside it; nil when a session
// never got a line or the window is shorter than minSteady.
func steadyWindow(t0 time.Time, spans []sessionSpan, samples []probeSample) *SteadyWindow {
	if len(spans) == 0 {
		return nil
	}
	var start, end time.Time
	for _, sp := range spans {
		if sp.first.IsZero() || sp.last.IsZero() {
			return nil
		}
		if sp.first.After(start) {
			start = sp.first
		}
		if end.IsZero() || sp.last.Before(end) {
			end = sp.last
		}
	}
	sa, sb := windowSamples(samples, start, end)
	if sa.at.IsZero() || sb.at.Sub(sa.at) < minSteady {
		return nil
	}
	span := sb.at.Sub(sa.at)
	w := &SteadyWindow{Start: sa.at.Sub(t0), End: sb.at.Sub(t0), Trellis: coresOver(sb.self-sa.self, span)}
	for i := range sa.entries {
		w.Entries += sb.entries[i] - sa.entries[i]
		w.Redis = append(w.Redis, coresOver(sb.cpu[i]-sa.cpu[i], span))
	}
	w.EntriesPerSec = float64(w.Entries) / span.Seconds()
	return w
}

// windowSamples are the first sample at or after start and the last at
// or before end (zero samples when there are none).
func windowSamples(samples []probeSample, start, end time.Time) (a, b probeSample) {
	for _, s := range samples {
		if s.at.Before(start) || s.at.After(end) {
			continue
		}
		if a.at.IsZero() {
			a = s
		}
		b = s
	}
	return a, b
}

// balancedUsers names n sessions prefix-0, prefix-1, ... skipping names
// whose primary already holds its share, so that every primary of a
// cluster holds n/P sessions (one more for the first n%P). A few hundred
// sessions hashed over three primaries split unevenly (one gets 10-15%
// more than another); tens of thousands, as in production, split within
// a percent or two. The flood is a few hundred sessions only because one
// small machine runs it, so its sessions are chosen to spread as many
// would. On a single node, or without keyOf, the names are the plain ones.
func balancedUsers(ctx context.Context, rdb redis.UniversalClient, keyOf func(string) string, prefix string, n int) ([]string, error) {
	plain := func(i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok || keyOf == nil {
		users := make([]string, n)
		for i := range users {
			users[i] = plain(i)
		}
		return users, nil
	}
	pids, _, slotOwner, err := primaries(ctx, rdb)
	if err != nil {
		return nil, err
	}
	want := make([]int, len(pids))
	for i := range want {
		want[i] = n / len(pids)
		if i < n%len(pids) {
			want[i]++
		}
	}
	users := make([]string, 0, n)
	const chunk = 256
	// Each candidate lands on a given primary with probability 1/P, so
	// 8n candidates fill every share but with negligible odds.
	for next := 0; len(users) < n && next < 8*n+chunk; next += chunk {
		cmds := make([]*redis.IntCmd, chunk)
		_, err := cc.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for j := range cmds {
				cmds[j] = pl.ClusterKeySlot(ctx, keyOf(plain(next+j)))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		for j, c := range cmds {
			o := slotOwner(int(c.Val()))
			if o < 0 || want[o] == 0 || len(users) == n {
				continue
			}
			want[o]--
			users = append(users, plain(next+j))
		}
	}
	if len(users) < n {
		return nil, fmt.Errorf("balancing %d sessions over %d primaries: only %d names found", n, len(pids), len(users))
	}
	return users, nil
}
