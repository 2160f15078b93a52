package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/edge/web"
	"github.com/trellis-mud/trellis/store"
)

//go:embed static
var files embed.FS

// Server is the console: its API and page over one store.
type Server struct {
	cfg    Config
	auth   *auth.Verifier
	st     *store.Store
	log    *slog.Logger
	source string // the Source of the events it appends
	hub    *hub   // feeds the live event streams while Serve runs
	static fs.FS
}

// New returns a console for cfg (validated here) reading st, admitting the
// operators whose tokens verifier accepts.
func New(cfg Config, verifier *auth.Verifier, st *store.Store, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if verifier == nil || st == nil {
		return nil, errors.New("console: a verifier and a store are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "console"
	}
	sub, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &Server{
		cfg: cfg, auth: verifier, st: st, log: logger,
		source: "console/" + host,
		hub:    newHub(st, logger, cfg.MaxStreams),
		static: sub,
	}, nil
}

// Run listens on the configured address and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down: requests in
// flight get a few seconds, live event streams end at once (their
// contexts derive from ctx).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hubCtx, stopHub := context.WithCancel(ctx)
	hubDone := make(chan struct{})
	go func() { s.hub.run(hubCtx); close(hubDone) }()
	defer func() { stopHub(); <-hubDone }()
	served := make(chan error, 1)
	go func() {
		if s.cfg.TLSCert != "" {
			served <- hs.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
			return
		}
		served <- hs.Serve(ln)
	}()
	s.log.Info("console serving", "addr", ln.Addr().String(), "tls", s.cfg.TLSCert != "")
	select {
	case err := <-served:
		return fmt.Errorf("console serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	<-served
	s.log.Info("console stopped")
	return nil
}

// Handler is the console's HTTP handler: the page, its assets and the API.
// Live event streams are fed by a follower of the log that Serve runs.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(s.static)))
	// The player client's ANSI renderer, from the same embedded files the
	// edge serves: one renderer, so transcripts look as players saw them.
	mux.Handle("GET /assets/player/", http.StripPrefix("/assets/player/", http.FileServerFS(web.Static())))

	mux.HandleFunc("POST /api/login", s.serveLogin)
	mux.HandleFunc("POST /api/logout", s.serveLogout)
	mux.Handle("GET /api/me", s.authed(s.serveMe))
	mux.Handle("GET /api/sessions", s.authed(s.serveSessions))
	mux.Handle("GET /api/session", s.authed(s.serveSession))
	mux.Handle("POST /api/sessions/kill", s.authed(s.serveKill))
	mux.Handle("GET /api/transcript", s.authed(s.serveTranscript))
	mux.Handle("GET /api/games", s.authed(s.serveGames))
	mux.Handle("POST /api/games", s.authed(s.serveAddGame))
	mux.Handle("PUT /api/games/{id}", s.authed(s.serveUpdateGame))
	mux.Handle("DELETE /api/games/{id}", s.authed(s.serveRemoveGame))
	mux.Handle("POST /api/games/import", s.authed(s.serveImportGames))
	mux.Handle("GET /api/events", s.authed(s.serveEvents))
	mux.Handle("GET /api/events/live", s.authed(s.serveLiveEvents))
	mux.Handle("GET /api/control", s.authed(s.serveControl))
	mux.Handle("GET /api/cluster", s.authed(s.serveCluster))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	})
	// The player client's headers and CSP: the console's page keeps to the
	// same rules, and loads the client's ansi.js and terminal.js under them.
	return web.SecurityHeaders(mux)
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.static, "index.html")
}
