package edge

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// Regression tests for defects found in review. Each failed before its fix.

// With permessage-deflate the 1 MiB hard limit must bound what a frame
// inflates to, not only its compressed size: a few KiB of deflate that
// inflate to many MiB would otherwise be read and discarded at full CPU
// cost, frame after frame.
func TestCompressedBombClosesWith1009(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Compression = true })
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	conn, _, err := d.Dial("ws://"+e.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn}
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(newUser())})
	if f := c.next(); f.Type != "welcome" {
		t.Fatalf("first frame %+v", f)
	}
	conn.EnableWriteCompression(true)
	bomb := []byte(`{"type":"input","text":"` + strings.Repeat("a", 4*hardMessageLimit) + `"}`)
	_ = conn.WriteMessage(websocket.TextMessage, bomb)
	c.expectClose(websocket.CloseMessageTooBig)
}

// Entries replayed from the backlog to a late viewer are older than what
// the live path already reported: they must not move the input route back
// to a previous owner or fence, nor the last status back to a live one
// (which would make the watchdog restart a session the game ended).
func TestObserveNeverMovesBack(t *testing.T) {
	s := &session{}
	s.observe(store.Output{ID: "5-0", Kind: store.OutStatus, State: store.StateDisconnected, Fence: 2, Worker: "w2"})
	s.observe(store.Output{ID: "3-0", Kind: store.OutStatus, State: store.StateConnected, Fence: 1, Worker: "w1"})
	if owner, fence, ok := s.route(); owner != "w2" || fence != 2 || !ok {
		t.Errorf("route after an older entry = %s/%d/%v, want w2/2/true", owner, fence, ok)
	}
	if s.lastStatus != store.StateDisconnected {
		t.Errorf("last status after an older entry = %q, want disconnected", s.lastStatus)
	}
	// A lease read that started before the newer status arrived is older
	// news too: fences only go up.
	s.setRoute(store.Lease{Owner: "w1", Fence: 1}, true)
	if owner, fence, _ := s.route(); owner != "w2" || fence != 2 {
		t.Errorf("route after an older lease = %s/%d, want w2/2", owner, fence)
	}
	// A newer lease wins.
	s.setRoute(store.Lease{Owner: "w3", Fence: 3}, true)
	if owner, fence, _ := s.route(); owner != "w3" || fence != 3 {
		t.Errorf("route after a newer lease = %s/%d, want w3/3", owner, fence)
	}
}

// The session limit must count sessions this edge is attaching right now:
// the worker takes the lease only after the attach, so a script saying
// hello to game after game in quick succession would never see a lease and
// could open a game connection per registered game.
func TestSessionLimitCountsAttachesInFlight(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerUser = 1 })
	user := newUser()
	e.hello(user, "demo", "") // no worker: no lease yet
	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "other", "token": e.token(user)})
	c.expectError(wire.ErrTooManySessions)
	c.expectClose(wire.CloseTooManySessions)
}

// A session the game ended does not count: its viewer may keep the tab open.
func TestSessionLimitIgnoresEndedLocalSessions(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerUser = 1 })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c1 := e.hello(user, "demo", "")
	w.write(store.Output{Kind: store.OutStatus, State: store.StateDisconnected})
	if f := c1.next(); f.State != store.StateDisconnected {
		t.Fatalf("frame %+v, want status disconnected", f)
	}
	w.release()
	c2 := e.dial(nil)
	c2.send(map[string]any{"type": "hello", "game": "other", "token": e.token(user)})
	if f := c2.next(); f.Type != "welcome" {
		t.Fatalf("hello beside an ended session: %+v, want welcome", f)
	}
}

// The play page must not be framed by another site (clickjacking of the
// terminal).
func TestPagesRefuseFraming(t *testing.T) {
	e := newEnv(t, nil)
	resp, _ := httpGet(t, "http://"+e.addr+"/play/demo", nil)
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("framing not refused: CSP %q, X-Frame-Options %q",
			resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options"))
	}
}

// A browser that vanishes (TCP reset) while its hello is being handled:
// the writer's failed ping and the reader's hello must not race (run with
// -race), and the viewer must leave the hub.
func TestBrowserResetDuringHello(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PingInterval = 10 * time.Millisecond })
	for range 20 {
		c := e.dial(nil)
		c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(newUser())})
		if tc, ok := c.conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		c.conn.Close()
	}
	waitFor(t, "every viewer to leave", func() bool {
		e.srv.mu.Lock()
		n := len(e.srv.clients)
		e.srv.mu.Unlock()
		return n == 0 && len(e.srv.hub.snapshot()) == 0
	})
}
