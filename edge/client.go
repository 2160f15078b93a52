package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/msdp"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// Bounds of the edge's own reads and writes around one connection.
const (
	backlogPage     = 500 // output entries per stream read
	backlogPages    = 40  // pages per resume or resync, beyond any MAXLEN in use
	maxQueuedFrames = 64  // error frames queued for a browser; more are dropped
	detachTimeout   = 2 * time.Second
)

// client is one browser connection: the protocol, with the socket behind
// a transport (transport.go). An idle client has one goroutine, the
// socket's reader (wsTransport.readLoop): it hands each message to
// receive, which answers hello and relays input; once it ends, stop waits
// for the writer and leave leaves the hub and publishes the detach.
//
// The writer (writer.go) is the only one that writes to the transport. It
// is a goroutine started by poke when there is something to send (output,
// an error frame, a ping the server's pinger asked for, the close) and
// ending when the queues are empty, so the thousands of browsers that sit
// idle cost no writer stack; at most one runs at a time, and the state it
// keeps between runs (w) passes from one to the next under qmu. It sends
// the welcome and the backlog, then live output in stream order, drops ids
// it already sent, re-reads the stream when it sees a hole, and pings.
//
// The hub hands live output to deliver, which never blocks: it appends to
// a bounded queue, and a browser that lets the queue fill is cut with
// 4008 (its output stays in the stream for its resume).
type client struct {
	srv   *Server
	t     transport
	id    string // viewer id
	ip    string
	guest string // the guest id from the upgrade request's cookie, if any
	// who names the player in log lines once hello did (the reader sets
	// it, the writer may log): the logger is made when a line is logged,
	// which is rare, rather than kept per connection.
	who    atomic.Pointer[logWho]
	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	// Set by the reader on hello, before the writer learns of them
	// through the attach job.
	user string
	sess *session
	// screenReader is the hello's screen_reader, sent with every attach
	// (the watchdog's too).
	screenReader atomic.Bool
	cols         atomic.Int32
	rows         atomic.Int32

	// The reader's own.
	helloDone   bool
	limiter     *rate.Limiter
	lastLimited time.Time

	// in holds the input lines relayed and not yet seen recorded.
	in inputTracker

	qmu      sync.Mutex
	frames   [][]byte       // control frames (errors) to send
	live     []store.Output // live output not yet sent
	attachTo *attachJob
	resync   bool
	// leaseGone is the highest fence the watchdog found dead while lines
	// sent under it were outstanding (0: none): the writer re-reads the
	// stream, which holds every record such a worker could still make,
	// and reports the lines it does not find.
	leaseGone int64
	// pingDue: the pinger asked for a keep-alive.
	pingDue bool
	// dirty: something was queued since the writer last looked.
	dirty bool
	// writing: a writer goroutine runs (at most one does).
	writing bool
	// finished: the writer sent the close (or gave up on the socket); no
	// writer starts again.
	finished bool

	// w is the writer's state, kept between its runs; only the running
	// writer touches it.
	w       writer
	writers sync.WaitGroup // the writer goroutine, while one runs

	// nextPing is when the pinger next asks for a ping (Unix ns).
	nextPing atomic.Int64

	closeOnce sync.Once
	done      chan struct{} // closed when the connection is to be closed
	disc      Disconnect    // why; set before done is closed
	written   chan struct{} // closed when the writer sent the close
}

type attachJob struct {
	sess   *session
	user   string
	game   string
	resume string
	// unplaced: the browser sent a resume that is not a stream id at all.
	// It is answered like a position the stream does not have.
	unplaced bool
}

func newClient(srv *Server, t transport, ip, guest string) *client {
	ctx, cancel := context.WithCancel(srv.baseCtx)
	id := uuid.NewString()
	c := &client{
		srv:     srv,
		t:       t,
		id:      id,
		ip:      ip,
		guest:   guest,
		ctx:     ctx,
		cancel:  cancel,
		limiter: newLimiter(&srv.cfg),
		done:    make(chan struct{}),
		written: make(chan struct{}),
	}
	c.w.c = c
	c.w.pending = c.w.inline[:0]
	c.nextPing.Store(time.Now().Add(srv.cfg.PingInterval).UnixNano())
	return c
}

// logWho is who a connection is, for its log lines.
type logWho struct{ user, game string }

func (c *client) logger() *slog.Logger {
	if w := c.who.Load(); w != nil {
		if w.game != "" {
			return c.srv.log.With("viewer", c.id, "user", w.user, "game", w.game)
		}
		return c.srv.log.With("viewer", c.id, "user", w.user)
	}
	return c.srv.log.With("viewer", c.id)
}

// stop ends the connection once the reader is done: the writer may still
// be sending the close frame, and stop waits for it.
func (c *client) stop() {
	c.closeWith(disconnectGone)
	<-c.written
	c.writers.Wait()
	c.cancel()
}

// leave leaves the session, if the hello joined one, and tells the
// workers the viewer is gone.
func (c *client) leave() {
	s := c.sess
	if s == nil {
		return
	}
	c.srv.hub.leave(s, c)
	ctx, cancel := context.WithTimeout(c.srv.baseCtx, detachTimeout)
	_, err := c.srv.st.PublishControl(ctx, store.Command{
		Type: store.CmdDetach, User: c.user, Game: s.key.Game, Viewer: c.id, Edge: c.srv.cfg.ID,
	})
	cancel()
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Warn("publish detach failed; the worker's viewer pruning will catch up", "err", err)
	}
}

// poke has the writer look at the queues, starting one if none runs.
func (c *client) poke() {
	c.qmu.Lock()
	start := c.pokeLocked()
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// pokeLocked marks the queues dirty, with qmu held. It reports that the
// caller must start the writer (go c.writeLoop) once it let go of qmu.
func (c *client) pokeLocked() bool {
	c.dirty = true
	if c.writing || c.finished {
		return false
	}
	c.writing = true
	c.writers.Add(1)
	return true
}

// ping asks the writer for a keep-alive (the server's pinger calls it).
func (c *client) ping() {
	c.qmu.Lock()
	c.pingDue = true
	start := c.pokeLocked()
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// deliver queues a live output entry. It is called by the hub with its
// lock held, so it must never block.
func (c *client) deliver(o store.Output) {
	if o.Kind == store.OutInput && o.Viewer == c.id && o.InputSeq > 0 {
		// Taken now rather than when the writer gets to it: a browser slow
		// to read its output must not see its lines time out. Acks are safe
		// early; only losses need the stream's order (the writer's).
		c.in.ack(o.Fence, o.InputSeq)
	}
	c.qmu.Lock()
	if len(c.live) >= c.srv.cfg.SendQueue {
		c.qmu.Unlock()
		c.closeWith(disconnectTooSlow)
		return
	}
	c.live = append(c.live, o)
	start := c.pokeLocked()
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// requestResync asks the writer to re-read the stream from the last id it
// sent (the live path lost messages).
func (c *client) requestResync() {
	c.qmu.Lock()
	c.resync = true
	c.qmu.Unlock()
	c.poke()
}

// inputLeaseGone tells the writer that leases up to fence dead are gone,
// if lines sent under one of them are outstanding.
func (c *client) inputLeaseGone(dead int64) {
	if dead <= 0 || !c.in.anyBelow(dead+1) {
		return
	}
	c.qmu.Lock()
	c.leaseGone = max(c.leaseGone, dead)
	c.qmu.Unlock()
	c.poke()
}

// expireInput reports the lines no worker recorded within inputAckTimeout.
func (c *client) expireInput(now time.Time) {
	if n := c.in.expire(now.Add(-inputAckTimeout)); n > 0 {
		c.srv.m.inputLost.WithLabelValues(lostTimeout).Add(float64(n))
		c.logger().Info("input not confirmed", "lines", n)
		c.sendError(wire.ErrInputLost, inputLostMessage(n, lostTimeout))
	}
}

// sendFrame queues a control frame. Under a flood of bad messages the
// queue fills and further frames are dropped: they are advice, and the
// rate limiter already caps how many are made.
func (c *client) sendFrame(b []byte) {
	c.qmu.Lock()
	if len(c.frames) < maxQueuedFrames {
		c.frames = append(c.frames, b)
	}
	c.qmu.Unlock()
	c.poke()
}

func (c *client) sendError(code, msg string) {
	c.srv.m.errors.WithLabelValues(code).Inc()
	c.sendFrame(encodeError(code, msg))
}

// closeWith asks the writer to send queued error frames and a close frame
// with d, then end the connection. The first call wins.
func (c *client) closeWith(d Disconnect) {
	c.closeOnce.Do(func() {
		c.disc = d
		c.srv.m.closes.WithLabelValues(strconv.Itoa(d.Code)).Inc()
		close(c.done)
		c.poke() // a writer sends the close
	})
}

func (c *client) closing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// fail closes with d, after the error frame its code comes with
// (wire.CloseError) saying d's reason.
func (c *client) fail(d Disconnect) {
	if code, ok := wire.CloseError[d.Code]; ok {
		c.sendError(code, d.Reason)
	}
	c.closeWith(d)
}

// failWith ends the connection for err: a Disconnect as it is, anything
// else as an internal failure (the store is the only other thing that
// fails a connection).
func (c *client) failWith(what string, err error) {
	var d Disconnect
	if errors.As(err, &d) {
		c.fail(d)
		return
	}
	c.internal(what, err)
}

func (c *client) internal(what string, err error) {
	c.srv.m.redisErrors.Inc()
	c.logger().Warn(what+" failed", "err", err)
	c.fail(disconnectInternal)
}

// receive takes one message from the browser: text says it came in a text
// frame, tooBig that it was over Config.MaxMessage (and data is empty).
func (c *client) receive(text bool, data []byte, tooBig bool) {
	cfg := &c.srv.cfg
	c.srv.m.framesIn.Inc()
	if !c.limiter.Allow() {
		// Excess frames are dropped; one notice a second is enough.
		if now := time.Now(); now.Sub(c.lastLimited) >= time.Second {
			c.lastLimited = now
			c.sendError(wire.ErrRateLimited, "too many messages: slow down")
		}
		return
	}
	switch {
	case !text:
		c.sendError(wire.ErrBadRequest, "binary frames are not part of the protocol")
		return
	case tooBig:
		c.sendError(wire.ErrBadRequest, fmt.Sprintf("message over %d bytes discarded", cfg.MaxMessage))
		return
	}
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		msg, field := badJSONMessage(err)
		if field && m.Type == wire.TypeHello && !c.helloDone {
			// A hello the edge cannot read will not read better on a
			// retry: say so now, not with the hello timeout.
			c.fail(protocolError("hello: " + msg))
			return
		}
		c.sendError(wire.ErrBadRequest, msg)
		return
	}
	switch {
	case m.Type == wire.TypeHello && c.helloDone:
		c.fail(protocolError("hello sent twice"))
	case m.Type == wire.TypeHello:
		c.helloDone = true
		if err := c.hello(m); err != nil {
			c.failWith("hello", err)
		}
	case !c.helloDone && (m.Type == wire.TypeInput || m.Type == wire.TypeGMCP || m.Type == wire.TypeMSDP || m.Type == wire.TypeResize):
		c.fail(protocolError("send hello first"))
	case m.Type == wire.TypeInput:
		c.input(m)
	case m.Type == wire.TypeGMCP:
		c.gmcp(m)
	case m.Type == wire.TypeMSDP:
		c.msdp(m)
	case m.Type == wire.TypeResize:
		c.resize(m)
	case m.Type == wire.TypePing:
		c.sendFrame(pongFrame)
	default:
		c.sendError(wire.ErrBadRequest, fmt.Sprintf("unknown message type %.32q", m.Type))
	}
}

// badJSONMessage explains why a frame could not be decoded. field reports a
// JSON object with a field of the wrong type (the rest of it was decoded).
func badJSONMessage(err error) (msg string, field bool) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return "message is not a JSON object", false
	}
	t := te.Type
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := "another type"
	switch t.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		want = "a whole number"
	}
	return fmt.Sprintf("field %.40q must be %s", te.Field, want), true
}

// hello authenticates, checks the game and the limits, subscribes and
// hands the writer its attach job. An error ends the connection: a
// Disconnect says how, any other is the store failing (see failWith).
func (c *client) hello(m inbound) error {
	srv := c.srv
	ctx := c.ctx
	user, err := c.authenticate(m.Token)
	if err != nil {
		c.logger().Info("hello refused", "reason", err)
		return Disconnect{Code: wire.CloseUnauthorized, Reason: "not signed in or the sign-in expired"}
	}
	c.who.Store(&logWho{user: user})
	game, err := srv.st.GetGame(ctx, m.Game)
	if errors.Is(err, store.ErrUnknownGame) {
		return Disconnect{Code: wire.CloseUnknownGame, Reason: fmt.Sprintf("no game %.40q here", m.Game)}
	}
	if err != nil {
		return fmt.Errorf("look up game: %w", err)
	}
	c.who.Store(&logWho{user: user, game: game.ID})
	key := store.SessionKey{User: user, Game: game.ID}
	c.cols.Store(int32(clampWindow(m.Cols)))
	c.rows.Store(int32(clampWindow(m.Rows)))
	c.screenReader.Store(m.ScreenReader)

	// Subscribe first: once Redis confirmed it, every entry written later
	// arrives live, and the backlog read covers everything before.
	c.user = user // before join: the watchdog reads it once c is a viewer
	sess, err := srv.hub.join(ctx, key, c)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	c.sess = sess // from here on, leave leaves the hub and detaches
	// The limit is checked once c is a viewer, so hellos racing on this
	// edge see each other (see Server.checkSessionLimit).
	if err := srv.checkSessionLimit(ctx, user, game.ID); err != nil {
		// Leave at once, not in the teardown: a refused hello must not
		// count against the user's next hello, which may come before this
		// connection is torn down. No attach was published: no detach owed.
		srv.hub.leave(sess, c)
		c.sess = nil
		return err
	}
	// A resume that is no stream id (a browser's storage gone wrong, a
	// hand-made one) is never sent to Redis; the player gets the backlog
	// from its start, as for a position the stream does not have.
	resume, unplaced := m.Resume, false
	if resume != "" && !store.ValidStreamID(resume) {
		resume, unplaced = "", true
	}
	c.qmu.Lock()
	c.attachTo = &attachJob{sess: sess, user: user, game: game.ID, resume: resume, unplaced: unplaced}
	c.qmu.Unlock()
	c.poke()

	if err := srv.publishAttach(ctx, key, c, ""); err != nil {
		return fmt.Errorf("publish attach: %w", err)
	}
	return nil
}

func (c *client) authenticate(token string) (string, error) {
	if token != "" {
		return c.srv.auth.Verify(token)
	}
	if c.srv.cfg.Guest && c.guest != "" {
		return c.guest, nil
	}
	return "", auth.ErrNoToken
}

func (c *client) input(m inbound) {
	if m.Text == nil {
		c.sendError(wire.ErrBadRequest, "input without text")
		return
	}
	text := *m.Text
	if len(text) > c.srv.cfg.MaxLine {
		c.sendError(wire.ErrLineTooLong, fmt.Sprintf("line of %d bytes; the limit is %d", len(text), c.srv.cfg.MaxLine))
		return
	}
	if bytes.ContainsAny([]byte(text), "\r\n") {
		c.sendError(wire.ErrBadRequest, "input must be one line")
		return
	}
	c.relay(store.Command{Type: store.CmdInput, Text: text})
}

func (c *client) gmcp(m inbound) {
	if !gmcpPackage.MatchString(m.Package) {
		c.sendError(wire.ErrBadRequest, "gmcp needs a package name like Core.Ping")
		return
	}
	if len(m.Data) > c.srv.cfg.MaxLine {
		c.sendError(wire.ErrLineTooLong, fmt.Sprintf("gmcp body of %d bytes; the limit is %d", len(m.Data), c.srv.cfg.MaxLine))
		return
	}
	c.relay(store.Command{Type: store.CmdGMCP, Package: m.Package, Data: m.Data})
}

// msdp relays one MSDP message (a command such as REPORT, or a variable)
// after checking that it can be sent as MSDP at all: msdp.Body is the
// encoder the worker's telnet engine uses, pure and without I/O, so what
// passes here the worker can send, and the player learns why at once when
// it cannot. The limit is on the encoded size (the body and its five bytes
// of telnet framing), which is what reaches the game.
func (c *client) msdp(m inbound) {
	body, err := msdp.Body(m.Var, m.Val)
	if err != nil {
		c.sendError(wire.ErrBadRequest, err.Error())
		return
	}
	if n := len(body) + 5; n > c.srv.cfg.MaxLine {
		c.sendError(wire.ErrLineTooLong, fmt.Sprintf("msdp message of %d bytes encoded; the limit is %d", n, c.srv.cfg.MaxLine))
		return
	}
	c.relay(store.Command{Type: store.CmdMSDP, Package: m.Var, Data: m.Val})
}

// relay sends input to the session's owner (session.sendInput) and tells
// the player when it could not. Input lines are numbered and tracked
// until the worker's record of them comes back; client GMCP and MSDP are
// not: the worker records no entry for them, so nothing could ever
// acknowledge them.
func (c *client) relay(cmd store.Command) {
	s := c.sess
	cmd.User, cmd.Game, cmd.Viewer = c.user, s.key.Game, c.id
	var in *inputTracker
	if cmd.Type == store.CmdInput {
		in = &c.in
		cmd.Seq = in.next()
	}
	forgot, err := s.sendInput(c.ctx, c.srv.st, cmd, in, c.srv.now())
	if forgot {
		c.srv.m.inputUntracked.Inc()
	}
	switch {
	case err == nil:
		c.srv.m.inputs.Inc()
	case errors.Is(err, errNoOwner):
		c.sendError(wire.ErrNoSession, "no game connection right now; the line was not sent")
	default:
		c.srv.m.redisErrors.Inc()
		c.logger().Debug("send input failed", "err", err)
		c.sendError(wire.ErrInternal, "could not send the line; try again")
	}
}

func (c *client) resize(m inbound) {
	cols, rows := clampWindow(m.Cols), clampWindow(m.Rows)
	if cols < 1 || rows < 1 {
		c.sendError(wire.ErrBadRequest, "resize needs cols and rows from 1 to 1000")
		return
	}
	c.cols.Store(int32(cols))
	c.rows.Store(int32(rows))
	owner, fence, ok := c.sess.route()
	if !ok {
		// The next attach carries the size; nobody to tell now.
		return
	}
	_, err := c.srv.st.SendInbox(c.ctx, owner, store.Command{
		Type: store.CmdResize, User: c.user, Game: c.sess.key.Game,
		Viewer: c.id, Cols: cols, Rows: rows, Fence: fence,
	})
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Debug("send resize failed", "err", err)
	}
}
