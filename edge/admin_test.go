package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// startWithAdmin serves a new edge on two loopback listeners, the players'
// and the admin one, and returns their base URLs.
func startWithAdmin(t *testing.T) (srv *Server, public, admin string) {
	t.Helper()
	v, err := auth.NewVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = New(Config{ID: "edge-admin-test"}, v, store.New(redistest.Client(t)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln, aln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not return within 15s of cancel")
		}
	})
	return srv, "http://" + ln.Addr().String(), "http://" + aln.Addr().String()
}

// /metrics is served on the admin listener only; the players' listener
// serves the players' routes and, for load balancers, the health checks.
func TestMetricsOnTheAdminListenerOnly(t *testing.T) {
	srv, public, admin := startWithAdmin(t)
	waitFor(t, "ready", srv.Ready)
	for _, c := range []struct {
		base, path string
		status     int
		has        string
	}{
		{public, "/metrics", 404, ""},
		{public, "/", 200, "/static/index.js"},
		{public, "/healthz", 200, "ok"},
		{public, "/readyz", 200, "ready"},
		{admin, "/metrics", 200, "trellis_edge_connections 0"},
		{admin, "/healthz", 200, "ok"},
		{admin, "/readyz", 200, "ready"},
		// The admin listener serves no player: no page, no /ws.
		{admin, "/", 404, ""},
		{admin, "/ws", 404, ""},
		{admin, "/api/games", 404, ""},
	} {
		resp, body := httpGet(t, c.base+c.path, nil)
		if resp.StatusCode != c.status || !strings.Contains(body, c.has) {
			what := "public"
			if c.base == admin {
				what = "admin"
			}
			t.Errorf("%s GET %s: %d %.80q, want %d containing %q", what, c.path, resp.StatusCode, body, c.status, c.has)
		}
	}
	_, body := httpGet(t, admin+"/metrics", nil)
	for _, want := range []string{
		"trellis_build_info{", `trellis_edge_closes_total{code="4008"} 0`,
		`trellis_edge_error_frames_total{code="rate_limited"} 0`, "go_goroutines ", "process_",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("admin /metrics lacks %q", want)
		}
	}
}

// The handlers, without listeners: what cmd/trellis and deploy's tests
// see.
func TestHandlersSplitPlayersFromOperators(t *testing.T) {
	v, _ := auth.NewVerifier(testSecret)
	srv, err := New(Config{}, v, store.New(redistest.Client(t)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		admin  bool
		path   string
		status int
	}{
		{false, "/metrics", 404},
		{false, "/healthz", 200},
		{false, "/readyz", 503}, // not serving
		{true, "/metrics", 200},
		{true, "/healthz", 200},
		{true, "/readyz", 503},
		{true, "/", 404},
	} {
		h := srv.Handler()
		if c.admin {
			h = srv.AdminHandler()
		}
		if got := serveCode(h, c.path); got != c.status {
			t.Errorf("admin=%t GET %s: %d, want %d", c.admin, c.path, got, c.status)
		}
	}
}

// Serve opens cfg.AdminListen itself, and fails at once if it cannot.
func TestServeAdminListenBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	v, _ := auth.NewVerifier(testSecret)
	srv, err := New(Config{AdminListen: busy.Addr().String()}, v, store.New(redistest.Client(t)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "edge admin listen") {
		t.Fatalf("Serve with a busy admin address: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the players' listener was left open")
	}
}

func TestAdminListenValidation(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{AdminListen: "127.0.0.1:9090"}, ""},
		{Config{AdminListen: ""}, ""},
		{Config{AdminListen: "9090"}, "TRELLIS_EDGE_ADMIN_LISTEN"},
		{Config{Listen: ":8080", AdminListen: ":8080"}, "must differ from TRELLIS_EDGE_LISTEN"},
	} {
		cfg := c.cfg.withDefaults()
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+q: Validate() = %v, want %q", c.cfg.AdminListen, err, c.want)
		}
	}
	if cfg := (Config{}).withDefaults(); cfg.AdminListen != "" {
		t.Errorf("withDefaults set AdminListen %q: a Config literal must get no admin listener", cfg.AdminListen)
	}
}

func serveCode(h http.Handler, path string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}
