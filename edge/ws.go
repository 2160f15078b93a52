package edge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// wsTransport is the WebSocket under a client: gorilla's Conn on a socket
// that can hold back writes (corkConn), so WriteMany hands the kernel
// several frames in one write(2).
type wsTransport struct {
	conn    *websocket.Conn
	cork    *corkConn // nil when the socket could not be wrapped
	timeout time.Duration
}

// spillsOver is the size past which gorilla writes a message as its
// buffer (the upgrader's 32 KiB write buffer) plus the rest: a writev on a
// bare TCP socket, two writes on a corkConn unless it is held.
const spillsOver = 30 << 10

func (t *wsTransport) Write(b []byte) error {
	if t.cork != nil && len(b) > spillsOver {
		return t.corked(b)
	}
	return t.write(b)
}

func (t *wsTransport) write(b []byte) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(t.timeout))
	return t.conn.WriteMessage(websocket.TextMessage, b)
}

func (t *wsTransport) WriteMany(frames ...[]byte) error {
	if t.cork == nil {
		for _, b := range frames {
			if err := t.write(b); err != nil {
				return err
			}
		}
		return nil
	}
	return t.corked(frames...)
}

// corked has gorilla write each frame to the held socket (so it keeps its
// own framing, compression and locking), then gives the kernel them all
// in one write.
func (t *wsTransport) corked(frames ...[]byte) error {
	t.cork.hold()
	for _, b := range frames {
		if err := t.write(b); err != nil {
			t.cork.drop()
			return err
		}
	}
	if err := t.cork.release(); err != nil {
		// Part of a frame may have gone: nothing after it could be read.
		_ = t.conn.Close()
		return err
	}
	return nil
}

func (t *wsTransport) Ping() error {
	return t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.timeout))
}

// Close sends the close frame, then gives the reader up to the write
// timeout to see the browser's reply. Closing the socket sooner would be
// wrong: a browser still reading a backlog of frames answers pings on its
// way, and data arriving at a closed socket makes the kernel reset the
// connection, which throws away the close frame still queued for it.
func (t *wsTransport) Close(d Disconnect) error {
	msg := websocket.FormatCloseMessage(d.Code, d.Reason)
	if err := t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(t.timeout)); err != nil {
		_ = t.conn.Close()
		return err
	}
	return t.conn.SetReadDeadline(time.Now().Add(t.timeout))
}

// runWS runs one upgraded connection: the socket's reader in this
// goroutine (the client's writer runs when there is something to write);
// it returns once both ended, the socket is closed and the client left its
// session.
func (s *Server) runWS(c *client, t *wsTransport) {
	t.readLoop(c)
	c.stop()
	_ = t.conn.Close()
	c.leave()
}

// readLoop reads messages and hands them to the client until the
// connection fails or the client closes it (then it keeps reading,
// discarding, until the browser's close reply or the writer's deadline, so
// the close frame is not lost to a TCP reset).
func (t *wsTransport) readLoop(c *client) {
	cfg := &c.srv.cfg
	t.conn.SetReadLimit(hardMessageLimit)
	_ = t.conn.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	pongWait := 2*cfg.PingInterval + cfg.WriteTimeout
	t.conn.SetPongHandler(func(string) error {
		if c.sess != nil && !c.closing() {
			_ = t.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		return nil
	})
	for {
		mt, r, err := t.conn.NextReader()
		if err != nil {
			var ne interface{ Timeout() bool }
			if !c.helloDone && !c.closing() && errors.As(err, &ne) && ne.Timeout() {
				c.fail(protocolError("no hello within " + cfg.HelloTimeout.String()))
				t.drain(c)
			}
			return
		}
		if c.closing() {
			if discard(r) != nil {
				return
			}
			continue
		}
		data, tooBig, err := readMessage(r, cfg.MaxMessage)
		if errors.Is(err, errOverHardLimit) {
			c.srv.m.framesIn.Inc()
			c.closeWith(disconnectTooBig)
			t.drain(c)
			return
		}
		if err != nil {
			return // includes the hard limit on the wire: gorilla already sent 1009
		}
		t.receive(c, mt == websocket.TextMessage, data, tooBig)
		if c.closing() {
			t.drain(c)
			return
		}
		if c.helloDone {
			_ = t.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
	}
}

// receive hands a message to the client. Until hello it does so on a
// goroutine of its own, waiting for it: answering a hello goes deep (the
// game lookup, the subscription, the session count, the attach, all Redis
// calls), and a goroutine's stack keeps the size it grew to until a
// garbage collection finds it mostly unused, so every connection that sits
// idle after its hello would hold that stack. Later messages are answered
// on the reader's stack: doing the same for each input line was measured
// to cost more CPU per echo than it saved memory (BENCHMARKS.md).
func (t *wsTransport) receive(c *client, text bool, data []byte, tooBig bool) {
	if c.helloDone {
		c.receive(text, data, tooBig)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.receive(text, data, tooBig)
	}()
	<-done
}

// drain reads and discards until the browser answers the close frame or
// the grace ends.
func (t *wsTransport) drain(c *client) {
	<-c.written
	_ = t.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	for {
		_, r, err := t.conn.NextReader()
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

// newLimiter is a connection's token bucket for the messages it sends.
func newLimiter(cfg *Config) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(cfg.InputRate), cfg.InputBurst)
}

// corkConn is the socket under gorilla's Conn. Between hold and release the
// bytes gorilla writes collect in a buffer and reach the kernel in one
// write. Only the client's writer holds it; writes from elsewhere meanwhile
// (gorilla's reader answering a ping or a close) join the buffer in order,
// whole frames at a time, since gorilla serializes its writes.
type corkConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  *[]byte
}

// corkBuffers keep idle connections from holding a buffer: one is taken
// for a WriteMany and given back after it.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = true
	c.buf = corkBuffers.Get().(*[]byte)
}

// release writes what was held, under the write deadline gorilla set last.
func (c *corkConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.Conn.Write(*c.buf)
	c.put()
	return err
}

// drop forgets what was held: a write failed, and the connection ends.
func (c *corkConn) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put()
}

func (c *corkConn) put() {
	c.held = false
	if b := c.buf; b != nil {
		c.buf = nil
		if cap(*b) <= 1<<20 { // a huge backlog page is not kept for everyone
			*b = (*b)[:0]
			corkBuffers.Put(b)
		}
	}
}

// corkingWriter hands gorilla's Upgrade a hijacked socket wrapped in a
// corkConn.
type corkingWriter struct {
	http.ResponseWriter
	cork *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("edge: response does not implement http.Hijacker")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.cork = &corkConn{Conn: conn}
	return w.cork, brw, nil
}
