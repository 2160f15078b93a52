package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trellis-mud/trellis/internal/demogame"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis's pool reaper and the http server's idle conns end on
		// their own shortly after Close.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
	)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGame runs the demo game in bench mode for one test.
func startGame(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = demogame.New(demogame.Config{Bench: true, Logger: quiet()}).Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// startProxy runs the direct proxy in front of game for one test.
func startProxy(t *testing.T, game string) *Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewProxy(game, quiet()).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("proxy Serve = %v, want context.Canceled", err)
		}
	})
	return &Target{Name: "direct", URL: "ws://" + ln.Addr().String() + "/", Protocol: JSON, Game: "bench"}
}

func TestProxyEchoesAndFloods(t *testing.T) {
	target := startProxy(t, startGame(t))
	deadline := time.Now().Add(10 * time.Second)
	c, err := dial(context.Background(), target, "u", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.waitReady(deadline); err != nil {
		t.Fatal(err)
	}

	line := "bench 1 2 h\u00e9llo" // non-ASCII survives the relay
	if err := c.send(line); err != nil {
		t.Fatal(err)
	}
	if err := c.readUntilLine(deadline, func(l string) bool { return l == line }); err != nil {
		t.Fatalf("echo of %q: %v", line, err)
	}

	const n = 5000
	if err := c.send("flood 5000 64"); err != nil {
		t.Fatal(err)
	}
	next := 1
	err = c.readUntilLine(deadline, func(l string) bool {
		k, ok := floodNumber(l)
		if !ok {
			return false
		}
		if k != next {
			t.Fatalf("flood line %d after %d", k, next-1)
		}
		if len(l) != 62 { // 64 bytes with CR LF
			t.Fatalf("flood line %d is %d bytes: %q", k, len(l), l)
		}
		next++
		return k == n
	})
	if err != nil || next != n+1 {
		t.Fatalf("flood: got %d lines, err %v", next-1, err)
	}
}

func TestProxyRefusesWithoutHello(t *testing.T) {
	target := startProxy(t, startGame(t))
	c, err := dial(context.Background(), &Target{URL: target.URL, Protocol: Raw}, "u", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// A raw client says no hello; its first frame is not JSON hello, so the
	// proxy hangs up rather than dialling the game.
	if err := c.send("hello?"); err != nil {
		t.Fatal(err)
	}
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.next(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read after a bad hello = %v, want the connection closed", err)
	}
}

// The echo scenario against the direct proxy: every line comes back and is
// timed.
func TestEchoScenarioDirect(t *testing.T) {
	target := startProxy(t, startGame(t))
	res := runEcho(context.Background(), target, "t", echoPlan{
		clients: 5, rounds: 3, period: 100 * time.Millisecond, rate: 1000, senders: 2,
		deadline: time.Now().Add(20 * time.Second),
	})
	if res.Error != "" || res.ConnectFailed != 0 {
		t.Fatalf("echo: %+v", res)
	}
	if res.Sent != 15 || res.Received != 15 || res.Lost != 0 {
		t.Errorf("sent %d received %d lost %d, want 15/15/0", res.Sent, res.Received, res.Lost)
	}
	if res.Latency.N != 10 { // round 0 warms up
		t.Errorf("samples = %d, want 10", res.Latency.N)
	}
	if res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
		t.Errorf("latency summary %+v is not a distribution", res.Latency)
	}
}

// One tiny run of every scenario through the real stack, so that the
// whole harness is exercised by `make test`.
func TestRunTinyStack(t *testing.T) {
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
		Clients: []int{5}, EchoRounds: 2, ConnectRate: 200,
		AttachSamples: 3, ReattachSamples: 2,
		FloodLines: 2000, FloodBytes: 80,
		CostClients: 2, CostLines: 5, CostWindow: time.Second,
		ScenarioTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	res.WriteTable(&sb)
	res.WriteMarkdown(&sb)
	t.Log(sb.String())

	if len(res.Attach) != 2 || res.Attach[0].FirstByte.N != 3 || res.Attach[1].FirstByte.N != 3 {
		t.Errorf("attach: %+v", res.Attach)
	}
	if !res.Attach[0].P50VsDirect.Valid() {
		t.Error("attach: no ratio to the direct proxy")
	}
	for _, e := range res.Echo {
		if e.Target != "websockify" && (e.Latency.N != 5 || e.Lost != 0) {
			t.Errorf("echo %s: %d samples, %d lost, err %q; want 5, 0", e.Target, e.Latency.N, e.Lost, e.Error)
		}
	}
	if rr := res.Reattach; rr == nil || rr.Latency.N != 2 || rr.Lost != 0 || rr.Repeated != 0 {
		t.Errorf("reattach: %+v", rr)
	}
	for _, f := range res.Flood {
		if f.Received == 0 || f.MBps <= 0 {
			t.Errorf("flood %s: %+v", f.Target, f)
		}
	}
	if res.Idle == nil || res.Idle.Sessions != 5 || res.Idle.Redis <= 0 {
		t.Errorf("idle: %+v", res.Idle)
	}
	if c := res.Cost; c == nil || c.Error != "" || c.PerOutputMessage <= 0 || c.Lines != 10 {
		t.Errorf("cost: %+v", c)
	}
	if len(res.Verdicts()) < 6 {
		t.Errorf("verdicts: %+v", res.Verdicts())
	}
}
