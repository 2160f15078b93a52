package bench

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestCostCountsEveryAppendOfAnEcho runs the cost scenario on the
// in-process stack and checks the round trip against what the stack writes
// for one typed line: the input PUBLISH, then the game's echo and the
// line's own transcript record, two entries of one append call. The bench
// game prints no prompt; the worker records a typed-ahead line when the
// game prints it back (before, it held each record until
// TRELLIS_WORKER_TYPEAHEAD_HOLD ran out, an append of its own 5 s later,
// and a window that ended at the last echo counted none of them with few
// lines and some with many: 1.36 appends per line at 100 lines each).
//
// It also checks that the commands the stack runs anyway are taken out:
// with the default windows (whole periods of the lease renewals, the
// edge's lease checks, heartbeats and viewer checks), no renewal command
// is charged to the echo.
func TestCostCountsEveryAppendOfAnEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and the whole stack")
	}
	ctx := context.Background()
	st, err := StartStack(ctx, StackOptions{IdleGrace: 500 * time.Millisecond, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("stack close: %v", err)
		}
	}()
	res, err := Run(ctx, st.Env(), Options{
		Only: []string{"cost"}, CostClients: 3, CostLines: 5,
		ScenarioTimeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Cost
	if c == nil || c.Error != "" || c.Lines != 15 {
		t.Fatalf("cost: %+v", c)
	}
	t.Logf("round trip %.2f: %v; per output message %.2f: %v; background %.1f/s",
		c.PerRoundTrip, c.EchoCommands, c.PerOutputMessage, c.FloodCommands, c.BackgroundRate)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.05 {
			t.Errorf("%s = %.3f per line, want %.2f (round trip %v)", what, got, want, c.EchoCommands)
		}
	}
	// One append of two entries per line: the echo and the line's record.
	near("xadd", c.EchoCommands["xadd"], 2)
	near("evalsha", c.EchoCommands["evalsha"], 1)
	near("publish", c.EchoCommands["publish"], 2) // the input, and the append's
	near("entries seen by the clients", float64(c.EchoEntries)/float64(c.Lines), 2)
	for _, name := range []string{"pexpire", "hset", "hmget"} {
		if n := c.EchoCommands[name]; n != 0 {
			t.Errorf("%s = %.3f per line charged to the echo: a lease renewal round the background did not take out (round trip %v)", name, n, c.EchoCommands)
		}
	}
}

func TestCostWindowCoversEveryPeriod(t *testing.T) {
	if got := costWindow(); got != 10*time.Second {
		t.Errorf("costWindow() = %s with the defaults, want 10s (3 renewal rounds of a 10s TTL, 5 lease checks, 2 heartbeats, 1 viewer check)", got)
	}
	for _, tc := range []struct {
		periods []time.Duration
		want    time.Duration
	}{
		{[]time.Duration{10 * time.Second, 10 * time.Second, 2 * time.Second, 5 * time.Second}, 10 * time.Second},
		{[]time.Duration{6 * time.Second, 4 * time.Second}, 12 * time.Second},
		{[]time.Duration{7 * time.Second, 11 * time.Second, 13 * time.Second}, time.Minute}, // 1001 s: capped
		{[]time.Duration{0, 3 * time.Second}, 3 * time.Second},
	} {
		if got := periodOf(time.Minute, tc.periods...); got != tc.want {
			t.Errorf("periodOf(%v) = %s, want %s", tc.periods, got, tc.want)
		}
	}
	for _, tc := range []struct{ d, w, want time.Duration }{
		{0, 10 * time.Second, 10 * time.Second},
		{3 * time.Second, 10 * time.Second, 10 * time.Second},
		{10 * time.Second, 10 * time.Second, 10 * time.Second},
		{10*time.Second + 1, 10 * time.Second, 20 * time.Second},
		{3 * time.Second, 0, 3 * time.Second},
	} {
		if got := wholeWindows(tc.d, tc.w); got != tc.want {
			t.Errorf("wholeWindows(%s, %s) = %s, want %s", tc.d, tc.w, got, tc.want)
		}
	}
}
