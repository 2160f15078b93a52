package deploy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// served reports whether h has a route for GET path: anything but 404 and
// 405 counts (a readiness check may well answer 503 before Run).
func served(t *testing.T, h http.Handler, path string) bool {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	_, _ = io.Copy(io.Discard, rec.Result().Body)
	return rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed
}

func checkServed(t *testing.T, what string, h http.Handler, paths []string) {
	t.Helper()
	// The check must be able to fail: a path nobody registered is a 404.
	if served(t, h, "/no-such-probe-path") {
		t.Fatalf("%s answers an unknown path: cannot tell served paths apart", what)
	}
	for _, p := range paths {
		if !served(t, h, p) {
			t.Errorf("%s does not serve %s, which the manifests probe or scrape", what, p)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testEdgeHandler is the edge's players' handler, built the way `trellis
// edge` builds it, on a real Redis.
func testEdgeHandler(t *testing.T) http.Handler {
	t.Helper()
	return testEdge(t).Handler()
}

// testEdgeAdminHandler is the edge's admin handler, likewise.
func testEdgeAdminHandler(t *testing.T) http.Handler {
	t.Helper()
	return testEdge(t).AdminHandler()
}

func testEdge(t *testing.T) *edge.Server {
	t.Helper()
	verifier, err := auth.NewVerifier([]byte(strings.Repeat("k", auth.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(edge.Config{}, verifier, store.New(redistest.Client(t)), quietLogger())
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	return srv
}

// testWorkerHandler is the worker's admin handler, likewise.
func testWorkerHandler(t *testing.T) http.Handler {
	t.Helper()
	w, err := worker.New(worker.Config{}, store.New(redistest.Client(t)), quietLogger())
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	return w.Handler()
}

// The probe and scrape paths the manifests use are the ones the edge's
// handlers serve; its players' port keeps /metrics to itself.
func TestEdgeServesProbePaths(t *testing.T) {
	public := testEdgeHandler(t)
	checkServed(t, "edge", public, edgePaths)
	checkServed(t, "edge admin", testEdgeAdminHandler(t), edgeAdminPaths)
	if served(t, public, "/metrics") {
		t.Error("the edge's players' port serves /metrics")
	}
}

// Same for the worker's admin handler.
func TestWorkerServesProbePaths(t *testing.T) {
	checkServed(t, "worker admin", testWorkerHandler(t), workerPaths)
}
