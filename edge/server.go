package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/edge/web"
	"github.com/trellis-mud/trellis/store"
)

// Heartbeat timing of the contract: workers forget viewers of an edge whose
// heartbeat expired.
const (
	heartbeatEvery = 5 * time.Second
	heartbeatTTL   = 15 * time.Second
)

// Server is one edge: the HTTP pages, the WebSocket endpoint, the hub and
// the watchdog. Build it with New, serve with Run (or Serve).
type Server struct {
	cfg      Config
	auth     *auth.Verifier
	st       *store.Store
	log      *slog.Logger
	m        *metrics
	hub      *hub
	static   fs.FS
	upgrader websocket.Upgrader
	handler  http.Handler // the players' routes
	admin    http.Handler // metrics and health, for operators

	// baseCtx outlives every client: detaches are published with it during
	// shutdown. It is canceled when Serve returns.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	serving atomic.Bool
	redisOK atomic.Bool
	// watchdogPasses counts the watchdog's rounds over every session, so
	// tests can wait for some.
	watchdogPasses atomic.Int64
	// leaseReadHook, when set (tests), sees the keys of each lease read
	// of the watchdog before it is sent.
	leaseReadHook atomic.Pointer[func([]store.SessionKey)]
	// now is the clock of the input ack timeout; tests move it.
	now func() time.Time

	mu       sync.Mutex
	clients  map[*client]struct{}
	conns    int // connections held or being upgraded, against MaxConnections
	stopping bool
	wg       sync.WaitGroup // one per client
}

// New builds an edge. cfg is validated (and its ID filled in).
func New(cfg Config, verifier *auth.Verifier, st *store.Store, logger *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if verifier == nil {
		return nil, errors.New("edge: a token verifier is required")
	}
	if st == nil {
		return nil, errors.New("edge: a store is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("edge", cfg.ID)
	s := &Server{
		cfg:     cfg,
		auth:    verifier,
		st:      st,
		log:     logger,
		m:       newMetrics(),
		static:  web.Static(),
		clients: make(map[*client]struct{}),
		now:     time.Now,
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.hub = newHub(st, logger, s.m)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Held by every connection for as long as it lives (gorilla's
		// reader waits in it): what browsers send is a hello and lines of
		// input, a few hundred bytes, and a larger message is read
		// straight past the buffer.
		ReadBufferSize: 512,
		// Write buffers come from a pool, so idle connections hold none and
		// a large one costs nothing at rest; it must fit a whole output
		// entry (the worker writes up to 16 KiB of text per entry), or
		// gorilla splits a message into one fragment and syscall per
		// buffer-full.
		WriteBufferSize:   32 << 10,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       s.checkOrigin,
		EnableCompression: cfg.Compression,
	}
	s.handler = s.routes()
	s.admin = s.adminRoutes()
	return s, nil
}

// ID is the edge's instance id.
func (s *Server) ID() string { return s.cfg.ID }

// Handler serves the players' routes: the pages, /api/games, /ws, and
// /healthz and /readyz for load balancers, which probe this port. It does
// not serve /metrics (AdminHandler does). The WebSocket endpoint needs Run
// or Serve running (they own the hub).
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler serves the operators' routes: /metrics (this edge's own
// registry), /healthz and /readyz. Serve runs it on Config.AdminListen.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// Ready reports whether the edge serves and its last Redis heartbeat
// succeeded.
func (s *Server) Ready() bool { return s.serving.Load() && s.redisOK.Load() && !s.full() }

// full reports whether the edge holds MaxConnections: /readyz then says
// not ready, so a load balancer sends new browsers to other edges.
func (s *Server) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.MaxConnections > 0 && s.conns >= s.cfg.MaxConnections
}

// Run listens on cfg.Listen and serves until ctx is done (see Serve).
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.cancelBase()
		return fmt.Errorf("edge listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the players on ln, and the admin routes on cfg.AdminListen
// unless it is empty, until ctx is done. Then it stops accepting, closes
// every browser with 1001 (going away: they reconnect to another edge),
// publishes their detaches, removes its heartbeat, closes the admin
// listener and returns after every goroutine it started ended. A Server
// serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var admin net.Listener
	if s.cfg.AdminListen != "" {
		var err error
		if admin, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
			ln.Close()
			s.cancelBase()
			return fmt.Errorf("edge admin listen %s: %w", s.cfg.AdminListen, err)
		}
	}
	return s.serve(ctx, ln, admin)
}

// serve is Serve with the admin listener given (nil: none).
func (s *Server) serve(ctx context.Context, ln, adminLn net.Listener) error {
	defer s.cancelBase()
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	// The admin server outlives the players' one by the whole shutdown:
	// /readyz says not ready and /metrics counts the closes meanwhile.
	as := &http.Server{
		Handler:           s.admin,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	adminServed := make(chan error, 1)
	if adminLn != nil {
		go func() { adminServed <- as.Serve(adminLn) }()
		s.log.Info("edge admin serving", "addr", adminLn.Addr().String())
	}
	bg, stopBG := context.WithCancel(s.baseCtx)
	var g errgroup.Group
	g.Go(func() error { s.hub.run(bg); return nil })
	g.Go(func() error { s.heartbeat(bg); return nil })
	g.Go(func() error { s.watchdog(bg); return nil })
	g.Go(func() error { s.pinger(bg); return nil })

	s.serving.Store(true)
	s.event(store.EvEdgeStarted)
	s.log.Info("edge serving", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	var err error
	publicDone, adminDone := false, adminLn == nil
	select {
	case <-ctx.Done():
	case err = <-served:
		err, publicDone = fmt.Errorf("edge serve: %w", err), true
	case err = <-adminServed:
		err, adminDone = fmt.Errorf("edge admin serve: %w", err), true
	}
	s.serving.Store(false)
	shutCtx, cancel := context.WithTimeout(s.baseCtx, 5*time.Second)
	_ = hs.Shutdown(shutCtx) // WebSocket connections are hijacked: not waited for here
	cancel()
	if !publicDone {
		<-served
	}
	s.closeClients()
	stopBG()
	_ = g.Wait()
	if !adminDone {
		actx, cancel := context.WithTimeout(s.baseCtx, time.Second)
		_ = as.Shutdown(actx)
		cancel()
		<-adminServed
	}

	final, cancel := context.WithTimeout(s.baseCtx, 2*time.Second)
	if gerr := s.st.EdgeGone(final, s.cfg.ID); gerr != nil {
		s.log.Warn("remove heartbeat failed", "err", gerr)
	}
	cancel()
	s.event(store.EvEdgeStopped)
	s.log.Info("edge stopped")
	return err
}

// closeClients closes every browser with 1001 and waits until their
// detaches are published.
func (s *Server) closeClients() {
	s.mu.Lock()
	s.stopping = true
	for c := range s.clients {
		c.closeWith(disconnectShutdown)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) event(typ string) {
	ctx, cancel := context.WithTimeout(s.baseCtx, 2*time.Second)
	defer cancel()
	if _, err := s.st.AppendEvent(ctx, store.NewEvent(typ, "edge/"+s.cfg.ID, store.SessionKey{}, "", nil)); err != nil {
		s.log.Debug("append event failed", "type", typ, "err", err)
	}
}

func (s *Server) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		err := s.st.EdgeHeartbeat(hctx, s.cfg.ID, heartbeatTTL)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.m.redisErrors.Inc()
			if s.redisOK.Load() {
				s.log.Warn("heartbeat failed", "err", err)
			}
		}
		s.redisOK.Store(err == nil)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pingSlots is how many times per PingInterval the pinger looks for
// clients due a ping: a ping goes out at most PingInterval/pingSlots late,
// and the clients' pings stay spread over the interval as their
// connections were.
const pingSlots = 8

// pinger asks each browser's writer for a keep-alive every PingInterval.
// One goroutine for all of them, so an idle browser needs no writer (and
// no timer) of its own; the ping itself is the writer's, the only one
// that writes.
func (s *Server) pinger(ctx context.Context) {
	every := s.cfg.PingInterval
	t := time.NewTicker(every / pingSlots)
	defer t.Stop()
	var due []*client
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			at := now.UnixNano()
			s.mu.Lock()
			for c := range s.clients {
				if c.nextPing.Load() <= at {
					c.nextPing.Store(at + int64(every))
					due = append(due, c)
				}
			}
			s.mu.Unlock()
			for i, c := range due {
				c.ping()
				due[i] = nil
			}
			due = due[:0]
		}
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /play/{game}", s.servePlay)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(s.static)))
	mux.HandleFunc("GET /api/games", s.serveGames)
	mux.HandleFunc("GET /ws", s.serveWS)
	s.settingsRoutes(mux)
	s.transcriptRoutes(mux)
	// Load balancers probe the port they send players to: the health
	// endpoints stay here as well as on the admin listener. /metrics does
	// not: it is for Prometheus, not for the world.
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	return web.SecurityHeaders(mux)
}

// adminRoutes are the operators' endpoints, for the admin listener.
func (s *Server) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{Registry: s.m.reg}))
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	return mux
}

// serveHealthz is liveness: the process serves HTTP.
func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// serveReadyz is readiness: see Ready.
func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	http.ServeFileFS(w, r, s.static, "index.html")
}

func (s *Server) servePlay(w http.ResponseWriter, r *http.Request) {
	if _, err := s.st.GetGame(r.Context(), r.PathValue("game")); err != nil {
		if errors.Is(err, store.ErrUnknownGame) {
			s.serveUnknownGame(w, r)
			return
		}
		s.log.Warn("look up game failed", "err", err)
		http.Error(w, "the game registry is unreachable; try again shortly", http.StatusServiceUnavailable)
		return
	}
	if s.cfg.Guest {
		s.auth.EnsureGuest(w, r)
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.static, "play.html")
}

// gameInfo is one entry of /api/games.
type gameInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Players     *int   `json:"players"` // null when the game reports no MSSP
	gameClient         // echo mode, password prompt, vitals mapping (settings.go)
}

func (s *Server) serveGames(w http.ResponseWriter, r *http.Request) {
	games, err := s.st.ListGames(r.Context())
	if err != nil {
		s.log.Warn("list games failed", "err", err)
		http.Error(w, "the game registry is unreachable; try again shortly", http.StatusServiceUnavailable)
		return
	}
	out := make([]gameInfo, len(games))
	for i, g := range games {
		out[i] = gameInfo{ID: g.ID, Name: g.Name, Description: g.Description, gameClient: clientOf(g)}
		mssp, err := s.st.GameMSSP(r.Context(), g.ID)
		if err != nil {
			continue
		}
		if v := mssp["PLAYERS"]; len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && n >= 0 {
				out[i].Players = &n
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(out)
}

// checkOrigin allows pages from the configured origins, or by default from
// the host the request was sent to. Requests without an Origin header are
// not from a browser page and cannot ride a player's cookie: allowed.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	want := strings.ToLower(u.Scheme + "://" + u.Host)
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool {
		return o == "*" || strings.ToLower(strings.TrimSuffix(o, "/")) == want
	})
}

// playerIP is the browser's address: the socket peer, or with TrustProxy
// the last X-Forwarded-For entry (the one our proxy appended; entries
// before it are the browser's own claims).
func (s *Server) playerIP(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.stopping || !s.serving.Load() {
		s.mu.Unlock()
		http.Error(w, "edge shutting down", http.StatusServiceUnavailable)
		return
	}
	if max := s.cfg.MaxConnections; max > 0 && s.conns >= max {
		s.mu.Unlock()
		s.m.refused.Inc()
		// The client retries with backoff; a load balancer sends it to
		// another edge, and /readyz says this one is full.
		w.Header().Set("Retry-After", "5")
		http.Error(w, "edge full", http.StatusServiceUnavailable)
		return
	}
	s.conns++
	s.wg.Add(1)
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		s.conns--
		s.mu.Unlock()
	}

	cw := &corkingWriter{ResponseWriter: w}
	conn, err := s.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		release()
		s.wg.Done()
		return // the upgrader answered with the HTTP error (403 for a foreign origin)
	}
	guest, _ := s.auth.Guest(r)
	t := &wsTransport{conn: conn, cork: cw.cork, timeout: s.cfg.WriteTimeout}
	c := newClient(s, t, s.playerIP(r), guest)

	s.mu.Lock()
	stopping := s.stopping
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	if stopping {
		c.closeWith(disconnectShutdown)
	}
	s.m.connections.Inc()
	// The connection gets a goroutine of its own (owned by s.wg) and the
	// handler returns: net/http then lets go of the request, its headers
	// and its two 4 KiB buffers, which would otherwise live as long as
	// the WebSocket does.
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.clients, c)
			s.conns--
			s.mu.Unlock()
			s.m.connections.Dec()
		}()
		s.runWS(c, t)
	}()
}

// publishAttach tells the workers a viewer wants its session. reason is ""
// for a hello and "failover" for the watchdog's re-attach.
func (s *Server) publishAttach(ctx context.Context, key store.SessionKey, c *client, reason string) error {
	_, err := s.st.PublishControl(ctx, store.Command{
		Type:         store.CmdAttach,
		User:         key.User,
		Game:         key.Game,
		Viewer:       c.id,
		Edge:         s.cfg.ID,
		Cols:         int(c.cols.Load()),
		Rows:         int(c.rows.Load()),
		IP:           c.ip,
		ScreenReader: c.screenReader.Load(),
		Reason:       reason,
		Correlation:  uuid.NewString(),
	})
	return err
}
