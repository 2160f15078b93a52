package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// memTransport is a browser's socket in memory: it keeps every frame the
// client wrote and how, and the disconnect it closed with. With a gate,
// each write waits for the gate to open (a browser that stopped reading).
type memTransport struct {
	mu     sync.Mutex
	frames [][]byte
	writes int   // calls of Write and WriteMany
	many   []int // the size of each WriteMany
	closed *Disconnect
	gate   chan struct{}
}

func (m *memTransport) wait() {
	m.mu.Lock()
	g := m.gate
	m.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (m *memTransport) Write(b []byte) error { return m.WriteMany(b) }

func (m *memTransport) WriteMany(frames ...[]byte) error {
	m.wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed != nil {
		return errors.New("write after close")
	}
	m.writes++
	if len(frames) > 1 {
		m.many = append(m.many, len(frames))
	}
	for _, f := range frames {
		m.frames = append(m.frames, append([]byte(nil), f...))
	}
	return nil
}

func (m *memTransport) Ping() error { return nil }

func (m *memTransport) Close(d Disconnect) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed != nil {
		return errors.New("closed twice")
	}
	m.closed = &d
	return nil
}

func (m *memTransport) decoded(t testing.TB) []wire.Frame {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]wire.Frame, len(m.frames))
	for i, b := range m.frames {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("frame %q: %v", b, err)
		}
	}
	return out
}

func (m *memTransport) disconnect() *Disconnect {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// memClient is a client of e's edge on a memTransport. The test goroutine
// is its reader: it calls say, which is what the socket's reader does with
// each message.
type memClient struct {
	t  testing.TB
	c  *client
	tr *memTransport
}

func (e *env) memClient(tr *memTransport) *memClient {
	e.t.Helper()
	if tr == nil {
		tr = &memTransport{}
	}
	c := newClient(e.srv, tr, "127.0.0.1", "")
	// Stopped before the edge (cleanups run last first), as the reader's
	// end would.
	e.t.Cleanup(func() {
		tr.mu.Lock()
		if tr.gate != nil {
			close(tr.gate)
			tr.gate = nil
		}
		tr.mu.Unlock()
		c.stop()
		c.leave()
	})
	return &memClient{t: e.t, c: c, tr: tr}
}

func (m *memClient) say(v any) {
	m.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		m.t.Fatal(err)
	}
	m.c.receive(true, b, false)
}

// closedWith waits for the client to close and checks the disconnect.
func (m *memClient) closedWith(code int) Disconnect {
	m.t.Helper()
	waitFor(m.t, fmt.Sprintf("a close %d", code), func() bool { return m.tr.disconnect() != nil })
	d := *m.tr.disconnect()
	if d.Code != code {
		m.t.Fatalf("closed with %v, want code %d; frames %+v", d, code, m.tr.decoded(m.t))
	}
	return d
}

// A refused hello sends the error frame its close code comes with, then
// the close, and both say the same reason: the protocol's decision, seen
// without a socket.
func TestMemRefusedHelloSaysWhyThenCloses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerUser = 1 })
	busy := newUser()
	e.worker("w1", store.SessionKey{User: busy, Game: "other"})
	for _, tc := range []struct {
		name  string
		hello map[string]any
		close int
		code  string
	}{
		{"no token", map[string]any{"type": "hello", "game": "demo"}, wire.CloseUnauthorized, wire.ErrUnauthorized},
		{"unknown game", map[string]any{"type": "hello", "game": "nope", "token": e.token(newUser())}, wire.CloseUnknownGame, wire.ErrUnknownGame},
		{"too many sessions", map[string]any{"type": "hello", "game": "demo", "token": e.token(busy)}, wire.CloseTooManySessions, wire.ErrTooManySessions},
		{"input first", map[string]any{"type": "input", "text": "look"}, wire.CloseProtocol, wire.ErrBadRequest},
		{"hello of the wrong shape", map[string]any{"type": "hello", "game": 7}, wire.CloseProtocol, wire.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.memClient(nil)
			m.say(tc.hello)
			if !m.c.closing() {
				t.Fatal("the client is not closing after the message was handled")
			}
			d := m.closedWith(tc.close)
			fs := m.tr.decoded(t)
			if len(fs) != 1 || fs[0].Type != wire.TypeError || fs[0].Code != tc.code || fs[0].Message != d.Reason {
				t.Fatalf("frames %+v before close %v, want one error %s saying the close reason", fs, d, tc.code)
			}
			if m.c.sess != nil {
				t.Fatal("a refused hello left the client in a session")
			}
		})
	}
}

// A backlog goes to the transport a batch at a time, in stream order,
// after the welcome.
func TestMemBacklogIsWrittenInBatches(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	const n = 300
	ids := make([]string, n)
	for i := range n {
		ids[i] = w.text(fmt.Sprintf("line %d\n", i))
	}
	m := e.memClient(nil)
	m.say(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "cols": 80, "rows": 24})
	waitFor(t, "the backlog", func() bool { return len(m.tr.decoded(t)) >= n+1 })
	fs := m.tr.decoded(t)
	if fs[0].Type != wire.TypeWelcome {
		t.Fatalf("first frame %+v, want welcome", fs[0])
	}
	for i, f := range fs[1:] {
		if f.Type != wire.TypeOutput || f.ID != ids[i] {
			t.Fatalf("frame %d is %+v, want output %s", i+1, f, ids[i])
		}
	}
	m.tr.mu.Lock()
	writes, many := m.tr.writes, m.tr.many
	m.tr.mu.Unlock()
	// Batches of 64 frames make 5; one write per frame would be 301.
	if max := 20; writes > max {
		t.Fatalf("%d frames took %d writes (batches %v), want at most %d", n+1, writes, many, max)
	}
	if got := counterValue(t, e.srv.m.framesOut); got != n+1 {
		t.Fatalf("frames_out %v, want %d", got, n+1)
	}
}

// A browser that stops reading while live output arrives is cut with
// 4008 once its queue fills, and the close still goes out after the
// write it was stuck in.
func TestMemSlowBrowserIsCut(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SendQueue = 16 })
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	tr := &memTransport{gate: make(chan struct{})}
	m := e.memClient(tr)
	m.say(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "cols": 80, "rows": 24})
	// The writer is stuck writing the welcome; live entries pile up.
	for i := 0; i < 1000 && !m.c.closing(); i++ {
		w.text(fmt.Sprintf("flood %d\n", i))
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // let the pub/sub messages in
		}
	}
	waitFor(t, "the client to give up on the browser", m.c.closing)
	tr.mu.Lock()
	close(tr.gate)
	tr.gate = nil
	tr.mu.Unlock()
	m.closedWith(wire.CloseTooSlow)
}

// Input routing is the session's: a cached route no worker answers on is
// read again from the lease once, and the line goes to the lease's owner
// with its fence, tracked under that fence.
func TestSessionInputRefreshesDeadRoute(t *testing.T) {
	e := newEnv(t, nil)
	key := store.SessionKey{User: newUser(), Game: "demo"}
	w := e.worker("w2", key)
	s := &session{key: key}
	s.setRoute(store.Lease{Owner: "w-gone", Fence: w.lease.Fence}, true) // nobody listens there
	var in inputTracker
	cmd := store.Command{Type: store.CmdInput, User: key.User, Game: key.Game, Viewer: "v", Text: "look", Seq: in.next()}
	if _, err := s.sendInput(context.Background(), e.st, cmd, &in, time.Now()); err != nil {
		t.Fatalf("sendInput: %v", err)
	}
	got := w.nextInput()
	if got.Text != "look" || got.Fence != w.lease.Fence {
		t.Fatalf("worker got %+v, want look under fence %d", got, w.lease.Fence)
	}
	if owner, _, _ := s.route(); owner != "w2" {
		t.Fatalf("route is %q after the refresh, want w2", owner)
	}
	if !in.anyBelow(w.lease.Fence + 1) {
		t.Fatal("the line sent is not tracked")
	}

	w.release()
	s.setRoute(store.Lease{}, false)
	cmd.Seq = in.next()
	if _, err := s.sendInput(context.Background(), e.st, cmd, &in, time.Now()); !errors.Is(err, errNoOwner) {
		t.Fatalf("sendInput without a lease: %v, want errNoOwner", err)
	}
	in.ack(w.lease.Fence, 1)
	if in.anyBelow(1 << 62) {
		t.Fatal("a line not sent is still tracked")
	}
}

func TestDisconnectIsAnError(t *testing.T) {
	err := fmt.Errorf("hello: %w", Disconnect{Code: wire.CloseTooManySessions, Reason: "too many sessions: 5 of 5 in use"})
	var d Disconnect
	if !errors.As(err, &d) || d.Code != wire.CloseTooManySessions {
		t.Fatalf("errors.As(%v) = %v", err, d)
	}
	if !strings.Contains(err.Error(), "4029") {
		t.Fatalf("%q does not name the code", err)
	}
}

// Over a real socket, with and without permessage-deflate, a batched
// backlog arrives whole and in order, and pings the browser sends
// meanwhile are answered (gorilla's reader writes the pongs while the
// writer may hold the socket corked: they must neither be lost nor cut
// into a frame).
func TestBacklogOverSocketInBatches(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			// A slow box under -race can take seconds over the batches; the
			// test env's 1 s ping would cut it (pongs only come between
			// flushes), which is not what this test is about.
			e := newEnv(t, func(c *Config) { c.Compression, c.PingInterval = compress, 5*time.Second })
			user := newUser()
			w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
			const n = 300
			ids := make([]string, n)
			// A frame over gorilla's write buffer is written as two pieces;
			// one in a batch and one alone must arrive whole too.
			big := strings.Repeat("\x1b[1m!", 8<<10) + "\n" // ~100 KiB once JSON-escaped
			for i := range n {
				text := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%97))
				if i == n/2 {
					text = big
				}
				ids[i] = w.text(text)
			}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: compress}
			conn, _, err := d.Dial("ws://"+e.addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			var pongs atomic.Int32
			conn.SetPongHandler(func(string) error { pongs.Add(1); return nil })
			c := &wsClient{t: t, conn: conn}
			c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "cols": 80, "rows": 24})
			const pings = 20
			for range pings {
				if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			if f := c.next(); f.Type != wire.TypeWelcome {
				t.Fatalf("first frame %+v, want welcome", f)
			}
			for i := range n {
				if f := c.next(); f.Type != wire.TypeOutput || f.ID != ids[i] || (i == n/2) != (f.Text == big) {
					t.Fatalf("frame %d is %.200v, want output %s", i, f, ids[i])
				}
			}
			c.send(map[string]any{"type": "ping"})
			if f := c.next(); f.Type != wire.TypePong {
				t.Fatalf("frame %+v, want pong", f)
			}
			if got := pongs.Load(); got != pings {
				t.Fatalf("%d pongs for %d pings", got, pings)
			}
			id := w.text(big)
			if f := c.next(); f.ID != id || f.Text != big {
				t.Fatalf("live frame %.80q (id %s), want the big one %s", f.Text, f.ID, id)
			}
		})
	}
}
