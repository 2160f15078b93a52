package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// checkHealth checks /healthz (liveness: 200 in every state) and /readyz
// (readiness: 200 only while the worker takes work) against a status.
func checkHealth(t *testing.T, w *Worker, status string) {
	t.Helper()
	ready := 503
	if status == StatusOK {
		ready = 200
	}
	for path, code := range map[string]int{"/healthz": 200, "/readyz": ready} {
		body := get(t, w.Handler(), path, code)
		var h Health
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
		if h.Status != status || h.Worker != w.ID() || h.MaxSessions != w.cfg.MaxSessions {
			t.Errorf("%s = %s, want status %q of worker %s", path, body, status, w.ID())
		}
	}
}

// Running: ready. Full (MaxSessions sessions): alive, not ready.
func TestHealthRunningAndFull(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.MaxSessions = 1
	w := e.startWorker(cfg)
	waitFor(t, 5*time.Second, "a renewal", func() bool { return w.renewedAt.Load() != 0 })
	checkHealth(t, w.Worker, StatusOK)

	u := e.user("full")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	checkHealth(t, w.Worker, StatusFull)
}

// Draining: alive (a liveness probe must not kill it while its players
// move), not ready.
func TestHealthDraining(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.DrainTimeout = 3 * time.Second // the session holds the drain open
	w := e.startWorker(cfg)
	u := e.user("drain")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	w.cancel()
	waitFor(t, 5*time.Second, "draining", w.draining.Load)
	checkHealth(t, w.Worker, StatusDraining)
	w.stop(t)
}

// Fenced (Redis away past the lease TTL): alive (restarting it would not
// bring Redis back), not ready; ready again once renewals succeed.
func TestHealthFenced(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	rdb := redis.NewClient(mustParseURL(srv.URL(0)))
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	game, addr, stop, err := demogame.Start(ctx, demogame.Config{Logger: slog.New(slog.DiscardHandler)}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	e := &env{t: t, ctx: ctx, rdb: rdb, st: store.New(rdb), game: game, logs: &lockedBuffer{}, prefix: "hfence"}
	e.addGame("demo", addr)
	w := e.startWorker(testConfig())
	u := e.user("f")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	checkHealth(t, w.Worker, StatusOK)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "self-fenced", w.fenced.Load)
	checkHealth(t, w.Worker, StatusFenced)
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "renewals again", func() bool { return !w.fenced.Load() })
	checkHealth(t, w.Worker, StatusOK)
}

// Profiles are served only when asked for: they show what sessions hold.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	off, err := New(testConfig(), e.st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get(t, off.Handler(), "/debug/pprof/heap", 404)
	cfg := testConfig()
	cfg.Pprof = true
	on, err := New(cfg, e.st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get(t, on.Handler(), "/debug/pprof/heap", 200)
	get(t, on.Handler(), "/debug/pprof/goroutine?debug=1", 200)
}
