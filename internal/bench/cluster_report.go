package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// compareErrors are the failed steps of a comparison.
func (c *CompareResult) errors() []string {
	var out []string
	for _, s := range c.Saturation {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("saturation %s round %d: %s", s.Redis, s.Round, s.Error))
		}
	}
	for _, a := range c.Append {
		if a.Error != "" {
			out = append(out, fmt.Sprintf("store appends %s round %d: %s", a.Redis, a.Round, a.Error))
		}
	}
	for _, e := range c.Echo {
		if e.Error != "" {
			out = append(out, fmt.Sprintf("echo %s at %d round %d: %s", e.Target, e.Clients, e.Round, e.Error))
		}
	}
	return out
}

// Verdict is the scaling target's verdict; Met is nil when not measured.
func (c *CompareResult) Verdict() Verdict {
	v := Verdict{Target: fmt.Sprintf("output messages/s >= %.1fx from 1 to 3 primaries", TargetClusterScaling)}
	if !c.Scaling.Valid() {
		v.Measured = "not measured (needs cluster:1 and a larger cluster)"
		return v
	}
	met := float64(c.Scaling) >= TargetClusterScaling
	v.Measured = fmt.Sprintf("%s (%s -> %s)", c.Scaling, c.ScalingFrom, c.ScalingTo)
	v.Met = &met
	return v
}

// CappedVerdict is the same target with every redis-server held to the
// same CPU: judged only when each capped primary ran at its cap, since
// only then was the Redis tier what set the pace.
func (c *CompareResult) CappedVerdict() Verdict {
	cs := c.Capped
	v := Verdict{Target: fmt.Sprintf("Redis tier at a fixed CPU per primary: 1 -> 3 primaries, output messages/s >= %.1fx", TargetClusterScaling)}
	if !cs.Scaling.Valid() {
		v.Measured = "not measured (needs capped stacks: --redis-cpu, with cluster:1 and a larger cluster)"
		return v
	}
	v.Target = fmt.Sprintf("Redis tier at a fixed CPU per primary (%g cores each): 1 -> 3 primaries, output messages/s >= %.1fx", cs.CPU, TargetClusterScaling)
	whole := fmt.Sprintf("whole runs %s (%s -> %s: %.0f -> %.0f entries/s), primaries at %.0f-%.0f%% of their cap", cs.Scaling, cs.From, cs.To,
		cs.FromRate, cs.ToRate, 100*cs.MinLoad, 100*cs.MaxLoad)
	// Judged on the steady windows, while every session was flooding:
	// over a whole run each primary also idles through the ramp and its
	// last sessions' tail, which is the flood's shape, not the tier.
	if !cs.Steady.Valid() {
		// The whole runs, ramp and tail included, are the stricter test:
		// judged on them when even they kept every primary at its cap.
		v.Measured = whole + fmt.Sprintf(" (no steady window, every session flooding for %s or more, for one of the stacks: %d of %d runs had none)", minSteady, cs.SteadyMissing, cs.SteadyRuns+cs.SteadyMissing)
		if cs.MinLoad < CapSaturated {
			v.Measured += fmt.Sprintf("; NOT SATURATED: %s over its whole run, under %.0f%% of its %g-core cap", cs.Least, 100*CapSaturated, cs.CPU)
			return v
		}
		met := float64(cs.Scaling) >= TargetClusterScaling
		v.Met = &met
		return v
	}
	v.Measured = fmt.Sprintf("%s in the steady windows (%.0f -> %.0f entries/s, %d of %d runs had one), primaries at %.0f-%.0f%% of their cap there; %s",
		cs.Steady, cs.SteadyFromRate, cs.SteadyToRate, cs.SteadyRuns, cs.SteadyRuns+cs.SteadyMissing, 100*cs.SteadyMinLoad, 100*cs.SteadyMaxLoad, whole)
	if cs.SteadyMinLoad < CapSaturated {
		v.Measured += fmt.Sprintf("; NOT SATURATED: %s in its steady window, under %.0f%% of its %g-core cap, so something other than the capped Redis tier set the pace", cs.SteadyLeast, 100*CapSaturated, cs.CPU)
		return v
	}
	met := float64(cs.Steady) >= TargetClusterScaling
	v.Met = &met
	return v
}

// Verdicts are the comparison's rows: the machine as it is, then the
// Redis tier at a fixed CPU per primary.
func (c *CompareResult) Verdicts() []Verdict { return []Verdict{c.Verdict(), c.CappedVerdict()} }

// sortedEcho orders echo rows by client count, then mode as run, then round.
func (c *CompareResult) sortedEcho() []CompareEcho {
	rank := map[string]int{}
	for i, m := range c.Modes {
		rank[m] = i
	}
	out := slices.Clone(c.Echo)
	slices.SortStableFunc(out, func(a, b CompareEcho) int {
		return cmp.Or(cmp.Compare(a.Clients, b.Clients), cmp.Compare(rank[a.Target], rank[b.Target]), cmp.Compare(a.Round, b.Round))
	})
	return out
}

// perEntry is CPU time per entry in microseconds: cores over entries/s.
func perEntry(cores, entriesPerSec float64) string {
	if entriesPerSec <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", cores/entriesPerSec*1e6)
}

// cores formats per-process CPU, e.g. "0.41+0.38+0.40".
func cores(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, "+")
}

func (r *Results) writeCompareTable(w io.Writer) error {
	c := r.Compare
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("\nSATURATION (sessions flooding at once)\tredis\tround\tsessions\tentries/s\tlines/s\tMB/s\txadd/s\tredis cmds/s\tlost\tcpu trellis\tcpu redis\tcpu other\t\n")
	for _, s := range c.Saturation {
		p("\t%s\t%d\t%d\t%.0f\t%.0f\t%.1f\t%.0f\t%.0f\t%d\t%.2f\t%s\t%.2f\t\n", s.Redis, s.Round, s.Sessions, s.EntriesPerSec, s.LinesPerSec, s.MBps,
			s.XAddPerSec, s.CommandsPerSec, s.Lost, s.CPU.Trellis, cores(s.CPU.Redis), s.CPU.Other)
	}
	if slices.ContainsFunc(c.Saturation, func(s SaturationResult) bool { return len(s.Primaries) > 0 }) {
		p("\nPER PRIMARY (saturation)\tredis\tround\tprimary\tsessions\tentries\tdone at\tcpu\tcpu steady\tthrottled steady\t\n")
		for _, s := range c.Saturation {
			for i, l := range s.Primaries {
				p("\t%s\t%d\t%d of %d\t%d\t%d\t%s\t%.3f\t%s\t%s\t\n", s.Redis, s.Round, i+1, len(s.Primaries), l.Sessions, l.Entries,
					l.Done.Round(time.Millisecond), l.CPU, orDash(l.Steady), throttled(l.Throttled))
			}
		}
	}
	p("\nTHROUGHPUT (mean of rounds)\tredis\truns\tentries/s\tMB/s\txadd/s\tcpu trellis\tcpu redis\tcpu other\ttrellis cpu/entry\tredis cpu/entry\t\n")
	for _, t := range c.Throughput {
		p("\t%s\t%d\t%.0f\t%.1f\t%.0f\t%.2f\t%s\t%.2f\t%s\t%s\t\n", t.Redis, t.Runs, t.EntriesPerSec, t.MBps, t.XAddPerSec, t.CPU.Trellis, cores(t.CPU.Redis), t.CPU.Other,
			perEntry(t.CPU.Trellis, t.EntriesPerSec), perEntry(t.CPU.RedisTotal, t.EntriesPerSec))
	}
	if len(c.Append) > 0 {
		p("\nSTORE APPENDS ALONE\tredis\tround\twriters x batch\tentries/s\tredis cmds/s\tcpu trellis\tcpu redis\tcpu other\t\n")
		for _, a := range c.Append {
			p("\t%s\t%d\t%d x %d\t%.0f\t%.0f\t%.2f\t%s\t%.2f\t\n", a.Redis, a.Round, a.Writers, a.Batch, a.EntriesPerSec, a.CommandsPerSec, a.CPU.Trellis, cores(a.CPU.Redis), a.CPU.Other)
		}
		p("\nSTORE APPENDS (mean)\tredis\truns\tentries/s\tcpu trellis\tcpu redis\tcpu other\ttrellis cpu/entry\tredis cpu/entry\t\n")
		for _, t := range c.AppendThroughput {
			p("\t%s\t%d\t%.0f\t%.2f\t%s\t%.2f\t%s\t%s\t\n", t.Redis, t.Runs, t.EntriesPerSec, t.CPU.Trellis, cores(t.CPU.Redis), t.CPU.Other,
				perEntry(t.CPU.Trellis, t.EntriesPerSec), perEntry(t.CPU.RedisTotal, t.EntriesPerSec))
		}
	}
	p("\nECHO (one line/s per client)\tredis\tclients\tround\tp50\tp90\tp99\tp99.9\tlost\t\n")
	for _, e := range c.sortedEcho() {
		p("\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t\n", e.Target, e.Clients, e.Round, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.P999), e.Lost)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, v := range c.Verdicts() {
		fmt.Fprintf(w, "  %-5s %s: %s\n", verdictWord(v.Met), v.Target, v.Measured)
	}
	if c.AppendScaling.Valid() {
		fmt.Fprintf(w, "  store appends alone, 1 -> most primaries: %s\n", c.AppendScaling)
	}
	if c.Capped.AppendScaling.Valid() {
		fmt.Fprintf(w, "  store appends alone, capped at %g cores per redis-server, 1 -> most primaries: %s\n", c.Capped.CPU, c.Capped.AppendScaling)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, e := range c.errors() {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	return nil
}

func (r *Results) writeCompareMarkdown(w io.Writer) {
	c := r.Compare
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("| target | measured | verdict |\n|---|---|---|\n")
	for _, v := range c.Verdicts() {
		p("| %s | %s | %s |\n", v.Target, v.Measured, verdictWord(v.Met))
	}
	p("\n")
	if c.Capped.CPU > 0 || slices.ContainsFunc(c.Modes, func(m string) bool { return strings.Contains(m, "@") }) {
		p("A topology written NAME@CORES ran every redis-server in a cgroup of its own with a CPU quota of CORES cores (a CFS period of %s, longer under 0.05 cores): a fixed budget per primary, so that the Redis tier, not the Trellis process, is the saturated resource. Its primaries' CPU is in the \"CPU redis-server(s)\" columns; a capped primary well under its cap means that run did not saturate Redis.\n\n", cpuCapPeriod(1))
	}

	if len(c.Saturation) > 0 {
		s0 := c.Saturation[0]
		p("### Output messages per second at saturation\n\n")
		p("%d sessions, each asking the game for %d lines of %d B at once; rounds: %d, the stacks taking turns in the order %s. ",
			s0.Sessions, s0.Lines, s0.LineBytes, c.Rounds, strings.Join(c.Modes, ", "))
		flush := "the worker's default FLUSH_BYTES (16 KiB)"
		if c.FlushBytes > 0 {
			flush = fmt.Sprintf("FLUSH_BYTES %d", c.FlushBytes)
		}
		p("An entry is one output stream entry (XADD) delivered to a client, at most %s; CPU is in cores (1.00 = one CPU busy the whole time). ", flush)
		p("Each stack ran %d worker(s), each with one output flusher (one pipelined round trip in flight); the sessions were %s.\n\n", max(c.Workers, 1),
			map[bool]string{true: "named so that every primary held the same number", false: "hashed over the primaries as their names fell"}[s0.Balanced])
		p("| redis | runs | entries/s | MB/s | XADD/s (Redis) | CPU trellis process | CPU redis-server(s) | CPU other | trellis CPU per entry | Redis CPU per entry |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range c.Throughput {
			p("| %s | %d | %.0f | %.1f | %.0f | %.2f | %s | %.2f | %s | %s |\n", t.Redis, t.Runs, t.EntriesPerSec, t.MBps, t.XAddPerSec, t.CPU.Trellis, cores(t.CPU.Redis), t.CPU.Other,
				perEntry(t.CPU.Trellis, t.EntriesPerSec), perEntry(t.CPU.RedisTotal, t.EntriesPerSec))
		}
		p("\nEach run:\n\n| redis | round | entries/s | lines/s | MB/s | XADD/s | Redis commands/s | lost | gaps | elapsed | CPU trellis | CPU redis | CPU other |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range c.Saturation {
			p("| %s | %d | %.0f | %.0f | %.1f | %.0f | %.0f | %d | %d | %s | %.2f | %s | %.2f |\n", s.Redis, s.Round, s.EntriesPerSec, s.LinesPerSec, s.MBps,
				s.XAddPerSec, s.CommandsPerSec, s.Lost, s.Gaps, s.Elapsed.Round(time.Millisecond), s.CPU.Trellis, cores(s.CPU.Redis), s.CPU.Other)
		}
	}
	if slices.ContainsFunc(c.Saturation, func(s SaturationResult) bool { return len(s.Primaries) > 0 }) {
		p("\nEach primary in each run: the sessions whose keys it holds (%s), the entries their clients got, when its last session got its last line, its CPU over the run and over the steady window (every session still flooding), and the share of CFS periods in that window in which it used up its quota:\n\n",
			map[bool]string{true: "named so that every primary holds the same number", false: "hashed as their names fell"}[c.Saturation[0].Balanced])
		p("| redis | round | primary | sessions | entries | done at | CPU | CPU steady | throttled steady |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range c.Saturation {
			for i, l := range s.Primaries {
				p("| %s | %d | %d of %d | %d | %d | %s | %.3f | %s | %s |\n", s.Redis, s.Round, i+1, len(s.Primaries), l.Sessions, l.Entries,
					l.Done.Round(time.Millisecond), l.CPU, orDash(l.Steady), throttled(l.Throttled))
			}
		}
	}
	if len(c.Append) > 0 {
		a0 := c.Append[0]
		p("\n### Store appends alone at saturation\n\n%d writers, each appending one 80-byte entry to each of its %d leased sessions per pipelined call (the worker flusher's round trip), for %s per run; no edge, game or clients. 1 -> most primaries: %s",
			a0.Writers, a0.Batch, a0.Elapsed.Round(100*time.Millisecond), c.AppendScaling)
		if c.Capped.AppendScaling.Valid() {
			p("; capped at %g cores per redis-server: %s", c.Capped.CPU, c.Capped.AppendScaling)
		}
		p(".\n\n")
		p("| redis | runs | entries/s | CPU trellis process | CPU redis-server(s) | CPU other | trellis CPU per entry | Redis CPU per entry |\n|---|---|---|---|---|---|---|---|\n")
		for _, t := range c.AppendThroughput {
			p("| %s | %d | %.0f | %.2f | %s | %.2f | %s | %s |\n", t.Redis, t.Runs, t.EntriesPerSec, t.CPU.Trellis, cores(t.CPU.Redis), t.CPU.Other,
				perEntry(t.CPU.Trellis, t.EntriesPerSec), perEntry(t.CPU.RedisTotal, t.EntriesPerSec))
		}
		p("\nEach run:\n\n| redis | round | entries/s | Redis commands/s | CPU trellis | CPU redis | CPU other |\n|---|---|---|---|---|---|---|\n")
		for _, a := range c.Append {
			p("| %s | %d | %.0f | %.0f | %.2f | %s | %.2f |\n", a.Redis, a.Round, a.EntriesPerSec, a.CommandsPerSec, a.CPU.Trellis, cores(a.CPU.Redis), a.CPU.Other)
		}
	}
	if len(c.Echo) > 0 {
		p("\n### Echo latency: one line per second per client, round trip\n\n| redis | clients | round | p50 | p90 | p99 | p99.9 | max | samples | lost |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, e := range c.sortedEcho() {
			p("| %s | %d | %d | %s | %s | %s | %s | %s | %d | %d |\n", e.Target, e.Clients, e.Round, ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99),
				ms(e.Latency.P999), ms(e.Latency.Max), e.Latency.N, e.Lost)
		}
	}
	errs := c.errors()
	if len(errs) > 0 || len(r.Notes) > 0 {
		p("\n### Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		for _, e := range errs {
			p("- error: %s\n", e)
		}
	}
}

// throttled is a share as a percentage, "-" when unknown (negative).
func throttled(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

// orDash is cores to three places, "-" when unknown (negative).
func orDash(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}
