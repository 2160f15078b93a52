package demogame

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mud/trellis/internal/backoff"
)

// Server is the demo game. Create it with New and run it with Serve (or use
// Start in tests). Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	world   *world
	started time.Time
	tls     *tls.Config // nil: plain telnet
	tlsErr  error
	tlsOnce sync.Once

	accepted atomic.Int64
	open     atomic.Int64
	panics   atomic.Int64 // sessions that panicked; tests assert none did

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	shutdown bool

	wg sync.WaitGroup // one per connection goroutine
}

// New returns a server for cfg, with defaults filled in for zero fields.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		world:   newWorld(),
		started: time.Now(),
		conns:   make(map[net.Conn]struct{}),
	}
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection and waits for their goroutines before returning. It
// returns nil after ctx is done, or the error that stopped Accept. Call it
// at most once per Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.loadTLS(); err != nil {
		ln.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	err := s.acceptLoop(ctx, ln)
	ln.Close()
	s.closeAll()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	retry := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off and retry,
			// as net/http does, rather than spin or give up.
			d := retry.Next()
			s.log.Warn("demogame: accept failed, retrying", "err", err, "backoff", d)
			_ = backoff.Sleep(ctx, d) // ctx's end closes ln: the next Accept returns
			continue
		}
		retry.Reset()
		if !s.track(conn) {
			conn.Close()
			continue
		}
		s.accepted.Add(1)
		s.wg.Add(1)
		go s.handle(conn)
	}
}

// loadTLS loads the TLS key pair of the config, once.
func (s *Server) loadTLS() error {
	s.tlsOnce.Do(func() { s.tls, s.tlsErr = s.cfg.loadTLS() })
	return s.tlsErr
}

// track registers conn so shutdown can close it; false once shutting down.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[conn] = struct{}{}
	s.open.Add(1)
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.open.Add(-1)
}

// closeAll hangs up every connection; their goroutines see the error and end.
func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) handle(conn net.Conn) {
	defer s.wg.Done()
	defer s.untrack(conn)
	defer conn.Close()
	log := s.log.With("remote", conn.RemoteAddr().String())
	defer func() {
		// One broken session must not take the game down for everyone.
		if r := recover(); r != nil {
			s.panics.Add(1)
			log.Error("demogame: session panicked", "panic", r)
		}
	}()
	log.Debug("demogame: connected")
	conn, peer, err := s.prepare(conn)
	if err != nil {
		log.Info("demogame: connection refused before telnet", "err", err)
		return
	}
	if peer != "" {
		log = log.With("player", peer)
	}
	defer conn.Close() // the TLS layer, if any: it sends close_notify
	sess := newSession(s, conn, log)
	sess.proxyIP = peer
	err = sess.run()
	log.Debug("demogame: disconnected", "err", err)
}

// Conns returns the number of connections open right now.
func (s *Server) Conns() int { return int(s.open.Load()) }

// Accepted returns the number of connections accepted since New.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Players returns the names of the logged-in players, sorted.
func (s *Server) Players() []string {
	who := s.world.who()
	names := make([]string, len(who))
	for i, w := range who {
		names[i] = w.name
	}
	return names
}

// Start listens on addr (such as "127.0.0.1:0") and serves in a goroutine it
// owns. It returns the server, the address actually bound, and a stop
// function that shuts the server down and waits for it; stop may be called
// more than once. Cancelling ctx also stops the server.
func Start(ctx context.Context, cfg Config, addr string) (*Server, string, func(), error) {
	srv := New(cfg)
	if err := srv.loadTLS(); err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("demogame: listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			srv.log.Error("demogame: serve stopped", "err", err)
		}
	}()
	srv.log.Debug("demogame: listening", "addr", ln.Addr().String(), "bench", srv.cfg.Bench)
	stop := func() {
		cancel()
		<-done
	}
	return srv, ln.Addr().String(), stop, nil
}
