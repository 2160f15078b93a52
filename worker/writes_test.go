package worker

import (
	"bytes"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// TestNegotiationReplyAndInputNeverShareAWrite: some servers read a
// negotiation reply and the player's next line in one read, act on the
// reply and drop the rest of the read. The worker writes them separately.
//
// The game is on TLS so that its reads show the worker's writes: a TLS
// record is one write, and a read returns at most one record (over plain
// TCP the kernel may merge two writes into one read, so read boundaries
// would prove nothing). The game drops whatever follows a negotiation in
// the same read, as those servers do. To be sure the reply and the line
// wait in the queue together (as they do when a line is typed while the
// writer is busy), the test holds the session's lock while both are
// queued, the reply by the path the reader uses, the line by input's.
func TestNegotiationReplyAndInputNeverShareAWrite(t *testing.T) {
	now := time.Now()
	self := issue(t, nil, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	cert, err := tls.LoadX509KeyPair(self.certFile, self.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	reads := make(chan []byte, 16)
	addr := e.fakeGame("picky", func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		defer tc.Close()
		if _, err := tc.Write([]byte("login: ")); err != nil {
			return
		}
		buf := make([]byte, 4096)
		for {
			n, err := tc.Read(buf)
			if n > 0 {
				reads <- bytes.Clone(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	e.register("picky", addr, func(g *store.Game) { g.TLS, g.TLSInsecure = true, true })
	u := e.user("quick")
	e.attachFrom(u, "picky", "203.0.113.7")
	e.waitGameText(u, "picky", "login: ")

	w.mu.Lock()
	s := w.sessions[store.SessionKey{User: u, Game: "picky"}]
	w.mu.Unlock()
	reply := []byte{telnet.IAC, telnet.WONT, 99}
	s.mu.Lock()
	if !s.sendLocked(reply) || !queueInputLocked(s, s.eng.Line(nil, "bob")) {
		s.mu.Unlock()
		t.Fatal("no connection to queue on")
	}
	s.mu.Unlock()

	// What the picky game keeps: a read that begins with IAC is a
	// negotiation, and the rest of it is lost.
	var kept []byte
	sawReply := false
	deadline := time.After(10 * time.Second)
	for !bytes.Contains(kept, []byte("bob\r\n")) {
		select {
		case r := <-reads:
			if r[0] == telnet.IAC {
				sawReply = sawReply || bytes.HasPrefix(r, reply)
				if len(r) > len(reply) {
					t.Errorf("one read held the reply and more: %q", r)
				}
				continue
			}
			kept = append(kept, r...)
		case <-deadline:
			t.Fatalf("the game never kept the player's line (kept %q)", kept)
		}
	}
	if !sawReply {
		t.Error("the reply did not come first, in a read of its own")
	}
}

// queueInputLocked queues a player's line exactly as input does.
func queueInputLocked(s *session, line []byte) bool { return s.queueLocked(line, true) }

// TestWriteQueueKeepsKindsApart: consecutive sends of one kind share a
// segment (one write); a change of kind starts a new one, in order.
func TestWriteQueueKeepsKindsApart(t *testing.T) {
	cfg := testConfig()
	cfg.SetDefaults()
	s := &session{w: &Worker{cfg: cfg}}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s.conn = a
	s.writing = true // no writer: the test reads the queue
	for _, q := range []struct {
		p     string
		input bool
	}{{"r1", false}, {"r2", false}, {"l1\r\n", true}, {"l2\r\n", true}, {"r3", false}} {
		if !s.queueLocked([]byte(q.p), q.input) {
			t.Fatal("queue refused")
		}
	}
	var got []string
	for _, seg := range s.wq {
		got = append(got, string(seg.b))
	}
	if want := []string{"r1r2", "l1\r\nl2\r\n", "r3"}; !slices.Equal(got, want) || s.wqBytes != 14 {
		t.Errorf("segments %q (%d bytes), want %q", got, s.wqBytes, want)
	}
}

// TestProxyHeaderBytes: v1 and v2 headers as proxy-protocol.txt spells
// them, for each family mix, and UNKNOWN / LOCAL without a player address.
func TestProxyHeaderBytes(t *testing.T) {
	local4 := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40000}
	local6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 40001}
	for _, c := range []struct {
		v, ip string
		local net.Addr
		want  string
	}{
		{"v1", "203.0.113.7", local4, "PROXY TCP4 203.0.113.7 127.0.0.1 0 40000\r\n"},
		{"v1", "2001:db8::7", local4, "PROXY TCP6 2001:db8::7 ::ffff:127.0.0.1 0 40000\r\n"},
		{"v1", "203.0.113.7", local6, "PROXY TCP6 ::ffff:203.0.113.7 ::1 0 40001\r\n"},
		{"v1", "203.0.113.7:5555", local4, "PROXY TCP4 203.0.113.7 127.0.0.1 0 40000\r\n"},
		{"v1", "", local4, "PROXY UNKNOWN\r\n"},
		{"v1", "not an ip", local4, "PROXY UNKNOWN\r\n"},
		{"v2", "203.0.113.7", local4, "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" +
			"\xcb\x00\x71\x07\x7f\x00\x00\x01\x00\x00\x9c\x40"},
		{"v2", "", local4, "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"},
	} {
		if got := string(proxyHeader(c.v, c.ip, c.local)); got != c.want {
			t.Errorf("%s %q %s: %q, want %q", c.v, c.ip, c.local, got, c.want)
		}
	}
	h := proxyHeader("v2", "2001:db8::7", local6)
	if len(h) != 16+36 || h[13] != 0x21 || h[15] != 36 || !bytes.Equal(h[16:32], net.ParseIP("2001:db8::7")) {
		t.Errorf("v2 IPv6 header % x", h)
	}
}
