package bench

import (
	"fmt"
	"strings"
	"time"
)

// TargetRow is one row of the performance issue's table: a figure, its
// goal, and how a run's results are judged against it.
type TargetRow struct {
	Figure string
	Goal   string
	// Judge says what the run measured and whether that meets Goal (nil:
	// not measured in this run).
	Judge func(*Results) (measured string, met *bool)
}

// The goals, stated once. Ratios are to baselines measured in the same
// run, the figures that travel between machines.
const (
	GoalVsDirect       = 2.0      // echo p50 and p99, × the direct proxy
	GoalIdleBytes      = 10 << 10 // per idle bench-mode session, edge + worker
	GoalSessions       = 10_000   // held and echoing
	GoalFloodVsDirect  = 1.0      // MB/s, × the direct proxy
	GoalCommands       = 6.0      // Redis commands per echo round trip
	GoalReattachP99    = 5 * time.Millisecond
	GoalLoginEdgeRSS   = 8 << 10        // logged-in idle, MCCP2 on, RSS per session
	GoalLoginWorkerRSS = (8 + 32) << 10 // 8 KiB + the 32 KiB inflate window
	GoalLoginRedisRSS  = 16 << 10
	goalEchoCounts     = "100 / 1,000"
)

// goalClients are the client counts the echo ratios are judged at.
var goalClients = []int{100, 1000}

// Targets is the table of issue 17 ("Performance and capacity"), the one
// statement of what `make bench` checks.
var Targets = []TargetRow{
	{"echo p50 vs direct proxy, " + goalEchoCounts + " sessions", "≤ 2×", func(r *Results) (string, *bool) {
		return r.echoRatios(func(e EchoResult) Ratio { return e.P50VsDirect }, func(e EchoResult) time.Duration { return e.Latency.P50 })
	}},
	{"echo p99 vs direct, " + goalEchoCounts, "≤ 2×", func(r *Results) (string, *bool) {
		return r.echoRatios(func(e EchoResult) Ratio { return e.P99VsDirect }, func(e EchoResult) time.Duration { return e.Latency.P99 })
	}},
	{"vs websockify at 100", "ahead at p50 and p99", func(r *Results) (string, *bool) {
		t, ok1 := r.echoAt("trellis", 100)
		w, ok2 := r.echoAt("websockify", 100)
		if !ok1 || !ok2 {
			return "not measured (websockify not installed, or not run at 100)", nil
		}
		return fmt.Sprintf("p50 %s vs %s; p99 %s vs %s", ms(t.Latency.P50), ms(w.Latency.P50), ms(t.Latency.P99), ms(w.Latency.P99)),
			yes(t.Latency.P50 < w.Latency.P50 && t.Latency.P99 < w.Latency.P99)
	}},
	{"idle memory per session, edge + worker (bench mode)", "≤ 10 KiB", func(r *Results) (string, *bool) {
		i := r.Idle
		if i == nil || i.Sessions == 0 || i.Trellis == 0 {
			return "not measured", nil
		}
		how := "heap profile attribution, one process"
		if len(i.Procs) > 0 {
			how = "heap in use + stacks, from each process's /metrics"
		}
		return fmt.Sprintf("%s (edge %s, worker %s) at %d sessions; %s", kib(i.Trellis), kib(i.Edge), kib(i.Worker), i.Sessions, how),
			yes(i.Trellis <= GoalIdleBytes)
	}},
	{"sessions held and echoing on this machine", "10,000", func(r *Results) (string, *bool) {
		most, at, tried := 0, "", ""
		for _, e := range r.Echo {
			if e.Target != "trellis" {
				continue
			}
			if e.Error == "" && e.Lost == 0 {
				if k := e.Clients - e.ConnectFailed; k > most {
					most, at = k, fmt.Sprintf(" (a line each per %s, %.0f lines/s)", e.Period, e.Rate)
				}
			} else if e.Clients > most {
				tried = fmt.Sprintf("; at %d: %d connected, %d of %d measured lines lost%s", e.Clients, e.Clients-e.ConnectFailed, e.Lost, e.Lost+int64(e.Latency.N), errSuffix(e.Error))
			}
		}
		if most == 0 && tried == "" {
			return "not measured", nil
		}
		return fmt.Sprintf("%d echoing with 0 lost%s%s", most, at, tried), yes(most >= GoalSessions)
	}},
	{"flood, one session, vs direct", "≥ 1.0×, 0 lost", func(r *Results) (string, *bool) {
		f, ok := r.floodOf("trellis")
		if !ok || f.Error != "" || !f.MBpsVsDirect.Valid() {
			return "not measured", nil
		}
		return fmt.Sprintf("%s (%.1f MB/s), %d lost", f.MBpsVsDirect, f.MBps, f.Lost),
			yes(float64(f.MBpsVsDirect) >= GoalFloodVsDirect && f.Lost == 0)
	}},
	{"Redis commands per echo round trip", "≤ 6", func(r *Results) (string, *bool) {
		c := r.Cost
		if c == nil || c.Error != "" || c.Lines == 0 {
			return "not measured", nil
		}
		return fmt.Sprintf("%.2f (%s)", c.PerRoundTrip, cmdList(c.EchoCommands)), yes(c.PerRoundTrip <= GoalCommands+0.05)
	}},
	{"reattach p99 (100 missed lines)", "< 5 ms", func(r *Results) (string, *bool) {
		rr := r.Reattach
		if rr == nil || rr.Latency.N == 0 {
			return "not measured", nil
		}
		return fmt.Sprintf("%s, %d lost", ms(rr.Latency.P99), rr.Lost), yes(rr.Latency.P99 < GoalReattachP99 && rr.Lost == 0)
	}},
	{"logged-in idle session, MCCP2 on, RSS growth per session (edge, worker, demo game separate processes)",
		"edge ≤ 8 KiB, worker ≤ 8 KiB + the 32 KiB inflate window, Redis ≤ 16 KiB", func(r *Results) (string, *bool) {
			return r.loginVerdict(true)
		}},
	// Not in the table: the same with MCCP2 off, beside it, so that
	// what compression costs is read off one run.
	{"logged-in idle session, MCCP2 off (for comparison)", "edge ≤ 8 KiB, worker ≤ 8 KiB, Redis ≤ 16 KiB", func(r *Results) (string, *bool) {
		return r.loginVerdict(false)
	}},
}

func yes(b bool) *bool { return &b }

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

// echoRatios judges a ratio to the direct proxy at every goal count.
func (r *Results) echoRatios(ratio func(EchoResult) Ratio, lat func(EchoResult) time.Duration) (string, *bool) {
	var parts []string
	met := true
	for _, n := range goalClients {
		e, ok := r.echoAt("trellis", n)
		if !ok || !ratio(e).Valid() {
			return "not measured at " + goalEchoCounts + " clients", nil
		}
		parts = append(parts, fmt.Sprintf("%d: %s (%s)", n, ratio(e), ms(lat(e))))
		met = met && float64(ratio(e)) <= GoalVsDirect
	}
	return strings.Join(parts, "; "), &met
}

func (r *Results) loginVerdict(mccp bool) (string, *bool) {
	for _, l := range r.LoggedIn {
		if l.MCCP != mccp {
			continue
		}
		if l.Error != "" || len(l.Procs) == 0 {
			return "error: " + l.Error, nil
		}
		e, _ := procOf(l.Procs, "edge")
		w, _ := procOf(l.Procs, "worker")
		rd, _ := procOf(l.Procs, "redis")
		workerGoal := int64(8 << 10)
		if mccp {
			workerGoal = GoalLoginWorkerRSS
		}
		if l.RedisAfter == nil || l.RedisIdle < 0 {
			return fmt.Sprintf("edge %s, worker %s, Redis %s (used_memory %s), at %d sessions", kib(e.RSS), kib(w.RSS), kib(rd.RSS), kib(rd.Heap), l.Sessions),
				yes(e.RSS <= GoalLoginEdgeRSS && w.RSS <= workerGoal && rd.RSS <= GoalLoginRedisRSS)
		}
		// Redis is judged on what an idle session costs it: used_memory
		// less the client pools' growth (fixed, bounded by POOL_SIZE) and
		// the demo game's arrival lines (O(sessions) per session, game
		// chatter every player in its one room gets), both shown.
		return fmt.Sprintf("edge %s, worker %s, Redis %s idle (RSS %s, used_memory %s, of which client connections %s and other players' arrival lines %s), at %d sessions",
				kib(e.RSS), kib(w.RSS), kib(l.RedisIdle), kib(rd.RSS), kib(rd.Heap), kib(l.RedisClients), kib(l.RedisArrivals), l.Sessions),
			yes(e.RSS <= GoalLoginEdgeRSS && w.RSS <= workerGoal && l.RedisIdle <= GoalLoginRedisRSS)
	}
	return "not measured (needs --procs)", nil
}
