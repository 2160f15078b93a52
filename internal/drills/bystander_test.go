package drills

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// bystander is a player who connects to the demo game directly over
// telnet, not through Trellis. What it says reaches Trellis players through
// their game connections, so it makes game output at moments the drill
// chooses — while Redis is down, say — without any input going through
// Trellis. It answers no telnet negotiation: the game waits a moment for
// answers and then goes on, as real games do, and never compresses.
type bystander struct {
	t    testing.TB
	name string
	conn net.Conn

	mu      sync.Mutex
	got     bytes.Buffer
	changed chan struct{}
	done    chan struct{}
}

// newBystander connects to the game at addr and logs name in.
func newBystander(t testing.TB, addr, name string) *bystander {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("bystander: dial %s: %v", addr, err)
	}
	b := &bystander{t: t, name: name, conn: conn, changed: make(chan struct{}), done: make(chan struct{})}
	go b.read()
	t.Cleanup(b.close)
	for _, step := range []struct{ prompt, answer string }{
		{"What is your name?", name},
		{"Password:", "pw-" + strings.ToLower(name)},
	} {
		b.waitFor(step.prompt)
		if err := b.send(step.answer); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor("> ")
	return b
}

func (b *bystander) read() {
	defer close(b.done)
	buf := make([]byte, 4096)
	for {
		n, err := b.conn.Read(buf)
		b.mu.Lock()
		b.got.Write(buf[:n])
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until the game has sent s (telnet commands and all: they
// never look like text).
func (b *bystander) waitFor(s string) {
	b.t.Helper()
	timer := time.NewTimer(attachTimeout)
	defer timer.Stop()
	for {
		b.mu.Lock()
		ok, changed := bytes.Contains(b.got.Bytes(), []byte(s)), b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-b.done:
			b.t.Fatalf("bystander %s: the game hung up while we waited for %q", b.name, s)
		case <-timer.C:
			b.t.Fatalf("bystander %s: no %q within %s", b.name, s, attachTimeout)
		}
	}
}

// send types one line. It may be called from any one goroutine at a time.
func (b *bystander) send(line string) error {
	_ = b.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.conn.Write([]byte(line + "\r\n")); err != nil {
		return fmt.Errorf("bystander %s: send %q: %w", b.name, line, err)
	}
	return nil
}

func (b *bystander) close() {
	b.conn.Close()
	<-b.done
}
