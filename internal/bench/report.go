package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Target figures from "Numbers to design for" in DESIGN.md.
const (
	TargetSessions    = 10_000
	TargetIdleBytes   = 20 << 10 // per idle session, edge + worker
	TargetEchoClients = 1000
	TargetEchoP50     = time.Millisecond
	TargetEchoP99     = 5 * time.Millisecond
	TargetVsDirect    = 2.0
	TargetFloodMBps   = 30.0
	TargetReattach    = 20 * time.Millisecond
)

// Verdict is one design target and whether this run met it.
type Verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: not measured in this run
}

// Verdicts compares the results with the design's targets.
func (r *Results) Verdicts() []Verdict {
	yes := func(b bool) *bool { return &b }
	var out []Verdict
	add := func(target, measured string, met *bool) {
		out = append(out, Verdict{Target: target, Measured: measured, Met: met})
	}

	most := 0
	for _, e := range r.Echo {
		if e.Target == "trellis" && e.Error == "" {
			most = max(most, e.Clients-e.ConnectFailed)
		}
	}
	if most > 0 {
		add("10,000 concurrent sessions on one machine", fmt.Sprintf("%d sessions held and echoing", most), yes(most >= TargetSessions))
	} else {
		add("10,000 concurrent sessions on one machine", "not measured", nil)
	}
	if r.Idle != nil && r.Idle.Sessions > 0 && r.Idle.Trellis != 0 {
		add("< 20 KiB per idle session (edge + worker)",
			fmt.Sprintf("%s (edge %s + worker %s), at %d sessions", kib(r.Idle.Trellis), kib(r.Idle.Edge), kib(r.Idle.Worker), r.Idle.Sessions),
			yes(r.Idle.Trellis < TargetIdleBytes))
	} else {
		add("< 20 KiB per idle session (edge + worker)", "not measured (stack not in this process)", nil)
	}
	if e, ok := r.echoAt("trellis", TargetEchoClients); ok {
		add("echo p50 < 1 ms at 1,000 sessions", ms(e.Latency.P50), yes(e.Latency.P50 < TargetEchoP50))
		add("echo p99 < 5 ms at 1,000 sessions", ms(e.Latency.P99), yes(e.Latency.P99 < TargetEchoP99))
		if e.P50VsDirect.Valid() {
			add("echo no worse than 2x the direct proxy (p50 and p99)",
				fmt.Sprintf("p50 %s, p99 %s", e.P50VsDirect, e.P99VsDirect),
				yes(float64(e.P50VsDirect) <= TargetVsDirect && float64(e.P99VsDirect) <= TargetVsDirect))
		}
	} else {
		add("echo at 1,000 sessions", "not measured", nil)
	}
	if f, ok := r.floodOf("trellis"); ok && f.Error == "" {
		add("flood >= 30 MB/s, nothing lost", fmt.Sprintf("%.1f MB/s, %d lost", f.MBps, f.Lost), yes(f.MBps >= TargetFloodMBps && f.Lost == 0))
	} else {
		add("flood >= 30 MB/s, nothing lost", "not measured", nil)
	}
	if rr := r.Reattach; rr != nil && rr.Latency.N > 0 {
		add("reload: missed output back within 20 ms (p99)",
			fmt.Sprintf("p50 %s, p99 %s, %d lost", ms(rr.Latency.P50), ms(rr.Latency.P99), rr.Lost),
			yes(rr.Latency.P99 <= TargetReattach && rr.Lost == 0))
	} else {
		add("reload: missed output back within 20 ms", "not measured", nil)
	}
	add("worker killed: sessions back within lease TTL + 2 s", "not measured by bench (see the failover drills)", nil)
	return out
}

func (r *Results) echoAt(target string, n int) (EchoResult, bool) {
	for _, e := range r.Echo {
		if e.Target == target && e.Clients == n && e.Error == "" && e.Latency.N > 0 {
			return e, true
		}
	}
	return EchoResult{}, false
}

func (r *Results) floodOf(target string) (FloodResult, bool) {
	for _, f := range r.Flood {
		if f.Target == target {
			return f, true
		}
	}
	return FloodResult{}, false
}

// WriteJSON writes the results and verdicts as one JSON document.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	verdicts := r.Verdicts()
	if r.Compare != nil {
		verdicts = []Verdict{r.Compare.Verdict()}
	}
	return enc.Encode(struct {
		*Results
		Verdicts []Verdict `json:"verdicts"`
	}{r, verdicts})
}

// WriteTable prints the results for a terminal.
func (r *Results) WriteTable(w io.Writer) error {
	if r.Compare != nil {
		return r.writeCompareTable(w)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	p("\nATTACH (open -> first game byte)\ttarget\tready p50\tfirst byte p50\tp99\tvs direct p50\tp99\tfailed\t\n")
	for _, a := range r.Attach {
		p("\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", a.Target, ms(a.Ready.P50), ms(a.FirstByte.P50), ms(a.FirstByte.P99), a.P50VsDirect, a.P99VsDirect, a.Failed)
	}
	p("\nECHO (one line/s per client)\ttarget\tclients\tp50\tp90\tp99\tp99.9\tvs direct p50\tp99\tsent\tlost\tconnect\t\n")
	for _, e := range r.Echo {
		p("\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", e.Target, e.Clients, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.P999),
			e.P50VsDirect, e.P99VsDirect, e.Sent, e.Lost, e.ConnectTime.Round(time.Millisecond))
	}
	if rr := r.Reattach; rr != nil {
		p("\nREATTACH (resume -> last missed line)\ttarget\tmissed\tp50\tp99\tmax\tlost\tdup\tfailed\t\n")
		p("\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t\n", rr.Target, rr.Missed, ms(rr.Latency.P50), ms(rr.Latency.P99), ms(rr.Latency.Max), rr.Lost, rr.Repeated, rr.Failed)
	}
	p("\nFLOOD (one session)\ttarget\tlines\tMB/s\tvs direct\tlost\tpeak RSS\tpeak heap\t\n")
	for _, f := range r.Flood {
		p("\t%s\t%d x %dB\t%.1f\t%s\t%d\t%s\t%s\t\n", f.Target, f.Lines, f.LineBytes, f.MBps, f.MBpsVsDirect, f.Lost, mib(f.PeakRSS), mib(f.PeakHeap))
	}
	if i := r.Idle; i != nil {
		p("\nIDLE (per session)\tsessions\tedge\tworker\tedge+worker\tredis\tshared\tclients\tgame\tprocess RSS\t\n")
		p("\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", i.Sessions, kib(i.Edge), kib(i.Worker), kib(i.Trellis), kib(i.Redis), kib(i.Shared), kib(i.Client), kib(i.Game), kib(i.ProcessRSS))
	}
	if c := r.Cost; c != nil {
		p("\nREDIS COST (commands)\tper input line\tper output message\tper round trip\tbackground/s\t\n")
		p("\t%.2f\t%.2f\t%.2f\t%.1f\t\n", c.PerInputLine, c.PerOutputMessage, c.PerRoundTrip, c.BackgroundRate)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, v := range r.Verdicts() {
		fmt.Fprintf(w, "  %-5s %s: %s\n", verdictWord(v.Met), v.Target, v.Measured)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, e := range r.errors() {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	return nil
}

func (r *Results) errors() []string {
	var out []string
	for _, a := range r.Attach {
		if a.Error != "" {
			out = append(out, fmt.Sprintf("attach %s (%d failed): %s", a.Target, a.Failed, a.Error))
		}
	}
	for _, e := range r.Echo {
		if e.Error != "" {
			out = append(out, fmt.Sprintf("echo %s at %d: %s", e.Target, e.Clients, e.Error))
		}
	}
	if rr := r.Reattach; rr != nil && rr.Error != "" {
		out = append(out, fmt.Sprintf("reattach (%d failed): %s", rr.Failed, rr.Error))
	}
	for _, f := range r.Flood {
		if f.Error != "" {
			out = append(out, fmt.Sprintf("flood %s: %s", f.Target, f.Error))
		}
	}
	if c := r.Cost; c != nil && c.Error != "" {
		out = append(out, "cost: "+c.Error)
	}
	return out
}

func verdictWord(met *bool) string {
	switch {
	case met == nil:
		return "n/a"
	case *met:
		return "MET"
	}
	return "MISS"
}

// WriteMarkdown writes the report: the figures, the ratios to the
// baselines, and the verdict on each design target.
func (r *Results) WriteMarkdown(w io.Writer) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Run of %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	if r.Command != "" {
		p("Command: `%s`\n\n", r.Command)
	}
	p("Machine: %d CPUs (%s), %s/%s, %s. Elapsed %s.\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GOOS, r.Machine.GOARCH, r.Machine.GoVersion, r.Elapsed.Round(time.Second))
	if r.Compare != nil {
		r.writeCompareMarkdown(w)
		return nil
	}

	p("### Targets\n\n| target | measured | verdict |\n|---|---|---|\n")
	for _, v := range r.Verdicts() {
		p("| %s | %s | %s |\n", v.Target, v.Measured, verdictWord(v.Met))
	}

	p("\n### Attach: WebSocket open -> first game byte\n\n| target | ready p50 | first byte p50 | p90 | p99 | vs direct (p50 / p99) | samples | failed |\n|---|---|---|---|---|---|---|---|\n")
	for _, a := range r.Attach {
		p("| %s | %s | %s | %s | %s | %s / %s | %d | %d |\n", a.Target, ms(a.Ready.P50), ms(a.FirstByte.P50), ms(a.FirstByte.P90), ms(a.FirstByte.P99), a.P50VsDirect, a.P99VsDirect, a.FirstByte.N, a.Failed)
	}

	p("\n### Echo: one line per second per client, round trip\n\n| target | clients | p50 | p90 | p99 | p99.9 | max | vs direct (p50 / p99) | samples | lost | lines/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	echo := slices.Clone(r.Echo)
	slices.SortStableFunc(echo, func(a, b EchoResult) int { return a.Clients - b.Clients })
	for _, e := range echo {
		p("| %s | %d | %s | %s | %s | %s | %s | %s / %s | %d | %d | %.0f |\n", e.Target, e.Clients, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.P999), ms(e.Latency.Max),
			e.P50VsDirect, e.P99VsDirect, e.Latency.N, e.Lost, e.Rate)
	}
	if rr := r.Reattach; rr != nil {
		p("\n### Reattach: reconnect with resume -> last missed line\n\n%d samples, %d lines missed each.\n\n| p50 | p90 | p99 | max | lost | duplicated | failed |\n|---|---|---|---|---|---|---|\n", rr.Latency.N, rr.Missed)
		p("| %s | %s | %s | %s | %d | %d | %d |\n", ms(rr.Latency.P50), ms(rr.Latency.P90), ms(rr.Latency.P99), ms(rr.Latency.Max), rr.Lost, rr.Repeated, rr.Failed)
	}
	p("\n### Flood: one session\n\n| target | lines | MB/s | vs direct | lost | reordered | peak RSS | peak heap |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Flood {
		p("| %s | %d x %d B | %.1f | %s | %d | %d | %s | %s |\n", f.Target, f.Lines, f.LineBytes, f.MBps, f.MBpsVsDirect, f.Lost, f.Reordered, mib(f.PeakRSS), mib(f.PeakHeap))
	}
	if i := r.Idle; i != nil {
		p("\n### Idle capacity: memory per connected session (%d sessions)\n\n", i.Sessions)
		p("| edge | worker | edge + worker | Redis | shared (Redis clients, runtime) | bench clients | demo game | whole process RSS | goroutines |\n|---|---|---|---|---|---|---|---|---|\n")
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n\n", kib(i.Edge), kib(i.Worker), kib(i.Trellis), kib(i.Redis), kib(i.Shared), kib(i.Client), kib(i.Game), kib(i.ProcessRSS), i.Goroutines)
		p("Edge and worker share one process here: their live heap is split by the code that allocated it (heap profile) and goroutine stacks by goroutine count. The process RSS includes the benchmark's clients and the demo game.\n")
	}
	if c := r.Cost; c != nil {
		p("\n### Redis cost (INFO commandstats deltas, background taken out)\n\n")
		p("| per input line | per output message | per echo round trip | background (commands/s) |\n|---|---|---|---|\n| %.2f | %.2f | %.2f | %.1f |\n\n", c.PerInputLine, c.PerOutputMessage, c.PerRoundTrip, c.BackgroundRate)
		p("Round trip by command: %s.  \nFlood, per output message: %s.\n", cmdList(c.EchoCommands), cmdList(c.FloodCommands))
	}
	if errs := r.errors(); len(errs) > 0 || len(r.Notes) > 0 {
		p("\n### Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		for _, e := range errs {
			p("- error: %s\n", e)
		}
	}
	return nil
}

func cmdList(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %.2f", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
