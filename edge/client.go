package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/msdp"
	"github.com/trellis-mud/trellis/store"
)

// Bounds of the edge's own reads and writes around one connection.
const (
	backlogPage     = 500 // output entries per stream read
	backlogPages    = 40  // pages per resume or resync, beyond any MAXLEN in use
	maxQueuedFrames = 64  // error frames queued for a browser; more are dropped
	detachTimeout   = 2 * time.Second
)

// client is one browser connection. Two goroutines own it:
//
//   - the reader (the HTTP handler's goroutine) reads frames, answers
//     hello, relays input, and on exit leaves the hub, publishes the
//     detach and waits for the writer;
//   - the writer is the only one that writes to the socket. It sends the
//     welcome and the backlog, then live output in stream order, drops ids
//     it already sent, re-reads the stream when it sees a hole, and pings.
//
// The hub hands live output to deliver, which never blocks: it appends to
// a bounded queue, and a browser that lets the queue fill is cut with
// 4008 (its output stays in the stream for its resume).
type client struct {
	srv   *Server
	conn  *websocket.Conn
	id    string // viewer id
	ip    string
	guest string // the guest id from the upgrade request's cookie, if any
	// log is replaced once, by the reader on hello (adding user and game),
	// while the writer may log a failed write: hence atomic.
	log    atomic.Pointer[slog.Logger]
	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	// Set by the reader on hello, before the writer learns of them
	// through the attach job.
	user string
	sess *session
	cols atomic.Int32
	rows atomic.Int32

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
	wake      chan struct{} // capacity 1: "look at the queues"

	closeOnce sync.Once
	done      chan struct{} // closed when the connection is to be closed
	closeCode int
	closeText string
	written   chan struct{} // closed when the writer returned
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

func (c *client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
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
		c.closeWith(CloseTooSlow, "too slow")
		return
	}
	c.live = append(c.live, o)
	c.qmu.Unlock()
	c.poke()
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
		c.sendError(ErrInputLost, inputLostMessage(n, lostTimeout))
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
// with code, then end the connection. The first call wins.
func (c *client) closeWith(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.srv.m.closes.WithLabelValues(strconv.Itoa(code)).Inc()
		close(c.done)
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

// fail sends an error frame and closes with code.
func (c *client) fail(code int, errCode, msg string) {
	c.sendError(errCode, msg)
	c.closeWith(code, msg)
}

// serve runs the reader in the calling goroutine and the writer in a new
// one, and returns once both ended.
func (c *client) serve() {
	go c.writeLoop()
	c.readLoop()

	// Tear down: the writer may still be sending the close frame.
	c.closeWith(CloseGoingAway, "")
	<-c.written
	c.cancel()
	_ = c.conn.Close()
	if s := c.sess; s != nil {
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
}

// readLoop reads frames until the connection fails or the writer has
// closed it (then it keeps reading, discarding, until the browser's close
// reply or the writer's deadline, so the close frame is not lost to a
// TCP reset).
func (c *client) readLoop() {
	cfg := &c.srv.cfg
	c.conn.SetReadLimit(hardMessageLimit)
	_ = c.conn.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	pongWait := 2*cfg.PingInterval + cfg.WriteTimeout
	c.conn.SetPongHandler(func(string) error {
		if c.sess != nil && !c.closing() {
			_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		return nil
	})
	limiter := rate.NewLimiter(rate.Limit(cfg.InputRate), cfg.InputBurst)
	var lastLimited time.Time
	helloDone := false
	for {
		mt, r, err := c.conn.NextReader()
		if err != nil {
			var ne interface{ Timeout() bool }
			if !helloDone && !c.closing() && errors.As(err, &ne) && ne.Timeout() {
				c.fail(CloseProtocol, ErrBadRequest, "no hello within "+cfg.HelloTimeout.String())
				c.drain()
			}
			return
		}
		if c.closing() {
			if discard(r) != nil {
				return
			}
			continue
		}
		c.srv.m.framesIn.Inc()
		data, tooBig, err := readMessage(r, cfg.MaxMessage)
		if errors.Is(err, errOverHardLimit) {
			c.closeWith(CloseMessageTooBig, "message too big")
			c.drain()
			return
		}
		if err != nil {
			return // includes the hard limit on the wire: gorilla already sent 1009
		}
		if helloDone {
			_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		if !limiter.Allow() {
			// Excess frames are dropped; one notice a second is enough.
			if now := time.Now(); now.Sub(lastLimited) >= time.Second {
				lastLimited = now
				c.sendError(ErrRateLimited, "too many messages: slow down")
			}
			continue
		}
		switch {
		case mt != websocket.TextMessage:
			c.sendError(ErrBadRequest, "binary frames are not part of the protocol")
			continue
		case tooBig:
			c.sendError(ErrBadRequest, fmt.Sprintf("message over %d bytes discarded", cfg.MaxMessage))
			continue
		}
		var m inbound
		if err := json.Unmarshal(data, &m); err != nil {
			msg, field := badJSONMessage(err)
			if field && m.Type == msgHello && !helloDone {
				// A hello the edge cannot read will not read better on a
				// retry: say so now, not with the hello timeout.
				c.fail(CloseProtocol, ErrBadRequest, "hello: "+msg)
				c.drain()
				return
			}
			c.sendError(ErrBadRequest, msg)
			continue
		}
		switch {
		case m.Type == msgHello && helloDone:
			c.fail(CloseProtocol, ErrBadRequest, "hello sent twice")
		case m.Type == msgHello:
			helloDone = true
			if c.hello(m) {
				_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
			}
		case !helloDone && (m.Type == msgInput || m.Type == msgGMCP || m.Type == msgMSDP || m.Type == msgResize):
			c.fail(CloseProtocol, ErrBadRequest, "send hello first")
		case m.Type == msgInput:
			c.input(m)
		case m.Type == msgGMCP:
			c.gmcp(m)
		case m.Type == msgMSDP:
			c.msdp(m)
		case m.Type == msgResize:
			c.resize(m)
		case m.Type == msgPing:
			c.sendFrame(pongFrame)
		default:
			c.sendError(ErrBadRequest, fmt.Sprintf("unknown message type %.32q", m.Type))
		}
		if c.closing() {
			c.drain()
			return
		}
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

// drain reads and discards until the browser answers the close frame or
// the grace ends.
func (c *client) drain() {
	<-c.written
	_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	for {
		_, r, err := c.conn.NextReader()
		if err != nil || discard(r) != nil {
			return
		}
	}
}

// discard reads a frame nobody will use to its end, stopping at
// hardMessageLimit (errOverHardLimit): while a connection closes, a
// compressed frame must not cost more to throw away than one in use.
func discard(r io.Reader) error {
	n, err := io.Copy(io.Discard, io.LimitReader(r, hardMessageLimit+1))
	if err == nil && n > hardMessageLimit {
		err = errOverHardLimit
	}
	return err
}

// errOverHardLimit reports a message that inflated past hardMessageLimit.
var errOverHardLimit = errors.New("message over the hard limit")

// readMessage reads a frame of at most max bytes. A larger one is read to
// its end and discarded (tooBig), so the stream of frames stays in sync.
// The discarding stops at hardMessageLimit bytes (errOverHardLimit):
// gorilla's read limit counts the bytes on the wire, and with
// permessage-deflate a few KiB can inflate to a GiB, every byte of which
// would cost CPU to throw away.
func readMessage(r io.Reader, max int) (data []byte, tooBig bool, err error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, false, err
	}
	if n > int64(max) {
		m, err := io.Copy(io.Discard, io.LimitReader(r, hardMessageLimit-n+1))
		if err == nil && n+m > hardMessageLimit {
			err = errOverHardLimit
		}
		return nil, true, err
	}
	return buf.Bytes(), false, nil
}

// hello authenticates, checks the game and the limits, subscribes and
// hands the writer its attach job. It reports whether the viewer is
// attached; on failure the connection is already being closed.
func (c *client) hello(m inbound) bool {
	srv := c.srv
	ctx := c.ctx
	user, err := c.authenticate(m.Token)
	if err != nil {
		c.logger().Info("hello refused", "reason", err)
		c.fail(CloseUnauthorized, ErrUnauthorized, "not signed in or the sign-in expired")
		return false
	}
	c.log.Store(c.logger().With("user", user))
	game, err := srv.st.GetGame(ctx, m.Game)
	if errors.Is(err, store.ErrUnknownGame) {
		c.fail(CloseUnknownGame, ErrUnknownGame, fmt.Sprintf("no game %.40q here", m.Game))
		return false
	}
	if err != nil {
		c.internal("look up game", err)
		return false
	}
	c.log.Store(c.logger().With("game", game.ID))
	key := store.SessionKey{User: user, Game: game.ID}
	c.cols.Store(int32(clampWindow(m.Cols)))
	c.rows.Store(int32(clampWindow(m.Rows)))

	// Subscribe first: once Redis confirmed it, every entry written later
	// arrives live, and the backlog read covers everything before.
	c.user = user // before join: the watchdog reads it once c is a viewer
	sess, err := srv.hub.join(ctx, key, c)
	if err != nil {
		c.internal("subscribe", err)
		return false
	}
	c.sess = sess // from here on, serve leaves the hub and detaches
	// The limit is checked once c is a viewer, so hellos racing on this
	// edge see each other (see checkSessionLimit).
	if err := c.checkSessionLimit(ctx, user, game.ID); err != nil {
		// Leave at once, not in serve's teardown: a refused hello must not
		// count against the user's next hello, which may come before this
		// connection is torn down. No attach was published: no detach owed.
		srv.hub.leave(sess, c)
		c.sess = nil
		if errors.Is(err, errTooManySessions) {
			c.fail(CloseTooManySession, ErrTooManySessions, err.Error())
		} else {
			c.internal("count sessions", err)
		}
		return false
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
		c.internal("publish attach", err)
		return false
	}
	return true
}

var errTooManySessions = errors.New("too many sessions")

func (c *client) authenticate(token string) (string, error) {
	if token != "" {
		return c.srv.auth.Verify(token)
	}
	if c.srv.cfg.Guest && c.guest != "" {
		return c.guest, nil
	}
	return "", auth.ErrNoToken
}

// checkSessionLimit counts the user's sessions in other games; the game
// being attached does not count (a reload re-attaches it). A session
// counts if its lease is live or if this edge has a viewer attaching to it:
// a worker takes the lease only some time after the attach, so leases
// alone would let a script saying hello to game after game open a game
// connection for each before the first lease appears. (Hellos spread over
// several edges at once can still get past it, by at most one batch.)
func (c *client) checkSessionLimit(ctx context.Context, user, game string) error {
	limit := c.srv.cfg.MaxSessionsPerUser
	if limit == 0 {
		return nil
	}
	games, err := c.srv.st.ListGames(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(games))
	local := 0
	for _, g := range games {
		switch {
		case g.ID == game:
		case c.srv.hub.attaching(store.SessionKey{User: user, Game: g.ID}):
			local++
		default:
			ids = append(ids, g.ID)
		}
	}
	n, err := c.srv.st.CountUserSessions(ctx, user, ids)
	if err != nil {
		return err
	}
	n += local
	if n >= limit {
		return fmt.Errorf("%w: %d of %d in use; leave another game first", errTooManySessions, n, limit)
	}
	return nil
}

func (c *client) internal(what string, err error) {
	c.srv.m.redisErrors.Inc()
	c.logger().Warn(what+" failed", "err", err)
	c.fail(CloseInternal, ErrInternal, "the edge cannot reach its store; retrying")
}

func (c *client) input(m inbound) {
	if m.Text == nil {
		c.sendError(ErrBadRequest, "input without text")
		return
	}
	text := *m.Text
	if len(text) > c.srv.cfg.MaxLine {
		c.sendError(ErrLineTooLong, fmt.Sprintf("line of %d bytes; the limit is %d", len(text), c.srv.cfg.MaxLine))
		return
	}
	if bytes.ContainsAny([]byte(text), "\r\n") {
		c.sendError(ErrBadRequest, "input must be one line")
		return
	}
	c.relay(store.Command{Type: store.CmdInput, Text: text})
}

func (c *client) gmcp(m inbound) {
	if !gmcpPackage.MatchString(m.Package) {
		c.sendError(ErrBadRequest, "gmcp needs a package name like Core.Ping")
		return
	}
	if len(m.Data) > c.srv.cfg.MaxLine {
		c.sendError(ErrLineTooLong, fmt.Sprintf("gmcp body of %d bytes; the limit is %d", len(m.Data), c.srv.cfg.MaxLine))
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
		c.sendError(ErrBadRequest, err.Error())
		return
	}
	if n := len(body) + 5; n > c.srv.cfg.MaxLine {
		c.sendError(ErrLineTooLong, fmt.Sprintf("msdp message of %d bytes encoded; the limit is %d", n, c.srv.cfg.MaxLine))
		return
	}
	c.relay(store.Command{Type: store.CmdMSDP, Package: m.Var, Data: m.Val})
}

// relay sends input to the session's owner with the fence it holds. A
// cached route that no worker answers on is refreshed once.
//
// A PUBLISH that reaches the owner's channel does not mean the line
// reaches the game: a worker paused past its lease still has a
// subscription, and drops the line when it wakes. So each line is
// numbered and tracked until an input entry of this viewer shows the
// worker recorded it (see inputTracker). Client GMCP is not: the worker
// records no entry for it, so nothing could ever acknowledge it.
func (c *client) relay(cmd store.Command) {
	s := c.sess
	cmd.User, cmd.Game, cmd.Viewer = c.user, s.key.Game, c.id
	track := cmd.Type == store.CmdInput
	if track {
		cmd.Seq = c.in.next()
	}
	for attempt := 0; attempt < 2; attempt++ {
		owner, fence, ok := s.route()
		if !ok || attempt > 0 {
			l, live, err := c.srv.st.GetLease(c.ctx, s.key)
			if err != nil {
				c.srv.m.redisErrors.Inc()
				c.sendError(ErrInternal, "could not send the line; try again")
				return
			}
			s.setRoute(l, live)
			if !live {
				break
			}
			owner, fence = l.Owner, l.Fence
			if o, f, ok := s.route(); ok && f > fence {
				owner, fence = o, f // a status entry newer than this read
			}
		}
		cmd.Fence = fence
		// Tracked before the publish: the record can come back before
		// SendInput returns.
		if track && c.in.add(cmd.Seq, fence, c.srv.now()) {
			c.srv.m.inputUntracked.Inc()
		}
		err := c.srv.st.SendInput(c.ctx, owner, cmd)
		if err == nil {
			c.srv.m.inputs.Inc()
			return
		}
		if track {
			c.in.remove(cmd.Seq) // the player is told below
		}
		if !errors.Is(err, store.ErrNoReceiver) {
			c.srv.m.redisErrors.Inc()
			c.sendError(ErrInternal, "could not send the line; try again")
			return
		}
	}
	c.sendError(ErrNoSession, "no game connection right now; the line was not sent")
}

func (c *client) resize(m inbound) {
	cols, rows := clampWindow(m.Cols), clampWindow(m.Rows)
	if cols < 1 || rows < 1 {
		c.sendError(ErrBadRequest, "resize needs cols and rows from 1 to 1000")
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

// writer state, owned by the writer goroutine.
type writer struct {
	c        *client
	attached bool
	sess     *session
	lastID   string
	fence    int64
	seq      uint64
}

func (c *client) writeLoop() {
	defer close(c.written)
	w := &writer{c: c}
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			w.finish()
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
				w.abort(err)
				return
			}
		case <-c.wake:
			if err := w.flush(); err != nil {
				if c.closing() {
					w.finish()
					return
				}
				w.abort(err)
				return
			}
		}
	}
}

// abort ends a connection whose writes fail: the browser is gone.
func (w *writer) abort(err error) {
	w.c.logger().Debug("write failed", "err", err)
	w.c.closeWith(CloseGoingAway, "")
	_ = w.c.conn.Close()
}

// finish sends the queued error frames and the close frame, then gives the
// reader up to WriteTimeout to see the browser's reply. Closing the socket
// sooner would be wrong: a browser still reading a backlog of frames answers
// pings on its way, and data arriving at a closed socket makes the kernel
// reset the connection, which throws away the close frame still queued for
// the browser.
func (w *writer) finish() {
	c := w.c
	c.qmu.Lock()
	frames := c.frames
	c.frames = nil
	c.qmu.Unlock()
	for _, f := range frames {
		if err := w.write(f); err != nil {
			_ = c.conn.Close()
			return
		}
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		_ = c.conn.Close()
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
}

func (w *writer) write(b []byte) error {
	c := w.c
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	c.srv.m.framesOut.Inc()
	return nil
}

var errClosing = errors.New("connection closing")

// flush sends whatever is queued: error frames first, then the attach,
// then a resync, then live output.
func (w *writer) flush() error {
	c := w.c
	c.qmu.Lock()
	frames := c.frames
	c.frames = nil
	job := c.attachTo
	c.attachTo = nil
	resync := c.resync
	c.resync = false
	var live []store.Output
	var gone int64
	if w.attached || job != nil {
		live = c.live
		c.live = nil
		gone = c.leaseGone
		c.leaseGone = 0
	}
	c.qmu.Unlock()

	for _, f := range frames {
		if err := w.write(f); err != nil {
			return err
		}
	}
	if job != nil {
		if err := w.attach(job); err != nil {
			return err
		}
		resync = false
	}
	if !w.attached {
		return nil
	}
	if resync {
		if err := w.readFrom("reconnect"); err != nil {
			return err
		}
	}
	for _, o := range live {
		if c.closing() {
			return errClosing
		}
		if err := w.relay(o); err != nil {
			return err
		}
	}
	if gone > 0 {
		// A dead lease's worker wrote its last record before the lease
		// went, so the stream read after the watchdog saw it gone holds
		// every record it made: what is still outstanding now is lost.
		if err := w.readFrom("input_check"); err != nil {
			return err
		}
		if n := c.in.lostBelow(gone + 1); n > 0 {
			return w.reportLost(n, lostStopped)
		}
	}
	return nil
}

// reportLost tells the player n lines were lost, right after the output
// that showed it.
func (w *writer) reportLost(n int, why string) error {
	c := w.c
	if why == lostStopped && w.sess.ended() {
		// Typed after the game hung up, before the edge forgot the route.
		why = lostEnded
	}
	c.srv.m.inputLost.WithLabelValues(why).Add(float64(n))
	c.srv.m.errors.WithLabelValues(ErrInputLost).Inc()
	c.logger().Info("input lost", "lines", n, "why", why)
	return w.write(encodeError(ErrInputLost, inputLostMessage(n, why)))
}

// attach sends the welcome, any gap, the GMCP state, the MSDP state and
// the backlog.
func (w *writer) attach(job *attachJob) error {
	c := w.c
	st := c.srv.st
	key := job.sess.key
	page, err := st.ReadBacklog(c.ctx, key, job.resume, backlogPage)
	if err != nil {
		c.internal("read backlog", err)
		return errClosing
	}
	reset := job.unplaced || page.Reset
	if err := w.write(encodeWelcome(job.user, job.game, job.resume != "" && !page.Gap && !reset)); err != nil {
		return err
	}
	switch {
	case reset:
		err = w.write(encodeResetGap("your saved place in the output was not found; what follows is the kept output from its start"))
	case page.Gap:
		err = w.write(encodeGap("", "some earlier output is no longer kept"))
	}
	if err != nil {
		return err
	}
	state, err := st.GMCPState(c.ctx, key)
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Warn("read gmcp state failed", "err", err)
	}
	for _, o := range state {
		if err := w.send(o, false); err != nil {
			return err
		}
	}
	msdp, err := st.MSDPState(c.ctx, key)
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Warn("read msdp state failed", "err", err)
	}
	for _, o := range msdp {
		if err := w.send(o, false); err != nil {
			return err
		}
	}
	// After a reset the position is forgotten: the ids that follow may
	// sort before it, and every one must go out.
	w.sess, w.lastID, w.attached = job.sess, job.resume, true
	if reset {
		w.lastID = ""
	}
	w.placeAt(page.At)
	if err := w.sendAll(page.Entries); err != nil {
		return err
	}
	if len(page.Entries) == backlogPage {
		return w.readFrom("")
	}
	return nil
}

// readFrom re-reads the stream after the last id sent and sends what it
// finds. cause names why, for metrics ("" for the rest of a backlog).
func (w *writer) readFrom(cause string) error {
	c := w.c
	if cause != "" {
		c.srv.m.resyncs.WithLabelValues(cause).Inc()
	}
	for range backlogPages {
		page, err := c.srv.st.ReadBacklog(c.ctx, w.sess.key, w.lastID, backlogPage)
		if err != nil {
			c.internal("re-read output", err)
			return errClosing
		}
		if page.Reset {
			return w.lostPosition(page.Entries)
		}
		if page.Gap {
			if err := w.write(encodeGap("", "some output is missing: it is older than the kept backlog")); err != nil {
				return err
			}
		}
		w.placeAt(page.At)
		if err := w.sendAll(page.Entries); err != nil {
			return err
		}
		if len(page.Entries) < backlogPage {
			return nil
		}
	}
	return nil
}

// lostPosition handles a re-read that found the last id sent newer than
// the stream's newest entry. That id was sent on this connection, so the
// stream held it once: it lost its newest entries (a failover to a replica
// that was behind, a restart that lost the last writes) or started again.
// What it holds the browser has seen, in the common case, and sending the
// whole backlog again to every viewer after a Redis failover would flood
// them with repeats; so the writer only forgets the position, placing
// itself at the stream's newest entry, so that entries written from now
// on go out even if their ids sort before the old one. The browser is told
// (output it was never sent may be gone with the stream) and forgets its
// resume point too.
func (w *writer) lostPosition(fromStart []store.Output) error {
	c := w.c
	c.srv.m.resyncs.WithLabelValues("position_lost").Inc()
	newest := ""
	if n := len(fromStart); n > 0 && n < backlogPage {
		newest = fromStart[n-1].ID
	} else if n > 0 {
		id, err := c.srv.st.LastOutputID(c.ctx, w.sess.key)
		if err != nil {
			c.internal("read the newest output id", err)
			return errClosing
		}
		newest = id
	}
	c.logger().Warn("the output stream no longer holds the last entry sent; resuming after its newest",
		"last_sent", w.lastID, "newest", newest)
	w.lastID = newest
	w.sess.rewind(newest)
	return w.write(encodeResetGap("the server lost some recent output; some of it may not have reached you"))
}

func (w *writer) sendAll(entries []store.Output) error {
	for _, o := range entries {
		if w.c.closing() {
			return errClosing
		}
		w.sess.observe(o)
		if err := w.send(o, true); err != nil {
			return err
		}
	}
	return nil
}

// relay sends a live entry unless it was already sent; a hole in the
// sequence numbers means the live path lost entries, and the stream has
// them.
func (w *writer) relay(o store.Output) error {
	if o.ID == "" || store.CompareIDs(o.ID, w.lastID) <= 0 {
		return nil
	}
	// A hole within a fence, or a new fence (a new owner numbers from 1)
	// whose first entries never arrived.
	sameFenceHole := o.Fence == w.fence && w.seq > 0 && o.Seq > w.seq+1
	newFenceHole := w.fence > 0 && o.Fence > w.fence && o.Seq > 1
	if o.Seq > 0 && (sameFenceHole || newFenceHole) {
		if err := w.readFrom("seq_hole"); err != nil {
			return err
		}
		if store.CompareIDs(o.ID, w.lastID) <= 0 {
			return nil
		}
	}
	return w.send(o, true)
}

func (w *writer) send(o store.Output, withID bool) error {
	if withID {
		if n := w.missing(o); n > 0 {
			// The stream does not have them either: Redis lost entries it
			// had acknowledged (a failover to a replica that was behind),
			// or refused them (the worker reports those with a gap entry
			// later, after what followed). Either way the player is told
			// here, where the hole is, not after it or never.
			w.c.logger().Info("output entries missing from the stream", "fence", o.Fence, "before_seq", o.Seq, "missing", n)
			if err := w.write(encodeGap("", fmt.Sprintf("%d pieces of output were lost by the server", n))); err != nil {
				return err
			}
		}
	}
	b, err := encodeOutput(o, withID)
	if err != nil {
		w.c.logger().Warn("skipping output entry", "err", err)
		if withID && o.Seq > 0 {
			w.fence, w.seq = o.Fence, o.Seq // skipped, not missing
		}
		return nil
	}
	if err := w.write(b); err != nil {
		return err
	}
	if withID {
		w.lastID = o.ID
		if o.Seq > 0 {
			w.fence, w.seq = o.Fence, o.Seq
		}
		return w.inputSeen(o)
	}
	return nil
}

// placeAt takes the numbers of the entry the writer resumes after, when it
// has none yet (a resume: that entry went out on an earlier connection), so
// a hole right after it shows.
func (w *writer) placeAt(at *store.Output) {
	if at != nil && w.fence == 0 && at.Seq > 0 {
		w.fence, w.seq = at.Fence, at.Seq
	}
}

// missing counts the numbered entries of o's fence that should have come
// before o and did not: after relay's re-read of the stream, or in a
// backlog read, a hole in the numbers is output nobody can send any more.
func (w *writer) missing(o store.Output) uint64 {
	switch {
	case o.Seq == 0 || w.fence == 0:
		return 0
	case o.Fence == w.fence && w.seq > 0 && o.Seq > w.seq+1:
		return o.Seq - w.seq - 1
	case o.Fence > w.fence && o.Seq > 1:
		return o.Seq - 1
	}
	return 0
}

// inputSeen settles the outstanding lines an entry tells about. The
// writer sees every entry, in stream order (holes are filled from the
// stream before what follows them), so when it sees a fence's first entry
// it has seen every record the older fences' workers made.
func (w *writer) inputSeen(o store.Output) error {
	c := w.c
	if o.Kind == store.OutInput && o.Viewer == c.id && o.InputSeq > 0 {
		c.in.ack(o.Fence, o.InputSeq)
	}
	// Only a live owner's entries show a new fence: they are numbered. A
	// worker that lost its lease may still note a gap with its old fence
	// and no number; that says nothing about the lines.
	if o.Fence > 0 && o.Seq > 0 {
		if n := c.in.lostBelow(o.Fence); n > 0 {
			return w.reportLost(n, lostStopped)
		}
	}
	return nil
}

func newClient(srv *Server, conn *websocket.Conn, ip, guest string) *client {
	ctx, cancel := context.WithCancel(srv.baseCtx)
	id := uuid.NewString()
	c := &client{
		srv:     srv,
		conn:    conn,
		id:      id,
		ip:      ip,
		guest:   guest,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		written: make(chan struct{}),
	}
	c.log.Store(srv.log.With("viewer", id))
	return c
}

func (c *client) logger() *slog.Logger { return c.log.Load() }
