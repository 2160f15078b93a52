package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/trellis-mud/trellis/internal/dialguard"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// Sizes of the game read buffer: it starts small (idle sessions are the
// common case) and grows while reads fill it (a flood).
const (
	minReadBuffer = 2 << 10
	maxReadBuffer = 64 << 10
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
	w            *Worker
	key          store.SessionKey
	lease        store.Lease // fixed for the session's life; restarts keep it
	correlation  string      // the attach that started it
	failover     bool        // it replaces a session of a worker that died or drained
	ip           string      // the player's address, for MNES
	screenReader bool        // the page that started it is in screen-reader mode (MTTS bit 64)
	started      time.Time

	validUntil atomic.Int64 // unix nanos: the lease surely lives until then
	// renewAt (unix nanos) is when the lease is next renewed: once per
	// renewal interval, at a phase of its own (see renewLeases).
	renewAt atomic.Int64
	// keptAt (unix nanos) is when a renewal last extended the transcript's
	// expiry (0: never), and keepDue says that the flusher has written an
	// entry that may have created a transcript key since (a GMCP or MSDP
	// hash, the session record's state): the next renewal extends it.
	keptAt   atomic.Int64
	keepDue  atomic.Bool
	end      atomic.Int32 // endReason
	lost     atomic.Bool  // the lease is known lost
	fatalMsg atomic.Pointer[string]
	fatalErr error // the full error behind fatalMsg, for the event log; set before the child returns

	out outbox

	mu       sync.Mutex
	viewers  map[string]viewer
	cols     int
	rows     int
	idle     *time.Timer
	idleGen  int
	conn     net.Conn       // nil between game connections
	eng      *telnet.Engine // with conn
	wq       []wseg         // bytes waiting for the writer, in order
	wqBytes  int            // their total
	writing  bool           // a writer goroutine runs
	writers  sync.WaitGroup // the writer goroutines of the current connection
	everLive bool           // a game connection was up once
	lastExit error          // why the last game connection ended (restart events carry none)
	// stopReason is the reason a stop command gave, shown to the player.
	stopReason string
	// typeAhead decides what the transcript shows of each typed line;
	// holdTimer re-judges held lines when a prompt settles or a hold ends.
	typeAhead *typeAhead
	holdTimer *time.Timer
	gmcpState *gmcpState
	msdpState *gmcpState // the same bound, over MSDP variables
	// msdpDropLogged: an MSDP block cut short was logged (once a session).
	msdpDropLogged bool
	// mxp decodes MXP (or strips forged command links) from the text of
	// the current game connection; see mxp.go.
	mxp mxpFilter
	// notReading is set when the game's write queue overflowed, so the
	// interrupted read reports why.
	notReading bool
}

func newSession(w *Worker, cmd store.Command, l store.Lease, failover bool) *session {
	s := &session{
		w:            w,
		key:          cmd.Key(),
		lease:        l,
		correlation:  cmd.Correlation,
		failover:     failover,
		ip:           cmd.IP,
		screenReader: cmd.ScreenReader,
		started:      time.Now(),
		viewers:      make(map[string]viewer, 1),
		cols:         cmd.Cols,
		rows:         cmd.Rows,
		gmcpState:    newGMCPState(w.cfg.GMCPMaxPackages, w.cfg.GMCPMaxBytes),
		msdpState:    newGMCPState(w.cfg.MSDPMaxVars, w.cfg.MSDPMaxBytes),
	}
	s.validUntil.Store(l.Acquired.Add(w.cfg.LeaseTTL).UnixNano())
	s.renewAt.Store(firstRenewal(l.Acquired, w.cfg.LeaseTTL/3).UnixNano())
	if cmd.Viewer != "" {
		s.viewers[cmd.Viewer] = viewer{edge: cmd.Edge, cols: cmd.Cols, rows: cmd.Rows}
	}
	return s
}

// emit queues one output entry for the flusher; it never blocks.
func (s *session) emit(o store.Output) {
	queue, urgent, dropped := s.out.push(o, s.w.cfg.FlushBytes, s.outLimit())
	s.afterPush(queue, urgent, dropped)
}

// outLimit is the size past which the outbox drops its oldest text. While
// Redis is away that is SESSION_BUFFER. While it is healthy nothing may be
// dropped: the reader stops above the backpressure mark, but the slice it
// has just decoded still lands (telnet.MaxSliceText of text, plus one
// whole subnegotiation that ended in it). The outbox may hold that much
// beyond the mark, never more.
func (s *session) outLimit() int {
	c := &s.w.cfg
	if s.w.out.failing.Load() {
		return c.SessionBuffer
	}
	return max(c.SessionBuffer, backpressureFactor*c.FlushBytes+telnet.MaxSliceText(c.FlushBytes)+c.MaxSubneg+
		maxSliceEvents(c.FlushBytes)*entryOverhead)
}

// maxSliceEvents bounds the entries one slice can make: the shortest that
// makes a new entry each time is a character and a prompt mark (IAC GA),
// three bytes, and a slice parses at most MaxSliceText/3 bytes.
func maxSliceEvents(flushBytes int) int { return telnet.MaxSliceText(flushBytes) / 3 / 3 }

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
//
// It is split in three so that an idle session's goroutine waits for its
// game with a shallow stack. The runtime halves a parked goroutine's stack
// at a GC only while less than a quarter of it is in use. run was one
// function with a 1.2 KiB frame (the lookup, the dial, the engine's
// options, the hang-up), so the frames under the wait came to about 3 KiB
// with the runtime's guard, and every reader stayed at the 8 KiB its
// telnet processing had grown it to. connect returns before the wait and
// hangUp runs after it, so their frames are not on the stack meanwhile.
func (s *session) run(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	err = s.read(ctx, c.conn, c.eng)
	return s.hangUp(ctx, c, err)
}

// link is one game connection as connect made it.
type link struct {
	conn net.Conn
	eng  *telnet.Engine
	addr string
	stop func() bool // the AfterFunc that interrupts the read
}

// connect looks the game up, dials it and starts the telnet engine.
//
//go:noinline
func (s *session) connect(ctx context.Context) (*link, error) {
	attempt := supervisor.Attempt(ctx)
	if attempt == 0 {
		// Restarts got their connecting status with the retry delay.
		s.status(store.StateConnecting, "connecting to the game")
	}
	game, err := s.w.st.GetGame(ctx, s.key.Game)
	if errors.Is(err, store.ErrUnknownGame) {
		return nil, s.fatal("this game is no longer registered", nil)
	}
	if err != nil {
		return nil, fmt.Errorf("look up game %s: %w", s.key.Game, err)
	}
	prompt, err := passwordPrompt(game)
	if err != nil {
		return nil, s.fatal("this game's registry entry is invalid", err)
	}
	conn, err := s.dial(ctx, game)
	var cfgErr *linkConfigError
	switch {
	case errors.Is(err, dialguard.ErrRefused):
		// An operator decision, not a network blip: redialling cannot help.
		return nil, s.fatal("this game's address is not allowed on this server", err)
	case errors.As(err, &cfgErr):
		return nil, s.fatal("this game's TLS settings cannot be used on this server", err)
	case tlsRefused(err):
		// The game answered with a certificate we refuse: redialling gets
		// the same one.
		return nil, s.fatal(tlsReason(err), err)
	case err != nil:
		return nil, err
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
		SliceBytes:    s.w.cfg.FlushBytes,
		MaxSubneg:     s.w.cfg.MaxSubneg,
		KeepControls:  game.KeepControls,
		MXP:           game.MXP,
		TLS:           game.TLS,
		ScreenReader:  s.screenReader,
	}
	if game.MNES && s.ip != "" {
		opts.Env = map[string]string{"IPADDRESS": s.ip}
	}
	eng, err := telnet.New(opts)
	if err != nil {
		conn.Close()
		return nil, s.fatal("this game's charset is not supported", err)
	}

	s.mu.Lock()
	s.conn, s.eng = conn, eng
	s.typeAhead = newTypeAhead(prompt, s.w.cfg.TypeaheadHold)
	s.typeAhead.setMode(game.EchoMode())
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

	return &link{conn: conn, eng: eng, addr: game.Addr(), stop: stop}, nil
}

// hangUp ends the game connection read ended with err, and says what the
// supervisor is to make of it.
//
//go:noinline
func (s *session) hangUp(ctx context.Context, c *link, err error) error {
	conn, eng := c.conn, c.eng
	c.stop()

	s.mu.Lock()
	s.conn, s.eng, s.wq, s.wqBytes = nil, nil, nil, 0
	// Lines still held were written to a connection that is gone; no
	// prompt will say what they were.
	held := s.typeAhead.flush()
	s.stopHoldLocked()
	s.mu.Unlock()
	s.record(held)
	s.writers.Wait()
	// A connection cut because the lease went leaves what the game sent
	// and nobody read in the kernel's queue: lost, so it joins the gap the
	// player is shown (lines missing at the cut are never silent).
	if s.endReason().leaseGone() {
		s.out.unread(unreadBytes(conn))
	}
	conn.Close()
	eng.Close()

	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, io.EOF):
		s.setEnd(endGameQuit)
		return supervisor.ErrNormal
	case errors.Is(err, errGameNotReading):
		return err
	default:
		return fmt.Errorf("game connection %s: %w", c.addr, err)
	}
}

// fatal ends the session for good with state failed: the player reads
// msg, the event log gets cause too.
func (s *session) fatal(msg string, cause error) error {
	s.fatalErr = cause
	s.fatalMsg.Store(&msg)
	s.setEnd(endFatal)
	if cause != nil {
		return fmt.Errorf("%s: %w: %w", msg, cause, supervisor.ErrNormal)
	}
	return fmt.Errorf("%s: %w", msg, supervisor.ErrNormal)
}

// read pumps the game's bytes through the telnet engine into the outbox
// until the connection fails or is interrupted. Each read is decoded in
// slices of at most FlushBytes of telnet stream (counted after MCCP2
// inflation), and the reader waits for room between slices: a compressed
// read that inflates to megabytes is handled a slice at a time, with
// backpressure and the flusher's fairness applying between slices, never
// as one huge event.
func (s *session) read(ctx context.Context, conn net.Conn, eng *telnet.Engine) error {
	// A game is waited for holding no buffer (readPooled) and a buffer
	// grows while reads fill it; through TLS (no raw descriptor) the
	// buffer is kept and read into with conn.Read.
	raw := rawReader(conn)
	var buf []byte
	s.mxp.reset(&s.w.cfg)
	defer func() { putReadBuf(&buf) }()
	d := &decoder{lim: s.outputLimiter()}
	idle := d.idle
	size := minReadBuffer
	for {
		var (
			n   int
			err error
		)
		if raw != nil {
			n, err = readPooled(raw, &buf, size, idle)
		} else {
			if len(buf) != size {
				buf = make([]byte, size)
			}
			n, err = conn.Read(buf)
		}
		if n > 0 {
			if derr := s.decode(ctx, eng, d, buf[:n]); derr != nil {
				return derr
			}
			switch {
			case n == len(buf) && size < maxReadBuffer:
				size *= 2
				putReadBuf(&buf)
			case n < len(buf)/16 && size > minReadBuffer:
				size = minReadBuffer
				putReadBuf(&buf)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.mu.Lock()
				stuck := s.notReading
				s.mu.Unlock()
				if stuck {
					return errGameNotReading
				}
				return fmt.Errorf("read interrupted: %w", err)
			}
			return err
		}
	}
}

// decoder is the read loop's state between slices: buffers it reuses.
type decoder struct {
	evs     []telnet.Event
	replies []byte
	lim     *rate.Limiter
}

// Capacities of the decoder's buffers an idle session keeps: a login or a
// room description makes tens of events (about 120 bytes each), and a
// session that kept that array idled with 2-3 KiB it no longer used.
const (
	idleEvents  = 4
	idleReplies = 64
)

// idle drops the decoder's buffers that grew past what the next few
// messages need; readPooled calls it before the session waits.
func (d *decoder) idle() {
	if cap(d.evs) > idleEvents {
		d.evs = nil
	}
	if cap(d.replies) > idleReplies {
		d.replies = nil
	}
}

// decode works through p, one read's bytes, a slice at a time. It is not
// inlined into read: its frame and those of the processing it calls are
// off the stack while read waits for the game (see run).
//
//go:noinline
func (s *session) decode(ctx context.Context, eng *telnet.Engine, d *decoder, p []byte) error {
	for len(p) > 0 {
		s.mu.Lock()
		var (
			derr error
			used int
		)
		d.evs, used, derr = eng.DecodeSlice(p, d.evs[:0])
		d.replies = eng.Replies(d.replies[:0])
		s.mu.Unlock()
		p = p[used:]
		if len(d.replies) > 0 {
			s.send(d.replies)
		}
		produced := 0
		for i := range d.evs {
			produced += len(d.evs[i].Text) + len(d.evs[i].Data) + eventCost
		}
		s.handle(d.evs)
		clear(d.evs) // drop references to texts already queued
		if derr != nil {
			return fmt.Errorf("decode game output: %w", derr)
		}
		s.waitForRoom(ctx)
		if d.lim != nil && produced > 0 {
			waitRate(ctx, d.lim, produced)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read interrupted: %w", context.Cause(ctx))
		}
	}
	return nil
}

// eventCost is what one event weighs against OUTPUT_RATE beyond its bytes:
// each becomes an entry, and an entry's script call, its message and its
// frame cost about as much as a kilobyte of text. Without it a
// game sending thousands of tiny GMCP messages a second would pass the
// cap while costing Redis and the edge far more than a text flood.
const eventCost = 1024

// outputLimiter is the session's output rate bound (nil: unlimited). Its
// burst holds at least one slice's worth, so a single slice never waits
// for more than the rate allows.
func (s *session) outputLimiter() *rate.Limiter {
	c := &s.w.cfg
	if c.OutputRate < 0 {
		return nil
	}
	burst := max(c.OutputRate, telnet.MaxSliceText(c.FlushBytes)+6*c.MaxSubneg)
	return rate.NewLimiter(rate.Limit(c.OutputRate), burst)
}

// waitRate waits until the limiter allows n more bytes, or ctx is done.
func waitRate(ctx context.Context, lim *rate.Limiter, n int) {
	r := lim.ReserveN(time.Now(), min(n, lim.Burst()))
	d := r.Delay()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// errGameNotReading ends a connection whose game stopped reading: bytes
// for it passed GameWriteQueue.
var errGameNotReading = errors.New("the game stopped reading its input")

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

// handle turns telnet events into output entries, and tells the
// type-ahead judge what the game printed, so held input lines are recorded
// right after the prompt that shows what they were.
func (s *session) handle(evs []telnet.Event) {
	now := time.Now()
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case telnet.EventText:
			text := s.mxpText(ev.Text)
			if text == "" {
				continue // all markup still held, or stripped
			}
			// The text and the records it settles are pushed before the
			// flusher is told, so that they go in one write: a typed
			// line's record and the game's answer to it are one append
			// (lua/append.lua), not two.
			queue, urgent, dropped := s.out.push(store.Output{Kind: store.OutText, Text: text}, s.w.cfg.FlushBytes, s.outLimit())
			s.mu.Lock()
			recs := s.typeAhead.text(text, now)
			s.mu.Unlock()
			for _, r := range recs {
				q, u, d := s.out.push(recordOutput(r), s.w.cfg.FlushBytes, s.outLimit())
				queue, urgent, dropped = queue || q, urgent || u, dropped+d
			}
			s.afterPush(queue, urgent, dropped)
			s.judgeHeld(now)
		case telnet.EventPrompt:
			s.afterPush(s.out.markPrompt(s.w.cfg.FlushBytes, s.outLimit()))
			s.mu.Lock()
			s.typeAhead.prompt()
			s.mu.Unlock()
			s.judgeHeld(now)
		case telnet.EventEcho:
			s.emit(store.Output{Kind: store.OutEcho, Echo: ev.Echo})
			s.mu.Lock()
			recs := s.typeAhead.setEcho(ev.Echo)
			s.mu.Unlock()
			s.record(recs)
		case telnet.EventGMCP:
			drop, first := s.gmcpState.put(ev.Package, len(ev.Data))
			s.emit(store.Output{Kind: store.OutGMCP, Package: ev.Package, Data: ev.Data, DropGMCP: drop})
			if first {
				s.w.log.Info("GMCP state of a session reached its bound; oldest packages are forgotten",
					"key", s.key.String(), "max_packages", s.w.cfg.GMCPMaxPackages, "max_bytes", s.w.cfg.GMCPMaxBytes)
				s.w.event(store.EvSessionGMCPTrimmed, s.key, s.correlation, map[string]any{
					"max_packages": s.w.cfg.GMCPMaxPackages, "max_bytes": s.w.cfg.GMCPMaxBytes, "dropped": drop,
				})
			}
		case telnet.EventMSDP:
			drop, first := s.msdpState.put(ev.Var, len(ev.Data))
			s.emit(store.Output{Kind: store.OutMSDP, Package: ev.Var, Data: ev.Data, DropMSDP: drop})
			if first {
				s.w.log.Info("MSDP state of a session reached its bound; oldest variables are forgotten",
					"key", s.key.String(), "max_vars", s.w.cfg.MSDPMaxVars, "max_bytes", s.w.cfg.MSDPMaxBytes)
				s.w.event(store.EvSessionMSDPTrimmed, s.key, s.correlation, map[string]any{
					"max_vars": s.w.cfg.MSDPMaxVars, "max_bytes": s.w.cfg.MSDPMaxBytes, "dropped": drop,
				})
			}
		case telnet.EventMSDPDropped:
			// Only the block was bad; the telnet stream is intact, so the
			// connection stays. The browser sees nothing of it.
			s.w.m.msdpDropped.WithLabelValues(msdpDropReason(ev.Reason)).Inc()
			if !s.msdpDropLogged {
				s.msdpDropLogged = true
				s.w.log.Info("game sent malformed MSDP; the rest of the block was dropped (logged once a session)",
					"key", s.key.String(), "var", ev.Var, "reason", ev.Reason)
			}
		case telnet.EventMSSP:
			s.w.saveMSSP(s.key.Game, ev.MSSP)
		case telnet.EventMXP:
			s.mxpEvent(ev)
		}
	}
	s.judgeHeld(now)
}

// judgeHeld records the held input lines the game's output has now
// judged, and arms the timer for the next judgement.
func (s *session) judgeHeld(now time.Time) {
	s.mu.Lock()
	if s.typeAhead == nil || s.eng == nil {
		s.mu.Unlock()
		return
	}
	recs := s.typeAhead.resolve(now)
	s.armHoldLocked()
	s.mu.Unlock()
	s.record(recs)
}

// armHoldLocked schedules judgeHeld for when a prompt may have settled or
// a hold runs out; at most one timer per session, none while nothing is
// held.
func (s *session) armHoldLocked() {
	at, ok := s.typeAhead.next()
	if !ok {
		s.stopHoldLocked()
		return
	}
	d := max(time.Until(at), time.Millisecond)
	if s.holdTimer == nil {
		s.holdTimer = time.AfterFunc(d, func() { s.judgeHeld(time.Now()) })
	} else {
		s.holdTimer.Reset(d)
	}
}

func (s *session) stopHoldLocked() {
	if s.holdTimer != nil {
		s.holdTimer.Stop()
		s.holdTimer = nil
	}
}

// record writes input records to the transcript: text, or redacted for a
// secret (the text then reaches no stream, log or metric).
func (s *session) record(recs []inputRecord) {
	for _, r := range recs {
		s.emit(recordOutput(r))
	}
}

// recordOutput is the transcript entry of one input record.
func recordOutput(r inputRecord) store.Output {
	o := store.Output{Kind: store.OutInput, Viewer: r.viewer, InputSeq: r.seq}
	if r.secret {
		o.Redacted = true
	} else {
		o.Text = r.text
	}
	return o
}

// wseg is a run of bytes for the game that goes out in one write: either
// player input or the engine's own bytes (negotiation replies, NAWS, GMCP
// and MSDP), never both. Some servers read a negotiation reply and the
// line after it in one read, act on the reply and drop the rest: input
// that shares a write with a reply arrives in the same segment and is
// lost there. Consecutive sends of one kind still share a write.
type wseg struct {
	b     []byte
	input bool
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

func (s *session) sendLocked(p []byte) bool { return s.queueLocked(p, false) }

// queueLocked queues p, input or not, behind what is already queued. The
// writer is started at once, so a reply leaves as promptly as before.
func (s *session) queueLocked(p []byte, input bool) bool {
	if s.conn == nil {
		return false
	}
	if s.wqBytes+len(p) > s.w.cfg.GameWriteQueue {
		// The game does not read: drop the connection rather than hold an
		// unbounded queue; the supervisor redials.
		s.notReading = true
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		return false
	}
	if n := len(s.wq); n > 0 && s.wq[n-1].input == input {
		s.wq[n-1].b = append(s.wq[n-1].b, p...)
	} else {
		s.wq = append(s.wq, wseg{b: append([]byte(nil), p...), input: input})
	}
	s.wqBytes += len(p)
	if !s.writing {
		s.writing = true
		conn := s.conn
		s.writers.Go(func() { s.write(conn) })
	}
	return true
}

// write sends the queue one segment per write, until it is empty.
func (s *session) write(conn net.Conn) {
	for {
		s.mu.Lock()
		if len(s.wq) == 0 || s.conn != conn {
			s.writing = false
			s.wq, s.wqBytes = nil, 0
			s.mu.Unlock()
			return
		}
		seg := s.wq[0]
		s.wq[0] = wseg{}
		s.wq = s.wq[1:]
		s.wqBytes -= len(seg.b)
		s.mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(seg.b); err != nil {
			// The reader sees the broken connection too; make sure it does.
			_ = conn.SetReadDeadline(time.Unix(1, 0))
			s.mu.Lock()
			s.writing = false
			s.wq, s.wqBytes = nil, 0
			s.mu.Unlock()
			return
		}
	}
}

// input sends one line typed by the player to the game at once; its
// transcript record (text, or redacted for a secret) is written now or,
// for a line typed ahead of the game, once the next prompt shows what it
// was (see typeAhead). viewer and seq identify the line for the edge that
// sent it, which tells its player about lines that never got recorded.
func (s *session) input(text, viewer string, seq uint64) bool {
	s.mu.Lock()
	if s.eng == nil {
		s.mu.Unlock()
		return false
	}
	line := s.eng.Line(nil, text)
	if !s.queueLocked(line, true) {
		s.mu.Unlock()
		return false
	}
	recs := s.typeAhead.typed(heldLine{text: text, viewer: viewer, seq: seq, at: time.Now()}, time.Now())
	s.armHoldLocked()
	s.mu.Unlock()
	s.record(recs)
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

// msdp sends an MSDP message from the client to the game (over MSDP, or
// MSDP over GMCP when only GMCP was agreed), as its own send like gmcp.
// The edge validated the value already, so the engine refusing it (or the
// game having agreed to neither) is only logged.
func (s *session) msdp(name string, val []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return false
	}
	msg, err := s.eng.MSDP(nil, name, val)
	if err != nil {
		s.w.log.Debug("MSDP from the client not sent", "key", s.key.String(), "var", name, "err", err)
		return false
	}
	return s.sendLocked(msg)
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
