package edge

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// writerRuns counts the goroutines running a client's writer, in the whole
// process (the package's tests do not run in parallel).
func writerRuns() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "edge.(*client).writeLoop(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// pingCounter reads a browser's frames in a goroutine of its own (gorilla
// calls the ping handler from inside a read), counts the edge's pings, and
// answers them with pongs when answer is set.
type pingCounter struct {
	pings  atomic.Int32
	frames chan frame
	err    chan error
}

func countPings(c *wsClient, answer bool) *pingCounter {
	p := &pingCounter{frames: make(chan frame, 1024), err: make(chan error, 1)}
	c.conn.SetPingHandler(func(data string) error {
		p.pings.Add(1)
		if !answer {
			return nil
		}
		err := c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	go func() {
		for {
			f, err := c.read(time.Minute)
			if err != nil {
				p.err <- err
				return
			}
			p.frames <- f
		}
	}()
	return p
}

func (p *pingCounter) next(t *testing.T) frame {
	t.Helper()
	select {
	case f := <-p.frames:
		return f
	case err := <-p.err:
		t.Fatalf("read frame: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return frame{}
}

// An idle browser holds no writer goroutine, between pings and between
// bursts of output; the pings still come, and each burst after an idle
// spell arrives whole and in stream order.
func TestIdleBrowserHasNoWriter(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PingInterval = 50 * time.Millisecond })
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	p := countPings(c, true)
	for round := range 3 {
		waitFor(t, "no writer goroutine", func() bool { return writerRuns() == 0 })
		const n = 300
		ids := make([]string, n)
		for i := range n {
			ids[i] = w.text(fmt.Sprintf("round %d line %d\n", round, i))
		}
		for i := range n {
			if f := p.next(t); f.Type != wire.TypeOutput || f.ID != ids[i] {
				t.Fatalf("round %d: frame %d is %+v, want output %s", round, i, f, ids[i])
			}
		}
	}
	seen := p.pings.Load()
	waitFor(t, "three more pings", func() bool { return p.pings.Load() >= seen+3 })
	waitFor(t, "no writer goroutine after the pings", func() bool { return writerRuns() == 0 })
	c.send(map[string]any{"type": "ping"})
	if f := p.next(t); f.Type != wire.TypePong {
		t.Fatalf("frame %+v, want pong", f)
	}
}

// A browser that stops answering pings is closed by its ping timeout,
// with no writer of its own waiting for it, and leaves the edge.
func TestUnansweredPingsCloseIdleBrowser(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PingInterval = 20 * time.Millisecond; c.WriteTimeout = 200 * time.Millisecond })
	user := newUser()
	e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	p := countPings(c, false)
	select {
	case err := <-p.err:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.CloseGoingAway {
			t.Fatalf("connection ended with %v, want close %d", err, wire.CloseGoingAway)
		}
	case f := <-p.frames:
		t.Fatalf("frame %+v, want the close", f)
	case <-time.After(20 * time.Second):
		t.Fatal("not closed within 20s")
	}
	if p.pings.Load() < 2 {
		t.Fatalf("closed after %d pings, want at least 2", p.pings.Load())
	}
	waitFor(t, "the client to leave the edge", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return len(e.srv.clients) == 0
	})
	waitFor(t, "no writer goroutine", func() bool { return writerRuns() == 0 })
}

// A browser with no hello yet is pinged too, and hears the hello timeout
// from a writer started for it.
func TestHelloTimeoutWithoutWriter(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HelloTimeout = 300 * time.Millisecond; c.PingInterval = 20 * time.Millisecond })
	c := e.dial(nil)
	p := countPings(c, true)
	waitFor(t, "a ping", func() bool { return p.pings.Load() > 0 })
	if f := p.next(t); f.Type != wire.TypeError || f.Code != wire.ErrBadRequest {
		t.Fatalf("frame %+v, want the hello timeout's error", f)
	}
	select {
	case err := <-p.err:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.CloseProtocol {
			t.Fatalf("connection ended with %v, want close %d", err, wire.CloseProtocol)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not closed within 10s")
	}
}
