package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// AttachResult is the time from opening the WebSocket to the first game
// byte at the client. The bench game says nothing until spoken to, so the
// client sends a line the moment the session takes input and the "first
// game byte" is its echo: the figure covers hello, token check, attach,
// lease, game dial and one round trip.
type AttachResult struct {
	Target      string  `json:"target"`
	Ready       Summary `json:"ready"`      // open -> session takes input
	FirstByte   Summary `json:"first_byte"` // open -> first game byte
	Failed      int     `json:"failed"`
	P50VsDirect Ratio   `json:"p50_vs_direct"`
	P99VsDirect Ratio   `json:"p99_vs_direct"`
	Error       string  `json:"error,omitempty"`
}

func runAttach(ctx context.Context, t *Target, prefix string, samples int, deadline time.Time) AttachResult {
	res := AttachResult{Target: t.Name, P50VsDirect: noRatio, P99VsDirect: noRatio}
	var ready, first Latencies
	for i := range samples {
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		r, f, err := attachOnce(ctx, t, fmt.Sprintf("%s-%d", prefix, i), deadline)
		if err != nil {
			res.Failed++
			if res.Error == "" {
				res.Error = err.Error()
			}
			continue
		}
		ready = append(ready, r)
		first = append(first, f)
	}
	res.Ready, res.FirstByte = ready.Summarize(), first.Summarize()
	return res
}

func attachOnce(ctx context.Context, t *Target, user string, deadline time.Time) (ready, first time.Duration, err error) {
	t0 := time.Now()
	c, err := dial(ctx, t, user, "")
	if err != nil {
		return 0, 0, err
	}
	defer c.close()
	if err := c.waitReady(deadline); err != nil {
		return 0, 0, err
	}
	ready = time.Since(t0)
	if err := c.send("attach " + user); err != nil {
		return 0, 0, fmt.Errorf("send: %w", err)
	}
	if err := c.readUntilLine(deadline, func(l string) bool { return strings.HasPrefix(l, "attach ") }); err != nil {
		return 0, 0, err
	}
	return ready, time.Since(t0), nil
}

// readUntilLine reads frames until a game line satisfies done.
func (c *conn) readUntilLine(deadline time.Time, done func(string) bool) error {
	c.ws.SetReadDeadline(deadline)
	defer c.ws.SetReadDeadline(time.Time{})
	for {
		f, err := c.next()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if f.Type == "error" {
			return fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		}
		for _, l := range c.lines.take() {
			if done(l) {
				return nil
			}
		}
	}
}

// readUntil reads frames until done, asked before each read, is true.
func (c *conn) readUntil(deadline time.Time, done func() bool) error {
	c.ws.SetReadDeadline(deadline)
	defer c.ws.SetReadDeadline(time.Time{})
	for !done() {
		f, err := c.next()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if f.Type == "error" {
			return fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		}
		c.lines.take() // game text is not what is waited for
	}
	return nil
}

// ReattachResult is how long a returning browser waits for what it missed:
// from opening the WebSocket (hello with resume) to the last missed line.
type ReattachResult struct {
	Target   string  `json:"target"`
	Missed   int     `json:"missed_lines"` // lines produced while away, per sample
	Latency  Summary `json:"latency"`
	Lost     int     `json:"lost"`       // missed lines that never arrived
	Repeated int     `json:"duplicated"` // missed lines that arrived twice
	Failed   int     `json:"failed"`
	Error    string  `json:"error,omitempty"`
}

// runReattach: a client attaches, asks the game for `missed` lines and
// leaves at once; once the lines are in the stream it comes back with
// resume = the last id it saw and waits for the last of them.
func runReattach(ctx context.Context, t *Target, prefix string, samples, missed int, deadline time.Time) ReattachResult {
	res := ReattachResult{Target: t.Name, Missed: missed}
	var lat Latencies
	for i := range samples {
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		d, lost, dup, err := reattachOnce(ctx, t, fmt.Sprintf("%s-%d", prefix, i), missed, deadline)
		if err != nil {
			res.Failed++
			if res.Error == "" {
				res.Error = err.Error()
			}
			continue
		}
		lat = append(lat, d)
		res.Lost += lost
		res.Repeated += dup
	}
	res.Latency = lat.Summarize()
	return res
}

func reattachOnce(ctx context.Context, t *Target, user string, missed int, deadline time.Time) (time.Duration, int, int, error) {
	c, err := dial(ctx, t, user, "")
	if err != nil {
		return 0, 0, 0, err
	}
	if err := c.waitReady(deadline); err != nil {
		c.close()
		return 0, 0, 0, err
	}
	resume := c.lastID
	if err := c.send(fmt.Sprintf("flood %d 80", missed)); err != nil {
		c.close()
		return 0, 0, 0, err
	}
	c.close()
	// The worker writes the flood to the stream with nobody watching;
	// 100 lines take well under this.
	if err := sleepUntil(ctx, time.Now().Add(150*time.Millisecond)); err != nil {
		return 0, 0, 0, err
	}

	t0 := time.Now()
	c, err = dial(ctx, t, user, resume)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.close()
	seen := make([]int, missed+1)
	err = c.readUntilLine(deadline, func(l string) bool {
		n, ok := floodNumber(l)
		if ok && n >= 1 && n <= missed {
			seen[n]++
		}
		return ok && n == missed
	})
	if err != nil {
		return 0, 0, 0, err
	}
	d := time.Since(t0)
	lost, dup := 0, 0
	for _, k := range seen[1:] {
		if k == 0 {
			lost++
		}
		if k > 1 {
			dup += k - 1
		}
	}
	return d, lost, dup, nil
}

// floodNumber parses "flood 000042 xxxx" -> 42.
func floodNumber(l string) (int, bool) {
	rest, ok := strings.CutPrefix(l, "flood ")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	return n, err == nil
}

// FloodResult is one session receiving a game's output flood.
type FloodResult struct {
	Target    string        `json:"target"`
	Lines     int           `json:"lines"`
	LineBytes int           `json:"line_bytes"`
	Received  int           `json:"received"`
	Lost      int           `json:"lost"`      // must be 0
	Reordered int           `json:"reordered"` // lines that came after a later one
	Gaps      int           `json:"gaps"`      // gap frames: the stack said output was lost
	Elapsed   time.Duration `json:"elapsed_ns"`
	MBps      float64       `json:"mb_per_s"` // game bytes delivered per second (10^6 bytes)
	// Peak memory of this process while the flood ran, and where it started.
	PeakRSS      int64  `json:"peak_rss"`
	PeakHeap     int64  `json:"peak_heap_inuse"`
	BaseRSS      int64  `json:"base_rss"`
	BaseHeap     int64  `json:"base_heap_inuse"`
	MBpsVsDirect Ratio  `json:"mbps_vs_direct"`
	Error        string `json:"error,omitempty"`
}

func runFlood(ctx context.Context, t *Target, user string, lines, size int, deadline time.Time) FloodResult {
	res := FloodResult{Target: t.Name, Lines: lines, LineBytes: size, MBpsVsDirect: noRatio}
	c, err := dial(ctx, t, user, "")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer c.close()
	if err := c.waitReady(deadline); err != nil {
		res.Error = err.Error()
		return res
	}
	base := readMemory(true)
	res.BaseRSS, res.BaseHeap = base.RSS, base.HeapInuse
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			m := readMemory(false)
			res.PeakRSS = max(res.PeakRSS, m.RSS)
			res.PeakHeap = max(res.PeakHeap, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()

	t0 := time.Now()
	if err := c.send(fmt.Sprintf("flood %d %d", lines, size)); err != nil {
		res.Error = err.Error()
	}
	next := 1
	var last time.Time
	if res.Error == "" {
		err = c.readUntilLine(deadline, func(l string) bool {
			n, ok := floodNumber(l)
			if !ok {
				return false
			}
			res.Received++
			switch {
			case n == next:
				next++
			case n > next:
				res.Lost += n - next // counted now; a late arrival is counted as reordered
				next = n + 1
			default:
				res.Reordered++
			}
			last = time.Now()
			return n == lines
		})
		if err != nil {
			res.Error = err.Error()
		}
	}
	close(stop)
	sampler.Wait()
	res.Gaps = c.gaps
	res.Lost += lines - (next - 1) // the tail that never came
	res.Lost = max(0, res.Lost-res.Reordered)
	if !last.IsZero() {
		res.Elapsed = last.Sub(t0)
		res.MBps = float64(res.Received*size) / 1e6 / res.Elapsed.Seconds()
	}
	return res
}

// CostResult is what Redis does for the stack, per unit of work.
type CostResult struct {
	// PerInputLine is the Redis commands one typed line costs on its own
	// (routing and delivery to the worker), the output it causes left out.
	PerInputLine float64 `json:"per_input_line"`
	// PerOutputMessage is the commands one output stream entry costs
	// (append, publish, delivery to the edge).
	PerOutputMessage float64 `json:"per_output_message"`
	// PerRoundTrip is everything one echoed line costs: its input, the
	// line's own transcript record (an input entry) and the game's echo.
	PerRoundTrip float64 `json:"per_round_trip"`
	// EchoCommands is the per-command breakdown of one round trip.
	EchoCommands  map[string]float64 `json:"echo_commands"`
	FloodCommands map[string]float64 `json:"flood_commands_per_message"`
	Lines         int                `json:"lines"`
	// EchoEntries is the stream entries the clients saw for their lines:
	// echoes and the lines' records (EchoRecords of them).
	EchoEntries  int64 `json:"echo_entries"`
	EchoRecords  int64 `json:"echo_records"`
	FloodEntries int64 `json:"flood_entries"`
	// Window is the unit of the measured windows: each one (background,
	// flood, echo) lasts a whole number of them (see Options.CostWindow).
	Window         time.Duration `json:"window_ns"`
	BackgroundRate float64       `json:"background_per_s"` // commands per second with nothing typed
	Error          string        `json:"error,omitempty"`
}

// runCost measures Redis commands per input line and per output message
// from INFO commandstats deltas. Output is measured with a flood (one
// input, thousands of entries, so the input's cost vanishes); input is
// then what an echo round trip costs beyond its output entries. The
// commands Redis runs anyway (lease renewals, heartbeats, blocking reads)
// are measured first and taken out.
//
// Every window lasts a whole number of window units, the period over which
// the stack's periodic Redis work repeats (costWindow): a background
// measured over one second and an echo window of another length charged
// the echo with whichever lease renewal round fell into it (pexpire 0.07,
// hset 0.01 per line in the 07:09 full run). And a window ends only once
// every entry its work causes is written: the worker writes a typed line's
// transcript record when the game shows its next prompt, and the bench
// game shows none, so each record waits for the type-ahead hold
// (TRELLIS_WORKER_TYPEAHEAD_HOLD, 5 s) or for 64 lines held after it. A
// window that ended at the last echo counted no record with 50 lines per
// client and 36 of 100 with 100 (the 1.36 appends per line of the full
// run). The clients see each record as an input frame, so they wait for
// one per line.
func runCost(ctx context.Context, t *Target, rdb redis.UniversalClient, prefix string, clients, linesPer int, window time.Duration, deadline time.Time) CostResult {
	res := CostResult{Window: window}
	fail := func(err error) CostResult { res.Error = err.Error(); return res }
	conns, failed, err := connectAll(ctx, t, prefix, clients, 200, deadline)
	defer closeAll(conns)
	if failed > 0 {
		return fail(fmt.Errorf("cost: connect: %w", err))
	}
	// closeWindow waits for the end of the first whole window unit after
	// the work, so that every periodic task ran as many times as in the
	// background window, and reads the counters.
	closeWindow := func(start time.Time) (redisSnapshot, time.Duration, error) {
		end := start.Add(wholeWindows(time.Since(start), window))
		if err := sleepUntil(ctx, end); err != nil {
			return redisSnapshot{}, 0, err
		}
		s, err := readRedis(ctx, rdb)
		return s, time.Since(start), err
	}

	// Background.
	b0, err := readRedis(ctx, rdb)
	if err != nil {
		return fail(err)
	}
	bgStart := time.Now()
	b1, bgSpan, err := closeWindow(bgStart)
	if err != nil {
		return fail(err)
	}
	bg := callsSince(b0, b1)
	res.BackgroundRate = float64(sum(bg)) / bgSpan.Seconds()
	bgFor := func(d time.Duration) map[string]float64 {
		m := make(map[string]float64, len(bg))
		for k, v := range bg {
			m[k] = float64(v) / bgSpan.Seconds() * d.Seconds()
		}
		return m
	}

	// Output: one client floods. The flood line's record is one more
	// output entry, seen and counted like the others.
	const floodLines, floodSize = 20000, 100
	f0, err := readRedis(ctx, rdb)
	if err != nil {
		return fail(err)
	}
	fStart := time.Now()
	fc := conns[0]
	entries0, inputs0 := fc.entries, fc.inputs
	if err := fc.send(fmt.Sprintf("flood %d %d", floodLines, floodSize)); err != nil {
		return fail(err)
	}
	if err := fc.readUntilLine(deadline, func(l string) bool { n, ok := floodNumber(l); return ok && n == floodLines }); err != nil {
		return fail(fmt.Errorf("cost: flood: %w", err))
	}
	if err := fc.readUntil(deadline, func() bool { return fc.inputs > inputs0 }); err != nil {
		return fail(fmt.Errorf("cost: flood: the flood line's record: %w", err))
	}
	f1, fSpan, err := closeWindow(fStart)
	if err != nil {
		return fail(err)
	}
	res.FloodEntries = fc.entries - entries0
	floodCalls := minusBackground(callsSince(f0, f1), bgFor(fSpan))
	if res.FloodEntries == 0 {
		return fail(errors.New("cost: the flood produced no output entries"))
	}
	res.FloodCommands = scale(floodCalls, 1/float64(res.FloodEntries))
	res.PerOutputMessage = total(res.FloodCommands)

	// Round trips: every client types linesPer lines, one at a time, then
	// waits for the records of its lines.
	e0, err := readRedis(ctx, rdb)
	if err != nil {
		return fail(err)
	}
	eStart := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		entries  int64
		records  int64
		firstErr error
	)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before, inputs := c.entries, c.inputs
			var err error
			for k := range linesPer {
				want := fmt.Sprintf("cost %d %d", i, k)
				if err = c.send(want); err != nil {
					break
				}
				if err = c.readUntilLine(deadline, func(l string) bool { return l == want }); err != nil {
					break
				}
			}
			if err == nil {
				if err = c.readUntil(deadline, func() bool { return c.inputs-inputs >= int64(linesPer) }); err != nil {
					err = fmt.Errorf("the records of the lines typed (%d of %d seen): %w", c.inputs-inputs, linesPer, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, err)
				return
			}
			entries += c.entries - before
			records += c.inputs - inputs
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fail(fmt.Errorf("cost: echo: %w", firstErr))
	}
	e1, eSpan, err := closeWindow(eStart)
	if err != nil {
		return fail(err)
	}
	res.Lines = clients * linesPer
	res.EchoEntries, res.EchoRecords = entries, records
	echoCalls := minusBackground(callsSince(e0, e1), bgFor(eSpan))
	res.EchoCommands = scale(echoCalls, 1/float64(res.Lines))
	res.PerRoundTrip = total(res.EchoCommands)
	res.PerInputLine = res.PerRoundTrip - float64(entries)/float64(res.Lines)*res.PerOutputMessage
	return res
}

// wholeWindows is the shortest whole number of window units (at least one)
// that is not shorter than d.
func wholeWindows(d, window time.Duration) time.Duration {
	if window <= 0 {
		return d
	}
	n := max(1, (d+window-1)/window)
	return n * window
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// minusBackground subtracts the background from measured calls, never below zero.
func minusBackground(calls map[string]int64, bg map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(calls))
	for k, v := range calls {
		if n := float64(v) - bg[k]; n > 0.0 {
			out[k] = n
		}
	}
	return out
}

func scale(m map[string]float64, f float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if v*f >= 0.005 {
			out[k] = v * f
		}
	}
	return out
}

func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}
