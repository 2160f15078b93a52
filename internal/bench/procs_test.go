package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTrellis builds the trellis binary the process stack runs.
func buildTrellis(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the trellis binary")
	}
	bin := filepath.Join(t.TempDir(), "trellis")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/trellis-mud/trellis/cmd/trellis")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The stack as separate processes: sessions log in to the demo game with
// and without MCCP2 on fresh edge and worker processes, bench-mode
// sessions echo through the edge and the direct proxy, memory is read per
// process, and Close leaves no process behind.
func TestProcStackTiny(t *testing.T) {
	bin := buildTrellis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Settings passed through (--worker-env, --edge-env): the defaults,
	// so that they change nothing but can be seen in the children.
	ps, err := StartProcStack(ctx, ProcOptions{Binary: bin, Log: quiet(),
		WorkerEnv: []string{"TRELLIS_WORKER_FLUSH_DELAY=0s"}, EdgeEnv: []string{"TRELLIS_EDGE_LEASE_CHECK=2s"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, kv := range map[string]string{"worker": "TRELLIS_WORKER_FLUSH_DELAY=0s", "edge": "TRELLIS_EDGE_LEASE_CHECK=2s"} {
		ps.mu.Lock()
		pid := ps.children[name].cmd.Process.Pid
		ps.mu.Unlock()
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Split(string(environ), "\x00"), kv) {
			t.Errorf("the %s's environment lacks %s", name, kv)
		}
	}
	closed := false
	defer func() {
		if !closed {
			ps.Close()
		}
	}()
	res, err := Run(ctx, ps.Env(), Options{
		Only: []string{"login", "echo", "cost"}, Clients: []int{5}, EchoRounds: 2, LoginSessions: 4,
		CostClients: 2, CostLines: 3, CostWindow: time.Second, ScenarioTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.LoggedIn) != 2 {
		t.Fatalf("logged-in results: %+v", res.LoggedIn)
	}
	for _, l := range res.LoggedIn {
		if l.Error != "" || l.Sessions != 4 {
			t.Errorf("login %s: %d sessions, error %q", l.Game, l.Sessions, l.Error)
		}
		for _, name := range []string{"edge", "worker", "redis", "game-" + l.Game} {
			if _, ok := procOf(l.Procs, name); !ok {
				t.Errorf("login %s: no memory figure for %s in %+v", l.Game, name, l.Procs)
			}
		}
	}
	e, ok := res.echoAt("trellis", 5)
	if !ok || e.Lost != 0 || e.Received == 0 {
		t.Errorf("echo through the edge: %+v", e)
	}
	if d, ok := res.echoAt("direct", 5); !ok || d.Lost != 0 {
		t.Errorf("echo through the direct proxy process: %+v", d)
	}
	if res.Idle == nil || len(res.Idle.Procs) == 0 {
		t.Errorf("idle: %+v", res.Idle)
	}
	if res.Cost == nil || res.Cost.Error != "" || res.Cost.PerRoundTrip <= 0 {
		t.Errorf("cost: %+v", res.Cost)
	}

	var pids []int
	for _, m := range ps.Memory(ctx) {
		if m.Name != "redis" {
			pids = append(pids, m.Pid)
		}
	}
	if len(pids) != 5+len(ps.proxies) || len(ps.proxies) == 0 {
		t.Errorf("processes: %v, want edge, worker, three games and %d proxies", pids, len(ps.proxies))
	}
	closed = true
	if err := ps.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, pid := range pids {
		// Close waited for each child, so its pid is gone (not a zombie).
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after Close: %v", pid, err)
		}
	}
}

func TestParseExposition(t *testing.T) {
	m, err := parseExposition(strings.NewReader(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+06
trellis_worker_sessions_ended_total{state="failed"} 3
trellis_worker_sessions 7
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 1234500 || m["trellis_worker_sessions"] != 7 {
		t.Errorf("parsed %v", m)
	}
	if _, ok := m[`trellis_worker_sessions_ended_total{state="failed"}`]; ok {
		t.Error("labelled samples are not wanted")
	}
}

func TestPlayerNamesAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 2000 {
		n := playerName(i)
		if seen[n] || len(n) < 2 || len(n) > 20 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("name %d: %q (seen %v)", i, n, seen[n])
		}
		seen[n] = true
	}
}

// Every row of the table is judged from one run's figures: met,
// missed, or not measured when the run did not produce the figure.
func TestTargetsJudgeOneRun(t *testing.T) {
	echo := func(target string, n int, p50, p99 time.Duration, r50, r99 Ratio) EchoResult {
		return EchoResult{Target: target, Clients: n, Latency: Summary{N: 10, P50: p50, P99: p99}, P50VsDirect: r50, P99VsDirect: r99}
	}
	res := &Results{
		Echo: []EchoResult{
			echo("trellis", 100, time.Millisecond, 3*time.Millisecond, 1.5, 1.9),
			echo("trellis", 1000, time.Millisecond, 9*time.Millisecond, 1.8, 3.0),
			echo("websockify", 100, 2*time.Millisecond, 4*time.Millisecond, noRatio, noRatio),
			echo("trellis", 10_000, time.Millisecond, 9*time.Millisecond, 2, 2),
		},
		Idle:     &IdleResult{Sessions: 1000, Edge: 6 << 10, Worker: 3 << 10, Trellis: 9 << 10},
		Flood:    []FloodResult{{Target: "trellis", MBps: 20, MBpsVsDirect: 0.9}},
		Cost:     &CostResult{Lines: 10, PerRoundTrip: 6.0},
		Reattach: &ReattachResult{Latency: Summary{N: 5, P99: 4 * time.Millisecond}},
		LoggedIn: []LoginIdleResult{{Game: LoginGameMCCP, MCCP: true, Sessions: 1000, Procs: []ProcIdle{
			{Name: "edge", RSS: 7 << 10}, {Name: "worker", RSS: 41 << 10}, {Name: "redis", RSS: 10 << 10},
		}}},
	}
	want := []string{"MET", "MISS", "MET", "MET", "MET", "MISS", "MET", "MET", "MISS", "n/a"}
	vs := res.Verdicts()
	if len(vs) != len(Targets) || len(want) != len(Targets) {
		t.Fatalf("%d verdicts, %d targets, %d expected", len(vs), len(Targets), len(want))
	}
	for i, v := range vs {
		if got := verdictWord(v.Met); got != want[i] {
			t.Errorf("%s: %s (%s), want %s", v.Target, got, v.Measured, want[i])
		}
	}
	if m, met := Targets[0].Judge(&Results{}); met != nil || !strings.Contains(m, "not measured") {
		t.Errorf("empty run: %q %v", m, met)
	}
}
