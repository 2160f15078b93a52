package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRedisMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RedisMode
		bad  bool
	}{
		{in: "single", want: RedisMode{}},
		{in: "", want: RedisMode{}},
		{in: "cluster", want: RedisMode{Primaries: 3}},
		{in: "cluster:1", want: RedisMode{Primaries: 1}},
		{in: " Cluster:3 ", want: RedisMode{Primaries: 3}},
		{in: "cluster:16", want: RedisMode{Primaries: 16}},
		{in: "cluster:0", bad: true},
		{in: "cluster:17", bad: true},
		{in: "cluster:x", bad: true},
		{in: "cluster:-1", bad: true},
		{in: "sentinel", bad: true},
		{in: "redis://127.0.0.1:6379", bad: true},
	} {
		got, err := ParseRedisMode(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRedisMode(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRedisMode(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := ParseRedisMode(got.String()); err != nil || again != got {
			t.Errorf("%v does not survive String: %v, %v", got, again, err)
		}
	}
	ms, err := ParseRedisModes("single, cluster:1,cluster:3")
	if err != nil || len(ms) != 3 || ms[0].Cluster() || ms[2].Primaries != 3 {
		t.Errorf("ParseRedisModes = %v, %v", ms, err)
	}
	for _, bad := range []string{"", " , ", "cluster:1,cluster:1", "single,cluster:0"} {
		if ms, err := ParseRedisModes(bad); err == nil {
			t.Errorf("ParseRedisModes(%q) = %v, want an error", bad, ms)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as the kernel allows.
	line := "4242 (redis (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 0 0\n"
	got, err := parseProcStat(line)
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("parseProcStat = %v, %v; want 3.25s (325 ticks)", got, err)
	}
	for _, bad := range []string{"", "4242 redis S 1", "1 (x) S 1 2 3"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q): want an error", bad)
		}
	}
	if d, err := procCPU(0); err != nil || d < 0 {
		t.Errorf("procCPU(self) = %v, %v", d, err)
	}
	if d, err := machineCPU(); err != nil || d <= 0 {
		t.Errorf("machineCPU = %v, %v", d, err)
	}
}

func TestCPUSince(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := cpuSample{at: t0, self: time.Second, redis: []time.Duration{0, time.Second}, machine: 10 * time.Second}
	b := cpuSample{at: t0.Add(2 * time.Second), self: 2 * time.Second, redis: []time.Duration{time.Second, 2 * time.Second}, machine: 14 * time.Second}
	c := cpuSince(a, b)
	want := CPUShare{Trellis: 0.5, Redis: []float64{0.5, 0.5}, RedisTotal: 1, Other: 0.5, Machine: 2}
	if c.Trellis != want.Trellis || c.RedisTotal != want.RedisTotal || c.Other != want.Other || c.Machine != want.Machine || len(c.Redis) != 2 {
		t.Errorf("cpuSince = %+v, want %+v", c, want)
	}
	if z := cpuSince(b, b); z.Trellis != 0 || z.Machine != 0 {
		t.Errorf("empty span: %+v", z)
	}
}

// The comparison's means, scaling and verdict, and their report, from
// figures made up for the test.
func TestCompareSummaryAndReport(t *testing.T) {
	sat := func(mode string, round int, eps float64) SaturationResult {
		return SaturationResult{Redis: mode, Round: round, Sessions: 10, Lines: 100, LineBytes: 100, EntriesPerSec: eps, MBps: eps / 1000,
			Elapsed: time.Second, CPU: CPUShare{Trellis: 1, Redis: []float64{0.25}, RedisTotal: 0.25}}
	}
	c := &CompareResult{
		Modes:  []string{"single", "cluster:1", "cluster:3"},
		Rounds: 2,
		Saturation: []SaturationResult{
			sat("single", 1, 1100), sat("cluster:1", 1, 1000), sat("cluster:3", 1, 2500),
			sat("single", 2, 900), sat("cluster:1", 2, 1000), sat("cluster:3", 2, 3000),
			{Redis: "cluster:3", Round: 3, Error: "boom"}, // failed runs are not averaged
		},
		Append: []AppendSaturationResult{
			{Redis: "cluster:1", Round: 1, EntriesPerSec: 20000, Elapsed: time.Second},
			{Redis: "cluster:3", Round: 1, EntriesPerSec: 30000, Elapsed: time.Second},
		},
		Echo: []CompareEcho{
			{Round: 2, EchoResult: EchoResult{Target: "cluster:3", Clients: 10, Latency: Summary{N: 5, P50: time.Millisecond, P99: 2 * time.Millisecond}}},
			{Round: 1, EchoResult: EchoResult{Target: "single", Clients: 10, Latency: Summary{N: 5, P50: time.Millisecond}}},
		},
	}
	c.summarize()
	if len(c.Throughput) != 3 || c.Throughput[0].EntriesPerSec != 1000 || c.Throughput[2].Runs != 2 || c.Throughput[2].EntriesPerSec != 2750 {
		t.Fatalf("throughput %+v", c.Throughput)
	}
	if math.Abs(float64(c.Scaling)-2.75) > 1e-9 || c.ScalingFrom != "cluster:1" || c.ScalingTo != "cluster:3" {
		t.Errorf("scaling %v %s -> %s, want 2.75x cluster:1 -> cluster:3", c.Scaling, c.ScalingFrom, c.ScalingTo)
	}
	if math.Abs(float64(c.AppendScaling)-1.5) > 1e-9 {
		t.Errorf("append scaling %v, want 1.5x", c.AppendScaling)
	}
	if v := c.Verdict(); v.Met == nil || !*v.Met || !strings.Contains(v.Measured, "2.75x") {
		t.Errorf("verdict %+v, want met at 2.75x", v)
	}
	if e := c.sortedEcho(); e[0].Target != "single" || e[1].Target != "cluster:3" {
		t.Errorf("echo rows not in mode order: %+v", e)
	}

	res := &Results{Compare: c, Started: time.Unix(0, 0)}
	var md, tab strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| output messages/s >= 2.5x from 1 to 3 primaries | 2.75x (cluster:1 -> cluster:3) | MET |",
		"| cluster:3 | 2 | 2750 |", "1 -> most primaries: 1.50x", "error: saturation cluster:3 round 3: boom", "| single | 10 | 1 | 1.000ms |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "### Attach") {
		t.Error("a comparison report should not carry the empty scenario tables")
	}
	for _, want := range []string{"MET", "2.75x", "store appends alone, 1 -> most primaries: 1.50x"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}

	var js strings.Builder
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"scaling": 2.75`, `"append_scaling": 1.5`, `"target": "output messages/s`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("json lacks %s", want)
		}
	}

	// Without cluster:1 there is nothing to scale from.
	c.Modes = []string{"single", "cluster:3"}
	c.summarize()
	if c.Scaling.Valid() || c.Verdict().Met != nil {
		t.Errorf("scaling without cluster:1: %v, verdict %+v", c.Scaling, c.Verdict())
	}
}

// A tiny comparison through real stacks on a 1- and a 2-primary cluster
// (small clusters start fastest), plus the Redis cost scenario on the
// cluster, whose INFO figures must be summed over the primaries.
func TestRunCompareTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-servers and whole stacks")
	}
	ctx := context.Background()
	var stacks []*Stack
	defer func() {
		for _, st := range stacks {
			if err := st.Close(); err != nil {
				t.Errorf("stack %s close: %v", st.Mode, err)
			}
		}
	}()
	for _, m := range []RedisMode{{Primaries: 1}, {Primaries: 2}} {
		st, err := StartStack(ctx, StackOptions{Redis: m, IdleGrace: 500 * time.Millisecond, NoHeapSampling: true, Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		stacks = append(stacks, st)
	}
	snap, err := readRedis(ctx, stacks[1].Env().Redis)
	if err != nil || len(snap.Pids) != 2 || snap.UsedMemory <= 0 {
		t.Fatalf("readRedis on 2 primaries: pids %v, memory %d, err %v; want 2 pids", snap.Pids, snap.UsedMemory, err)
	}

	res, err := RunCompare(ctx, stacks, CompareOptions{
		Rounds: 1, Sessions: 3, Lines: 300, LineBytes: 80,
		AppendWriters: 2, AppendBatch: 4, AppendDuration: 300 * time.Millisecond,
		EchoClients: []int{3}, EchoRounds: 2, ConnectRate: 200,
		ScenarioTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Compare
	var sb strings.Builder
	res.WriteMarkdown(&sb)
	t.Log(sb.String())
	if len(c.Saturation) != 2 || len(c.Append) != 2 || len(c.Echo) != 2 {
		t.Fatalf("%d saturation, %d append, %d echo runs; want 2 each", len(c.Saturation), len(c.Append), len(c.Echo))
	}
	for _, s := range c.Saturation {
		if s.Error != "" || s.Lost != 0 || s.LinesReceived != 3*300 || s.Entries <= 0 || s.XAddPerSec <= 0 || len(s.CPU.Redis) != stacksPrimaries(s.Redis) {
			t.Errorf("saturation %+v", s)
		}
		// Every primary is probed, holds its share of the sessions, and
		// their entries add up to what the clients got.
		if len(s.Primaries) != stacksPrimaries(s.Redis) || !s.Balanced {
			t.Errorf("saturation %s: %d primaries probed (balanced %v), want %d", s.Redis, len(s.Primaries), s.Balanced, stacksPrimaries(s.Redis))
			continue
		}
		var sessions int
		var entries int64
		for _, p := range s.Primaries {
			sessions += p.Sessions
			entries += p.Entries
			if p.Sessions < 3/len(s.Primaries) || p.Sessions > 3/len(s.Primaries)+1 || p.CPU <= 0 {
				t.Errorf("saturation %s: primary %+v, want its share of 3 sessions and some CPU", s.Redis, p)
			}
		}
		if sessions != 3 || entries != s.Entries {
			t.Errorf("saturation %s: primaries hold %d sessions and %d entries, the run %d and %d", s.Redis, sessions, entries, 3, s.Entries)
		}
	}
	for _, a := range c.Append {
		if a.Error != "" || a.Entries <= 0 || a.CommandsPerSec <= 0 {
			t.Errorf("append %+v", a)
		}
	}
	for _, e := range c.Echo {
		if e.Error != "" || e.Latency.N != 3 || e.Lost != 0 {
			t.Errorf("echo %s: %+v", e.Target, e.EchoResult)
		}
	}
	if !c.Scaling.Valid() || !c.AppendScaling.Valid() || c.ScalingTo != "cluster:2" {
		t.Errorf("scaling %v (%s -> %s), append %v", c.Scaling, c.ScalingFrom, c.ScalingTo, c.AppendScaling)
	}

	// INFO figures of a cluster are the sum over its primaries: compare
	// with each node read on its own (scripts keep running in the
	// background, so the two reads may differ by a few calls).
	total, err := readRedis(ctx, stacks[1].Env().Redis)
	if err != nil {
		t.Fatal(err)
	}
	var each int64
	for _, n := range stacks[1].Cluster.Nodes() {
		var one redisSnapshot
		if err := readNode(ctx, n.Client(t), &one); err != nil {
			t.Fatal(err)
		}
		if one.Calls["evalsha"] == 0 {
			t.Errorf("node %s ran no scripts: the appends should have reached both primaries", n)
		}
		each += one.Calls["evalsha"]
	}
	if got := total.Calls["evalsha"]; got < each*9/10 || got > each*11/10 {
		t.Errorf("readRedis counts %d script calls on the cluster, its nodes %d between them", got, each)
	}

	cost, err := Run(ctx, stacks[1].Env(), Options{Only: []string{"cost"}, CostClients: 2, CostLines: 5, CostWindow: time.Second, ScenarioTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// An entry costs one XADD on its slot's primary (and a share of its
	// run's script call); read from one primary only, most floods would
	// show less.
	if cc := cost.Cost; cc == nil || cc.Error != "" || cc.FloodCommands["xadd"] < 0.9 || cc.PerOutputMessage < 2 {
		t.Errorf("cost on the cluster: %+v", cost.Cost)
	}
}

func stacksPrimaries(mode string) int {
	m, _ := ParseRedisMode(mode)
	return m.Primaries
}

func TestParseRedisCPU(t *testing.T) {
	for in, want := range map[string]float64{"0.2": 0.2, " 1 ": 1, "0.05": 0.05, "0.01": 0.01, "64": 64} {
		if got, err := ParseRedisCPU(in); err != nil || got != want {
			t.Errorf("ParseRedisCPU(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0.009", "-1", "65", "x", "NaN", "Inf", "0.2cores"} {
		if got, err := ParseRedisCPU(bad); err == nil {
			t.Errorf("ParseRedisCPU(%q) = %v, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "cores per redis-server") {
			t.Errorf("ParseRedisCPU(%q): %v does not say what the value is", bad, err)
		}
	}
	m, err := ParseRedisMode("cluster:3@0.2")
	if err != nil || m != (RedisMode{Primaries: 3, CPU: 0.2}) || m.String() != "cluster:3@0.2" {
		t.Errorf("ParseRedisMode(cluster:3@0.2) = %+v (%s), %v", m, m, err)
	}
	for _, bad := range []string{"cluster:3@", "cluster:3@0", "single@x", "cluster:0@0.2"} {
		if m, err := ParseRedisMode(bad); err == nil {
			t.Errorf("ParseRedisMode(%q) = %+v, want an error", bad, m)
		}
	}
}

// A capped stack puts each redis-server in a cgroup of its own with the
// quota asked for, and takes the groups away when it closes.
func TestRedisCPUCap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-servers and whole stacks")
	}
	if err := CheckRedisCPU(); err != nil {
		t.Skipf("no cgroup CPU caps here: %v", err)
	}
	ctx := context.Background()
	st, err := StartStack(ctx, StackOptions{Redis: RedisMode{Primaries: 2, CPU: 0.3}, IdleGrace: 500 * time.Millisecond, NoHeapSampling: true, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	snap, err := readRedis(ctx, st.Env().Redis)
	if err != nil || len(snap.Pids) != 2 {
		t.Fatalf("redis pids %v, %v; want 2", snap.Pids, err)
	}
	dirs := st.cpuCap.dirs()
	if len(dirs) != 2 || dirs[0] == dirs[1] {
		t.Fatalf("cgroups %v: want one for each of the 2 redis-servers", dirs)
	}
	for _, pid := range snap.Pids {
		rel, err := cgroupOf(pid, st.cpuCap.v2)
		if err != nil {
			t.Fatal(err)
		}
		dir := st.cpuCap.dirOf(rel)
		if !slices.Contains(dirs, dir) {
			t.Errorf("redis-server %d is in %s, not in one of the stack's groups %v", pid, dir, dirs)
			continue
		}
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if strings.Fields(string(procs))[0] != strconv.Itoa(pid) || len(strings.Fields(string(procs))) != 1 {
			t.Errorf("group %s holds %q, want redis-server %d alone", dir, procs, pid)
		}
		if st.cpuCap.v2 {
			if b, _ := os.ReadFile(filepath.Join(dir, "cpu.max")); strings.TrimSpace(string(b)) != "6000 20000" {
				t.Errorf("%s cpu.max %q, want 6000 20000 (0.3 cores)", dir, b)
			}
		} else {
			q, _ := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
			p, _ := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
			sh, _ := os.ReadFile(filepath.Join(dir, "cpu.shares"))
			if strings.TrimSpace(string(q)) != "6000" || strings.TrimSpace(string(p)) != "20000" || strings.TrimSpace(string(sh)) != "10240" {
				t.Errorf("%s quota %q period %q shares %q, want 6000 of 20000 µs (0.3 cores) at 10240 shares", dir, q, p, sh)
			}
		}
	}
	// The stack works through its capped Redis.
	res, err := Run(ctx, st.Env(), Options{Only: []string{"cost"}, CostClients: 2, CostLines: 3, CostWindow: time.Second, ScenarioTimeout: 20 * time.Second})
	if err != nil || res.Cost == nil || res.Cost.Error != "" {
		t.Errorf("cost scenario on the capped stack: %v, %+v", err, res.Cost)
	}
	closed = true
	if err := st.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s still there after Close: %v", d, err)
		}
	}
}

// The capped verdict is judged only when every capped primary ran at its
// cap; otherwise it says the run did not saturate Redis.
func TestCappedVerdict(t *testing.T) {
	// Each run's steady window has the whole run's figures unless a test
	// changes them.
	sat := func(mode string, eps float64, redis ...float64) SaturationResult {
		return SaturationResult{Redis: mode, Round: 1, EntriesPerSec: eps, Elapsed: time.Second, CPU: CPUShare{Redis: redis},
			Steady: &SteadyWindow{Start: 0, End: 2 * time.Second, EntriesPerSec: eps, Redis: slices.Clone(redis)}}
	}
	c := &CompareResult{
		Modes: []string{"cluster:1", "cluster:3", "cluster:1@0.1", "cluster:3@0.1"},
		Saturation: []SaturationResult{
			sat("cluster:1", 1000, 0.3), sat("cluster:3", 1050, 0.1, 0.1, 0.1),
			sat("cluster:1@0.1", 300, 0.099), sat("cluster:3@0.1", 870, 0.097, 0.095, 0.098),
		},
	}
	c.summarize()
	if v := c.Verdict(); v.Met == nil || *v.Met || !strings.Contains(v.Measured, "1.05x (cluster:1 -> cluster:3)") {
		t.Errorf("uncapped verdict %+v, want MISS at 1.05x between the uncapped stacks", v)
	}
	v := c.CappedVerdict()
	if v.Met == nil || !*v.Met || !strings.Contains(v.Target, "fixed CPU per primary (0.1 cores each)") ||
		!strings.Contains(v.Measured, "2.90x in the steady windows (300 -> 870 entries/s, 2 of 2 runs had one), primaries at 95-99% of their cap there") {
		t.Errorf("capped verdict %+v, want MET at 2.90x", v)
	}
	c.Saturation[3].Steady.Redis[1] = 0.05
	c.summarize()
	if v := c.CappedVerdict(); v.Met != nil || !strings.Contains(v.Measured, "NOT SATURATED: cluster:3@0.1 round 1, primary 2 of 3: 0.050 cores in its steady window") {
		t.Errorf("capped verdict with a primary at half its cap: %+v, want n/a saying so", v)
	}
	// A primary under its cap over the whole run (the ramp, its sessions'
	// tail) but at it while every session flooded: judged, on the window.
	c.Saturation[3].Steady.Redis[1] = 0.096
	c.Saturation[3].Steady.EntriesPerSec = 900
	c.Saturation[3].CPU.Redis[1] = 0.07
	c.summarize()
	if v := c.CappedVerdict(); v.Met == nil || !*v.Met || !strings.Contains(v.Measured, "3.00x in the steady windows") || !strings.Contains(v.Measured, "whole runs 2.90x") ||
		!strings.Contains(v.Measured, "primaries at 70-99% of their cap") {
		t.Errorf("capped verdict saturated in the window only: %+v, want MET at 3.00x with the whole runs shown", v)
	}
	// Without a steady window for one stack: judged on the whole runs
	// when even they kept every primary at its cap, else n/a.
	c.Saturation[2].Steady = nil
	c.summarize()
	if v := c.CappedVerdict(); v.Met != nil || !strings.Contains(v.Measured, "no steady window") || !strings.Contains(v.Measured, "NOT SATURATED: cluster:3@0.1 round 1, primary 2 of 3: 0.070 cores over its whole run") {
		t.Errorf("capped verdict without a steady window for cluster:1: %+v, want n/a", v)
	}
	c.Saturation[3].CPU.Redis[1] = 0.09
	c.summarize()
	if v := c.CappedVerdict(); v.Met == nil || !*v.Met || !strings.Contains(v.Measured, "whole runs 2.90x") {
		t.Errorf("capped verdict on saturated whole runs without a steady window: %+v, want MET at 2.90x", v)
	}
	c.Saturation[2].Steady = &SteadyWindow{End: 2 * time.Second, EntriesPerSec: 300, Redis: []float64{0.099}}
	c.Saturation[3].Steady.Redis[1] = 0.05
	c.summarize()
	res := &Results{Compare: c, Started: time.Unix(0, 0)}
	var md strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Redis tier at a fixed CPU per primary (0.1 cores each)", "| n/a |", "NAME@CORES", "| output messages/s >= 2.5x from 1 to 3 primaries | 1.05x"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	// Without capped stacks the row is there, not measured.
	c.Modes, c.Saturation = c.Modes[:2], c.Saturation[:2]
	c.summarize()
	if v := c.CappedVerdict(); v.Met != nil || !strings.Contains(v.Measured, "--redis-cpu") {
		t.Errorf("capped verdict without capped stacks: %+v", v)
	}
}
