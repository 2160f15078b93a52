package worker

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
)

// BenchmarkThousandSessions starts 1,000 sessions against the demo game
// and reports the start rate and the heap per idle session. One iteration
// is plenty: run it with -benchtime=1x.
func BenchmarkThousandSessions(b *testing.B) {
	const n = 1000
	for _, mccp := range []bool{true, false} {
		b.Run(fmt.Sprintf("mccp2=%v", mccp), func(b *testing.B) {
			for b.Loop() {
				benchSessions(b, n, demogame.Config{NegotiationWait: time.Millisecond, NoMCCP2: !mccp})
			}
		})
	}
}

func benchSessions(b *testing.B, n int, game demogame.Config) {
	b.StopTimer()
	e := newEnv(b, game)
	cfg := testConfig()
	cfg.LeaseTTL = 10 * time.Second
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	w := e.startWorker(cfg)
	b.StartTimer()
	start := time.Now()
	for i := range n {
		_, err := e.st.PublishControl(e.ctx, store.Command{Type: store.CmdAttach,
			User: fmt.Sprintf("%s-b%05d", e.prefix, i), Game: "demo", Viewer: "v", Cols: 80, Rows: 24})
		if err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for e.game.Conns() < n || w.Sessions() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d sessions, %d game conns after 2m", w.Sessions(), e.game.Conns())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(500 * time.Millisecond) // let the negotiation and banners settle
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The demo game lives in this process too: its connections are
	// included, so this is an upper bound for the worker alone.
	perSession := float64(after.HeapInuse-before.HeapInuse) / float64(n)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "sessions/s")
	b.ReportMetric(perSession, "heapB/session(incl.game)")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/session(incl.game)")
	b.StartTimer()
}
