package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// endReason says why the worker itself ended a session. The first reason
// set wins: a session stopped for idleness that then loses its lease is
// still reported as idle.
type endReason int32

const (
	endNone      endReason = iota
	endGameQuit            // the game closed the connection
	endFatal               // nothing to retry (unknown game, bad charset)
	endIdle                // no viewer for IdleGrace
	endStop                // a stop command
	endLeaseLost           // another worker owns the key now
	endSelfFence           // leases could not be renewed in time
	endDrain               // the worker is shutting down
)

// Sizes of the game read buffer: it starts small (idle sessions are the
// common case) and grows while reads fill it (a flood).
const (
	minReadBuffer = 2 << 10
	maxReadBuffer = 64 << 10
	// maxWriteQueue bounds bytes waiting to be written to a game that does
	// not read; past it the connection is dropped and redialled.
	maxWriteQueue = 256 << 10
	writeTimeout  = 10 * time.Second
)

// viewer is one browser connection watching the session.
type viewer struct {
	edge       string
	cols, rows int
}

// session is one (user, game): the supervisor child's arguments and the
// state that outlives a single game connection (lease, viewers, output).
type session struct {
	w           *Worker
	key         store.SessionKey
	lease       store.Lease // fixed for the session's life; restarts keep it
	correlation string      // the attach that started it
	failover    bool        // it replaces a session of a worker that died or drained
	ip          string      // the player's address, for MNES
	started     time.Time

	validUntil atomic.Int64 // unix nanos: the lease surely lives until then
	end        atomic.Int32 // endReason
	lost       atomic.Bool  // the lease is known lost
	fatalMsg   atomic.Pointer[string]

	out outbox

	mu       sync.Mutex
	viewers  map[string]viewer
	cols     int
	rows     int
	idle     *time.Timer
	idleGen  int
	conn     net.Conn       // nil between game connections
	eng      *telnet.Engine // with conn
	wq       []byte         // bytes waiting for the writer
	writing  bool           // a writer goroutine runs
	writers  sync.WaitGroup // the writer goroutines of the current connection
	everLive bool           // a game connection was up once
}

func newSession(w *Worker, cmd store.Command, l store.Lease, failover bool) *session {
	s := &session{
		w:           w,
		key:         cmd.Key(),
		lease:       l,
		correlation: cmd.Correlation,
		failover:    failover,
		ip:          cmd.IP,
		started:     time.Now(),
		viewers:     make(map[string]viewer, 1),
		cols:        cmd.Cols,
		rows:        cmd.Rows,
	}
	s.validUntil.Store(l.Acquired.Add(w.cfg.LeaseTTL).UnixNano())
	if cmd.Viewer != "" {
		s.viewers[cmd.Viewer] = viewer{edge: cmd.Edge, cols: cmd.Cols, rows: cmd.Rows}
	}
	return s
}

// setEnd records why the worker ends s; it reports whether r was the first.
func (s *session) setEnd(r endReason) bool {
	return s.end.CompareAndSwap(int32(endNone), int32(r))
}

func (s *session) endReason() endReason { return endReason(s.end.Load()) }

// emit queues one output entry for the flusher; it never blocks.
func (s *session) emit(o store.Output) {
	queue, urgent, dropped := s.out.push(o, s.w.cfg.FlushBytes, s.w.cfg.SessionBuffer)
	s.afterPush(queue, urgent, dropped)
}

func (s *session) afterPush(queue, urgent bool, dropped int) {
	if dropped > 0 {
		s.w.m.lostBytes.Add(float64(dropped))
	}
	if queue {
		s.w.out.enqueue(s, urgent)
	} else if urgent {
		notify(s.w.out.urgent)
	}
}

func (s *session) status(state, msg string) {
	s.emit(store.Output{Kind: store.OutStatus, State: state, Text: msg, Worker: s.w.id})
}

// run is the body of the supervisor child: one game connection, from dial
// to hang-up. The supervisor calls it again (same session) after a failure.
func (s *session) run(ctx context.Context) error {
	attempt := supervisor.Attempt(ctx)
	if attempt == 0 {
		// Restarts got their connecting status with the retry delay.
		s.status(store.StateConnecting, "connecting to the game")
	}
	game, err := s.w.st.GetGame(ctx, s.key.Game)
	if errors.Is(err, store.ErrUnknownGame) {
		return s.fatal("this game is no longer registered")
	}
	if err != nil {
		return fmt.Errorf("look up game %s: %w", s.key.Game, err)
	}
	conn, err := s.dial(ctx, game)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cols, rows := s.cols, s.rows
	s.mu.Unlock()
	opts := telnet.Options{
		ClientName:    s.w.cfg.ClientName,
		ClientVersion: s.w.cfg.ClientVersion,
		Charset:       game.Charset,
		MNES:          game.MNES,
		Width:         cols,
		Height:        rows,

		NoCompression: s.w.cfg.RefuseCompression,
	}
	if game.MNES && s.ip != "" {
		opts.Env = map[string]string{"IPADDRESS": s.ip}
	}
	eng, err := telnet.New(opts)
	if err != nil {
		conn.Close()
		return s.fatal(fmt.Sprintf("game charset: %v", err))
	}

	s.mu.Lock()
	s.conn, s.eng = conn, eng
	reconnect := s.everLive || s.failover
	s.everLive = true
	s.mu.Unlock()
	// Cancelling the child (stop, drain, idle, lease lost) wakes the
	// blocked Read without closing the socket under the writer's feet.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })

	state := store.StateConnected
	if reconnect {
		state = store.StateReconnected
	}
	s.w.m.starts.Inc()
	s.status(state, "connected to "+game.Name)
	s.w.sessionStarted(s, state, attempt)

	err = s.read(ctx, conn, eng)
	stop()

	s.mu.Lock()
	s.conn, s.eng, s.wq = nil, nil, nil
	s.mu.Unlock()
	s.writers.Wait()
	conn.Close()
	eng.Close()

	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, io.EOF):
		s.setEnd(endGameQuit)
		return supervisor.ErrNormal
	default:
		return fmt.Errorf("game connection %s: %w", game.Addr(), err)
	}
}

// fatal ends the session for good with state failed and msg.
func (s *session) fatal(msg string) error {
	s.fatalMsg.Store(&msg)
	s.setEnd(endFatal)
	return fmt.Errorf("%s: %w", msg, supervisor.ErrNormal)
}

func (s *session) dial(ctx context.Context, game store.Game) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.w.cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	var (
		conn net.Conn
		err  error
	)
	if game.TLS {
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{
			ServerName:         game.Host,
			InsecureSkipVerify: game.TLSInsecure, //nolint:gosec // the game's admin opted in for a self-signed game
			MinVersion:         tls.VersionTLS12,
		}}
		conn, err = td.DialContext(ctx, "tcp", game.Addr())
	} else {
		conn, err = d.DialContext(ctx, "tcp", game.Addr())
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", game.Addr(), err)
	}
	return conn, nil
}

// read pumps the game's bytes through the telnet engine into the outbox
// until the connection fails or is interrupted.
func (s *session) read(ctx context.Context, conn net.Conn, eng *telnet.Engine) error {
	buf := make([]byte, minReadBuffer)
	var (
		evs     []telnet.Event
		replies []byte
	)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			s.mu.Lock()
			var derr error
			evs, derr = eng.Decode(buf[:n], evs[:0])
			replies = eng.Replies(replies[:0])
			s.mu.Unlock()
			if len(replies) > 0 {
				s.send(replies)
			}
			s.handle(evs)
			clear(evs) // drop references to texts already queued
			if derr != nil {
				return fmt.Errorf("decode game output: %w", derr)
			}
			s.waitForRoom(ctx)
			switch {
			case n == len(buf) && len(buf) < maxReadBuffer:
				buf = make([]byte, 2*len(buf))
			case n < len(buf)/16 && len(buf) > minReadBuffer:
				buf = make([]byte, minReadBuffer)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("read interrupted: %w", err)
			}
			return err
		}
	}
}

// waitForRoom blocks the game reader while this session's outbox is more
// than backpressureFactor*FlushBytes behind and Redis is healthy, so a
// flooding game is slowed by TCP flow control instead of losing output.
// While Redis is failing it returns at once: the outbox then bounds memory
// by dropping the oldest text (and records a gap).
func (s *session) waitForRoom(ctx context.Context) {
	failed := s.w.out.failedSignal()
	if s.w.out.failing.Load() {
		return
	}
	room := s.out.room(backpressureFactor * s.w.cfg.FlushBytes)
	if room == nil {
		return
	}
	select {
	case <-room:
	case <-ctx.Done():
	case <-failed: // Redis went away while we waited: keep reading.
	}
}

// handle turns telnet events into output entries.
func (s *session) handle(evs []telnet.Event) {
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case telnet.EventText:
			s.emit(store.Output{Kind: store.OutText, Text: ev.Text})
		case telnet.EventPrompt:
			s.afterPush(s.out.markPrompt(s.w.cfg.FlushBytes, s.w.cfg.SessionBuffer))
		case telnet.EventEcho:
			s.emit(store.Output{Kind: store.OutEcho, Echo: ev.Echo})
		case telnet.EventGMCP:
			s.emit(store.Output{Kind: store.OutGMCP, Package: ev.Package, Data: ev.Data})
		case telnet.EventMSSP:
			s.w.saveMSSP(s.key.Game, ev.MSSP)
		}
	}
}

// send queues p for the game. Writes are serialised by one short-lived
// writer goroutine per burst, so a game that reads slowly delays nobody
// else, and an idle session costs no goroutine. It returns false when there
// is no connection (between redials) or the game stopped reading.
func (s *session) send(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(p)
}

func (s *session) sendLocked(p []byte) bool {
	if s.conn == nil {
		return false
	}
	if len(s.wq)+len(p) > maxWriteQueue {
		// The game does not read: drop the connection rather than hold an
		// unbounded queue; the supervisor redials.
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		return false
	}
	s.wq = append(s.wq, p...)
	if !s.writing {
		s.writing = true
		conn := s.conn
		s.writers.Go(func() { s.write(conn) })
	}
	return true
}

func (s *session) write(conn net.Conn) {
	var buf []byte
	for {
		s.mu.Lock()
		if len(s.wq) == 0 || s.conn != conn {
			s.writing = false
			s.wq = nil
			s.mu.Unlock()
			return
		}
		buf, s.wq = s.wq, buf[:0]
		s.mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(buf); err != nil {
			// The reader sees the broken connection too; make sure it does.
			_ = conn.SetReadDeadline(time.Unix(1, 0))
			s.mu.Lock()
			s.writing = false
			s.wq = nil
			s.mu.Unlock()
			return
		}
	}
}

// input sends one line typed by the player to the game and records it in
// the transcript. While the game echoes (a password prompt) the transcript
// gets a redacted entry: the text never reaches Redis or a log.
func (s *session) input(text string) bool {
	s.mu.Lock()
	if s.eng == nil {
		s.mu.Unlock()
		return false
	}
	secret := s.eng.ServerEcho()
	line := s.eng.Line(nil, text)
	ok := s.sendLocked(line)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if secret {
		s.emit(store.Output{Kind: store.OutInput, Redacted: true})
	} else {
		s.emit(store.Output{Kind: store.OutInput, Text: text})
	}
	return true
}

// gmcp sends a GMCP message from the client to the game.
func (s *session) gmcp(pkg string, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return false
	}
	msg, ok := s.eng.GMCP(nil, pkg, data)
	return ok && s.sendLocked(msg)
}

// resizeLocked applies a window size (the latest viewer's wins).
func (s *session) resizeLocked(cols, rows int) {
	if cols <= 0 || rows <= 0 || (cols == s.cols && rows == s.rows) {
		return
	}
	s.cols, s.rows = cols, rows
	if s.eng != nil {
		if naws := s.eng.Resize(nil, cols, rows); len(naws) > 0 {
			s.sendLocked(naws)
		}
	}
}

func (s *session) resize(cols, rows int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resizeLocked(cols, rows)
}

// attach adds a viewer (a page reload, a second tab) and cancels the idle
// grace.
func (s *session) attach(cmd store.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd.Viewer != "" {
		s.viewers[cmd.Viewer] = viewer{edge: cmd.Edge, cols: cmd.Cols, rows: cmd.Rows}
	}
	s.stopIdleLocked()
	s.resizeLocked(cmd.Cols, cmd.Rows)
}

// detach removes a viewer and reports whether it was the last one, in
// which case the idle grace has started.
func (s *session) detach(viewerID string) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.viewers[viewerID]; !ok {
		return false
	}
	delete(s.viewers, viewerID)
	if len(s.viewers) > 0 {
		return false
	}
	s.startIdleLocked()
	return true
}

// forgetEdges removes viewers held by edges that died and reports whether
// the session became idle and whether any viewer was removed.
func (s *session) forgetEdges(dead map[string]bool) (idle, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.viewers)
	for id, v := range s.viewers {
		if dead[v.edge] {
			delete(s.viewers, id)
		}
	}
	changed = len(s.viewers) != n
	if n > 0 && len(s.viewers) == 0 {
		s.startIdleLocked()
		return true, changed
	}
	return false, changed
}

func (s *session) edges(into map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.viewers {
		if v.edge != "" {
			into[v.edge] = false
		}
	}
}

func (s *session) viewerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.viewers)
}

// startIdleLocked arms the idle grace. The timer costs no goroutine while
// it waits; a generation number makes a timer that fires while a viewer
// re-attaches harmless.
func (s *session) startIdleLocked() {
	s.stopIdleLocked()
	gen := s.idleGen
	s.idle = time.AfterFunc(s.w.cfg.IdleGrace, func() {
		s.mu.Lock()
		fire := gen == s.idleGen && len(s.viewers) == 0
		s.mu.Unlock()
		if fire {
			s.w.endSession(s, endIdle)
		}
	})
}

func (s *session) stopIdleLocked() {
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
}

// kill forces the current game connection shut (the supervisor's kill hook
// for a child that ignored its cancelled context).
func (s *session) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
}
