package worker

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the admin endpoints: /metrics (Prometheus, this worker's
// own registry), /healthz (liveness: 200 while the process serves, even
// while it drains or is fenced) and /readyz (readiness: 200 while the
// worker takes work, 503 while it drains, is fenced or is full). Both
// health endpoints answer with the same JSON body (Health). With
// TRELLIS_WORKER_PPROF it also serves /debug/pprof/.
func (w *Worker) Handler() http.Handler { return w.http }

func (w *Worker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.m.reg, promhttp.HandlerOpts{Registry: w.m.reg}))
	mux.HandleFunc("GET /healthz", w.healthz)
	mux.HandleFunc("GET /readyz", w.readyz)
	if w.cfg.Pprof {
		// pprof.Index serves the named profiles (heap, goroutine, allocs...)
		// under its prefix; the other four are handlers of their own.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Statuses of Health.
const (
	StatusOK       = "ok"       // takes work
	StatusDraining = "draining" // shutting down: stopped pulling, sessions moving away
	StatusFenced   = "fenced"   // lease renewal failed past the TTL: sessions stopped until it succeeds again
	StatusFull     = "full"     // runs TRELLIS_WORKER_MAX_SESSIONS sessions
)

// Health is the body of /healthz and /readyz.
type Health struct {
	Worker      string `json:"worker"`
	Status      string `json:"status"` // StatusOK, StatusDraining, StatusFenced or StatusFull
	Sessions    int    `json:"sessions"`
	MaxSessions int    `json:"max_sessions"`
	LastRenewal string `json:"last_renewal,omitempty"`
}

// health is the worker's state now. Its status is ok exactly when the
// worker takes work (Accepting), else the first of draining, fenced, full.
func (w *Worker) health() Health {
	h := Health{Worker: w.id, Status: StatusOK, Sessions: w.Sessions(), MaxSessions: w.cfg.MaxSessions}
	if at := w.renewedAt.Load(); at != 0 {
		h.LastRenewal = time.Unix(0, at).UTC().Format(time.RFC3339Nano)
	}
	switch {
	case w.draining.Load():
		h.Status = StatusDraining
	case w.fenced.Load():
		h.Status = StatusFenced
	case !w.Accepting():
		h.Status = StatusFull
	}
	return h
}

// healthz is liveness: 200 whatever the state, so that a kubelet never
// restarts a worker that is draining its players away, or one waiting out
// a Redis outage (a restart would only add a crash-loop back-off).
func (w *Worker) healthz(rw http.ResponseWriter, _ *http.Request) {
	writeHealth(rw, http.StatusOK, w.health())
}

// readyz is readiness: 503 unless the worker takes work.
func (w *Worker) readyz(rw http.ResponseWriter, _ *http.Request) {
	h := w.health()
	code := http.StatusOK
	if h.Status != StatusOK {
		code = http.StatusServiceUnavailable
	}
	writeHealth(rw, code, h)
}

func writeHealth(rw http.ResponseWriter, code int, h Health) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(h)
}
