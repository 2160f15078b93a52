package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/trellis-mud/trellis/controller"
	"github.com/trellis-mud/trellis/internal/dialguard"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/supervisor"
)

// Worker runs the telnet sessions of one process. Create it with New and
// run it with Run; its other methods are safe for concurrent use.
type Worker struct {
	cfg    Config
	st     *store.Store
	log    *slog.Logger
	id     string // instance id: lease owner, inbox and input channel
	source string // event source

	sup   *supervisor.Typed[store.SessionKey, *session]
	guard *dialguard.Guard // every game dial goes through it
	ctl   *controller.Controller
	out   *flusher
	m     *metrics
	http  http.Handler

	// sessions holds every session that holds a lease, from Start until its
	// final clean-up, for the renewer, the pruner and the drain.
	mu       sync.Mutex
	sessions map[store.SessionKey]*session

	draining  atomic.Bool
	renewedAt atomic.Int64 // unix nanos of the last successful renewal round
	fenced    atomic.Bool  // renewal is failing past the TTL

	// bg runs short tasks started from timers and event hooks (stopping a
	// session); Run waits for them. bgClosed refuses new ones after that.
	bgMu     sync.Mutex
	bg       sync.WaitGroup
	bgClosed bool
	running  atomic.Bool
	// life ends when Run returns; background tasks that retry against
	// Redis (a lost-output gap) stop with it.
	life     context.Context
	stopLife context.CancelFunc
}

// New checks cfg (after filling defaults) and returns a worker.
func New(cfg Config, st *store.Store, logger *slog.Logger) (*Worker, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	id := cfg.Name + "-" + uuid.NewString()[:8]
	guard, err := newGuard(cfg, st, logger)
	if err != nil {
		return nil, err
	}
	life, stopLife := context.WithCancel(context.Background())
	w := &Worker{
		guard:    guard,
		life:     life,
		stopLife: stopLife,
		cfg:      cfg,
		st:       st,
		id:       id,
		source:   "worker/" + id,
		log:      logger.With("worker", id),
		sessions: make(map[store.SessionKey]*session),
	}
	w.m = newMetrics(func() float64 { return float64(w.Sessions()) })
	w.out = newFlusher(w)
	w.sup = supervisor.NewTyped(supervisor.Template[store.SessionKey, *session]{
		Spec: supervisor.Spec{
			Restart:         supervisor.Transient,
			Intensity:       cfg.RestartIntensity,
			Period:          cfg.RestartPeriod,
			BackoffMin:      cfg.BackoffMin,
			BackoffMax:      cfg.BackoffMax,
			ShutdownTimeout: cfg.CloseTimeout,
		},
		Run:  func(ctx context.Context, _ store.SessionKey, s *session) error { return s.run(ctx) },
		Kill: func(_ store.SessionKey, s *session) { s.kill() },
	}, supervisor.Options{
		MaxChildren: cfg.MaxSessions,
		OnEvent:     w.onChildEvent,
		Logger:      w.log.With("component", "supervisor"),
	})
	w.ctl = controller.New(st, w, controller.Config{
		Consumer:      cfg.Name,
		Owner:         id,
		LeaseTTL:      cfg.LeaseTTL,
		ClaimMinIdle:  cfg.ClaimMinIdle,
		MaxDeliveries: cfg.MaxDeliveries,
		ReadBlock:     min(500*time.Millisecond, cfg.LeaseTTL/4),
		Registerer:    w.m.reg,
		Logger:        w.log,
	})
	w.http = w.adminHandler()
	return w, nil
}

// newGuard builds the dial guard: public addresses, plus the networks the
// operator allowed, minus Trellis's own Redis and admin endpoints.
func newGuard(cfg Config, st *store.Store, log *slog.Logger) (*dialguard.Guard, error) {
	allow, err := dialguard.ParsePrefixes(cfg.AllowNetworks)
	if err != nil {
		return nil, fmt.Errorf("TRELLIS_WORKER_ALLOW_NETWORKS: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// On a cluster every node it knows now, replicas and bus ports too.
	// Nodes added later are not refused until the worker restarts.
	eps, err := st.NodeEndpoints(ctx)
	if err != nil {
		log.Warn("dial guard: cluster nodes unknown; refusing the configured ones only", "err", err)
	}
	var deny []dialguard.Endpoint
	for _, ep := range eps {
		deny = append(deny, dialguard.Endpoint{HostPort: ep, What: "Redis"})
	}
	// The admin listener is on this host: its port is refused on every
	// local address. A malformed address is Run's error to report.
	if _, port, err := net.SplitHostPort(cfg.AdminListen); err == nil && port != "" && port != "0" {
		deny = append(deny, dialguard.Endpoint{HostPort: ":" + port, What: "worker admin listener"})
	}
	g, err := dialguard.New(ctx, allow, deny)
	if err != nil {
		return nil, fmt.Errorf("worker dial guard: %w", err)
	}
	return g, nil
}

// playerText makes a reason given by an operator safe to show: printable,
// one line, at most n bytes.
func playerText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// ID is the worker's instance id: its name plus 8 hex digits, unique per
// process. It owns leases and names the worker's inbox and input channel.
func (w *Worker) ID() string { return w.id }

// Sessions is the number of sessions running (including those stopping).
func (w *Worker) Sessions() int { return w.sup.Count() }

// Config returns the configuration in effect (defaults filled in).
func (w *Worker) Config() Config { return w.cfg }

// Run serves until ctx is done, then drains: it stops taking work, tells
// viewers, lets sessions run up to DrainTimeout, closes the rest and
// releases their leases. It returns once every goroutine it started has
// ended. It returns an error only if the admin listener cannot be opened
// or Run is called twice.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	var adminLn net.Listener
	if w.cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", w.cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("worker admin listen %s: %w", w.cfg.AdminListen, err)
		}
		adminLn = ln
	}

	// Two lifetimes: pulling work ends when ctx does; the plumbing that
	// running sessions need (output, leases, input, inbox) ends only after
	// the drain.
	plumbing, stopPlumbing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPlumbing()
	g, gctx := errgroup.WithContext(plumbing)

	input := w.st.NewSubscriber(inputHandler{w}, store.SubscriberOptions{
		Logger:  w.log,
		OnError: func(error) { w.m.redisErrors.WithLabelValues("receive_input").Inc() },
	})
	g.Go(func() error { return input.Run(gctx) })
	w.subscribeInput(gctx, input)
	g.Go(func() error { return w.out.run(gctx) })
	g.Go(func() error { return w.renewLeases(gctx) })
	g.Go(func() error { return w.readInbox(gctx) })
	g.Go(func() error { return w.pruneViewers(gctx) })
	if adminLn != nil {
		srv := &http.Server{Handler: w.http, ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("worker admin server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	w.event(store.EvWorkerStarted, store.SessionKey{}, "", map[string]any{"name": w.cfg.Name, "max_sessions": w.cfg.MaxSessions})
	w.log.Info("worker started", "max_sessions", w.cfg.MaxSessions)

	// The controller pulls until ctx is done (or the plumbing failed).
	pullCtx, stopPull := context.WithCancel(ctx)
	pullDone := make(chan struct{})
	go func() {
		defer close(pullDone)
		select {
		case <-gctx.Done():
			stopPull()
		case <-pullCtx.Done():
		}
	}()
	_ = w.ctl.Run(pullCtx)
	stopPull()
	<-pullDone

	w.drain()

	stopPlumbing()
	err := g.Wait()

	w.bgMu.Lock()
	w.bgClosed = true
	w.bgMu.Unlock()
	w.stopLife()
	w.bg.Wait()

	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if derr := w.st.DeleteInbox(cctx, w.id); derr != nil {
		w.log.Warn("delete inbox", "err", derr)
	}
	w.event(store.EvWorkerStopped, store.SessionKey{}, "", nil)
	w.log.Info("worker stopped")
	return err
}

// drain stops the sessions as a rolling update wants: viewers learn the
// worker is going, sessions get DrainTimeout to end on their own (a player
// quitting), then the rest are closed and their leases released so edges
// re-attach them on other workers.
func (w *Worker) drain() {
	w.draining.Store(true)
	n := w.sup.Count()
	w.event(store.EvWorkerDraining, store.SessionKey{}, "", map[string]any{"sessions": n})
	w.log.Info("draining", "sessions", n, "timeout", w.cfg.DrainTimeout)
	for _, s := range w.snapshot() {
		s.status(store.StateDraining, "this server is shutting down; your game will move to another one")
	}
	deadline := time.Now().Add(w.cfg.DrainTimeout)
	for w.sup.Count() > 0 && time.Now().Before(deadline) {
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
	}
	for _, s := range w.snapshot() {
		s.setEnd(endDrain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*w.cfg.CloseTimeout)
	defer cancel()
	if err := w.sup.Shutdown(ctx); err != nil {
		w.log.Error("sessions did not stop", "err", err)
	}
}

func (w *Worker) snapshot() []*session {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*session, 0, len(w.sessions))
	for _, s := range w.sessions {
		out = append(out, s)
	}
	return out
}

// goBackground runs f in a goroutine Run waits for, unless Run is past
// that point.
func (w *Worker) goBackground(f func()) bool {
	w.bgMu.Lock()
	defer w.bgMu.Unlock()
	if w.bgClosed {
		return false
	}
	w.bg.Go(f)
	return true
}

// Accepting implements controller.Sessions.
func (w *Worker) Accepting() bool {
	return !w.draining.Load() && !w.fenced.Load() && w.sup.Count() < w.cfg.MaxSessions
}

// Start implements controller.Sessions: it starts the session child for an
// attach under the lease the controller just acquired.
func (w *Worker) Start(ctx context.Context, cmd store.Command, l store.Lease) error {
	key := cmd.Key()
	// A session record left behind means its worker died or drained
	// without a normal end: viewers are told "reconnected".
	prev, had, err := w.st.GetSession(ctx, key)
	if err != nil {
		w.m.redisErrors.WithLabelValues("get_session").Inc()
	}
	failover := cmd.Reason == "failover" || (had && prev.Session != l.Session && l.Fence > 1)
	if err := w.st.KeepTranscript(ctx, key, w.cfg.TranscriptTTL); err != nil {
		w.m.redisErrors.WithLabelValues("keep_transcript").Inc()
	}
	s := newSession(w, cmd, l, failover)
	w.mu.Lock()
	if _, dup := w.sessions[key]; dup {
		w.mu.Unlock()
		return fmt.Errorf("session %s: %w", key, controller.ErrSessionEnding)
	}
	w.sessions[key] = s
	w.mu.Unlock()
	if _, err := w.sup.StartChild(key, s); err != nil {
		w.mu.Lock()
		delete(w.sessions, key)
		w.mu.Unlock()
		return err
	}
	return nil
}

// Deliver implements controller.Sessions: commands for a session running here.
func (w *Worker) Deliver(ctx context.Context, cmd store.Command) bool {
	s, ok := w.sup.Lookup(cmd.Key())
	if !ok {
		return false
	}
	switch cmd.Type {
	case store.CmdAttach:
		s.attach(cmd)
		w.recordViewers(s)
		w.event(store.EvSessionReattached, s.key, cmd.Correlation, map[string]any{
			"viewer": cmd.Viewer, "edge": cmd.Edge, "viewers": s.viewerCount(), "fence": s.lease.Fence,
		})
	case store.CmdDetach:
		last := s.detach(cmd.Viewer)
		w.recordViewers(s)
		if last {
			w.event(store.EvSessionIdle, s.key, cmd.Correlation, map[string]any{
				"viewer": cmd.Viewer, "grace": w.cfg.IdleGrace.String(),
			})
		} else {
			w.event(store.EvSessionDetached, s.key, cmd.Correlation, map[string]any{"viewer": cmd.Viewer})
		}
	case store.CmdStop:
		s.mu.Lock()
		s.stopReason = playerText(cmd.Reason, 200)
		s.mu.Unlock()
		w.endSession(s, endStop)
	case store.CmdResize:
		if cmd.Fence != 0 && cmd.Fence != s.lease.Fence {
			return true // meant for an older owner: moot
		}
		s.resize(cmd.Cols, cmd.Rows)
	}
	return true
}

// sessionStarted records a game connection that came up.
func (w *Worker) sessionStarted(s *session, state string, attempt int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	typ := store.EvSessionStarted
	if s.failover && attempt == 0 {
		typ = store.EvSessionFailover
		w.m.failovers.Inc()
	}
	w.event(typ, s.key, s.correlation, map[string]any{
		"fence": s.lease.Fence, "session": s.lease.Session, "state": state, "attempt": attempt,
	})
	err := w.st.PutSession(ctx, store.SessionInfo{
		Key: s.key, Worker: w.id, Session: s.lease.Session, Fence: s.lease.Fence,
		State: state, Started: s.started, Viewers: s.viewerCount(),
	})
	if err != nil {
		w.m.redisErrors.WithLabelValues("put_session").Inc()
	}
}

// recordViewers keeps the session record's viewer count current for
// `trellis sessions`.
func (w *Worker) recordViewers(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.st.SetSessionViewers(ctx, s.key, s.lease.Fence, s.viewerCount()); err != nil {
		w.m.redisErrors.WithLabelValues("set_viewers").Inc()
	}
}

func (w *Worker) saveMSSP(game string, mssp map[string][]string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w.st.SetGameMSSP(ctx, game, mssp, time.Hour); err != nil {
		w.m.redisErrors.WithLabelValues("set_mssp").Inc()
	}
}

// event appends a lifecycle event; failures are counted and logged, never
// fatal to the session.
func (w *Worker) event(typ string, key store.SessionKey, correlation string, data any) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := w.st.AppendEvent(ctx, store.NewEvent(typ, w.source, key, correlation, data)); err != nil {
		w.m.redisErrors.WithLabelValues("append_event").Inc()
		w.log.Debug("append event failed", "type", typ, "err", err)
	}
}
