package worker

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the admin endpoints: /metrics (Prometheus, this worker's
// own registry) and /healthz (200 while the worker takes work, 503 while it
// drains or cannot renew its leases, with a JSON body either way).
func (w *Worker) Handler() http.Handler { return w.http }

func (w *Worker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.m.reg, promhttp.HandlerOpts{Registry: w.m.reg}))
	mux.HandleFunc("GET /healthz", w.healthz)
	return mux
}

// Health is the body of /healthz.
type Health struct {
	Worker      string `json:"worker"`
	Status      string `json:"status"` // ok, draining, fenced
	Sessions    int    `json:"sessions"`
	MaxSessions int    `json:"max_sessions"`
	LastRenewal string `json:"last_renewal,omitempty"`
}

func (w *Worker) healthz(rw http.ResponseWriter, _ *http.Request) {
	h := Health{Worker: w.id, Status: "ok", Sessions: w.Sessions(), MaxSessions: w.cfg.MaxSessions}
	if at := w.renewedAt.Load(); at != 0 {
		h.LastRenewal = time.Unix(0, at).UTC().Format(time.RFC3339Nano)
	}
	code := http.StatusOK
	switch {
	case w.draining.Load():
		h.Status, code = "draining", http.StatusServiceUnavailable
	case w.fenced.Load():
		h.Status, code = "fenced", http.StatusServiceUnavailable
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(h)
}
