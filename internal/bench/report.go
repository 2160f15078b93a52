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

// Verdict is one target and whether this run met it.
type Verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: not measured in this run
}

// Verdicts compares the results with Targets, row by row.
func (r *Results) Verdicts() []Verdict {
	out := make([]Verdict, 0, len(Targets))
	for _, t := range Targets {
		measured, met := t.Judge(r)
		out = append(out, Verdict{Target: t.Figure + ": " + t.Goal, Measured: measured, Met: met})
	}
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
		verdicts = r.Compare.Verdicts()
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
	p("\nECHO (a line per period per client)\ttarget\tclients\tperiod\tp50\tp90\tp99\tp99.9\tvs direct p50\tp99\tsent\tlost\tconnect\t\n")
	for _, e := range r.Echo {
		p("\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", e.Target, e.Clients, e.Period, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.P999),
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
	if i := r.Idle; i != nil && len(i.Procs) > 0 {
		p("\nIDLE BY PROCESS (per session)\tprocess\tRSS\theap\tstacks\t\n")
		for _, pr := range i.Procs {
			p("\t%s\t%s\t%s\t%s\t\n", pr.Name, kib(pr.RSS), kib(pr.Heap), kib(pr.Stack))
		}
	}
	if len(r.LoggedIn) > 0 {
		p("\nLOGGED IN, IDLE (per session)\tgame\tmccp2\tsessions\tprocess\tRSS\theap\tstacks\t\n")
		for _, l := range r.LoggedIn {
			for _, pr := range l.Procs {
				p("\t%s\t%v\t%d\t%s\t%s\t%s\t%s\t\n", l.Game, l.MCCP, l.Sessions, pr.Name, kib(pr.RSS), kib(pr.Heap), kib(pr.Stack))
			}
		}
	}
	if c := r.Cost; c != nil {
		p("\nREDIS COST (commands)\tper input line\tper output message\tper round trip\tbackground/s\t\n")
		p("\t%.2f\t%.2f\t%.2f\t%.1f\t\n", c.PerInputLine, c.PerOutputMessage, c.PerRoundTrip, c.BackgroundRate)
	}
	tw.Flush()
	fmt.Fprintln(w)
	met, judged := 0, 0
	for _, v := range r.Verdicts() {
		fmt.Fprintf(w, "  %-5s %s: %s\n", verdictWord(v.Met), v.Target, v.Measured)
		if v.Met != nil {
			judged++
			if *v.Met {
				met++
			}
		}
	}
	fmt.Fprintf(w, "  targets: %d met of %d measured (%d rows)\n", met, judged, len(Targets))
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
	for _, l := range r.LoggedIn {
		if l.Error != "" {
			out = append(out, fmt.Sprintf("login %s: %s", l.Game, l.Error))
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

	p("\n### Echo: each client a line per period, round trip\n\n| target | clients | period | p50 | p90 | p99 | p99.9 | max | vs direct (p50 / p99) | samples | lost | lines/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	echo := slices.Clone(r.Echo)
	slices.SortStableFunc(echo, func(a, b EchoResult) int { return a.Clients - b.Clients })
	for _, e := range echo {
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %d | %d | %.0f |\n", e.Target, e.Clients, e.Period, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.P999), ms(e.Latency.Max),
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
		if len(i.Procs) > 0 {
			p("Edge and worker are their own processes here: edge and worker are heap in use + goroutine stacks from each one's /metrics.\n")
		} else {
			p("Edge and worker share one process here: their live heap is split by the code that allocated it (heap profile) and goroutine stacks by goroutine count. The process RSS includes the benchmark's clients and the demo game.\n")
		}
	}
	if i := r.Idle; i != nil && len(i.Procs) > 0 {
		p("\nEach process of the stack, read from outside (RSS: /proc/<pid>/status VmRSS; heap: Go heap in use from /metrics, not after a forced GC; Redis: used_memory), growth per session:\n\n| process | RSS | heap | stacks |\n|---|---|---|---|\n")
		for _, pr := range i.Procs {
			p("| %s | %s | %s | %s |\n", pr.Name, kib(pr.RSS), kib(pr.Heap), kib(pr.Stack))
		}
	}
	if len(r.LoggedIn) > 0 {
		p("\n### Logged in and idle: memory per session, by process\n\nSessions that logged in to the full demo game (negotiation, GMCP, MSDP; MCCP2 offered or not), each kind on an edge and a worker started for it alone; growth per session from before the first connect to 2 s after the last login.\n\n| game | MCCP2 | sessions | process | RSS | heap | stacks |\n|---|---|---|---|---|---|---|\n")
		for _, l := range r.LoggedIn {
			if l.Error != "" {
				p("| %s | %v | %d | error: %s | | | |\n", l.Game, l.MCCP, l.Sessions, l.Error)
			}
			for _, pr := range l.Procs {
				p("| %s | %v | %d | %s | %s | %s | %s |\n", l.Game, l.MCCP, l.Sessions, pr.Name, kib(pr.RSS), kib(pr.Heap), kib(pr.Stack))
			}
		}
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
