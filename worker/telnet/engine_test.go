package telnet

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQMethod checks every RFC 1143 transition, including the queue bit.
func TestQMethod(t *testing.T) {
	const (
		on     = "receiveOn"
		onNo   = "receiveOn refused"
		off    = "receiveOff"
		askOn  = "askOn"
		askOff = "askOff"
	)
	cases := []struct {
		from  qstate
		event string
		to    qstate
		send  answer
	}{
		{qNo, on, qYes, sendYes},
		{qNo, onNo, qNo, sendNo},
		{qNo, off, qNo, sendNothing},
		{qNo, askOn, qWantYes, sendYes},
		{qNo, askOff, qNo, sendNothing},

		{qYes, on, qYes, sendNothing},
		{qYes, off, qNo, sendNo},
		{qYes, askOn, qYes, sendNothing},
		{qYes, askOff, qWantNo, sendNo},

		{qWantNo, on, qNo, sendNothing},
		{qWantNo, off, qNo, sendNothing},
		{qWantNo, askOn, qWantNo | qOpposite, sendNothing},
		{qWantNo, askOff, qWantNo, sendNothing},
		{qWantNo | qOpposite, on, qYes, sendNothing},
		{qWantNo | qOpposite, off, qWantYes, sendYes},
		{qWantNo | qOpposite, askOn, qWantNo | qOpposite, sendNothing},
		{qWantNo | qOpposite, askOff, qWantNo, sendNothing},

		{qWantYes, on, qYes, sendNothing},
		{qWantYes, off, qNo, sendNothing},
		{qWantYes, askOn, qWantYes, sendNothing},
		{qWantYes, askOff, qWantYes | qOpposite, sendNothing},
		{qWantYes | qOpposite, on, qWantNo, sendNo},
		{qWantYes | qOpposite, off, qNo, sendNothing},
		{qWantYes | qOpposite, askOn, qWantYes, sendNothing},
		{qWantYes | qOpposite, askOff, qWantYes | qOpposite, sendNothing},
	}
	for _, tc := range cases {
		q := tc.from
		var got answer
		switch tc.event {
		case on:
			got = q.receiveOn(true)
		case onNo:
			got = q.receiveOn(false)
		case off:
			got = q.receiveOff()
		case askOn:
			got = q.askOn()
		case askOff:
			got = q.askOff()
		}
		if q != tc.to || got != tc.send {
			t.Errorf("%v %s: got %v send %d, want %v send %d", tc.from, tc.event, q, got, tc.to, tc.send)
		}
	}
}

func newEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustDecode(t *testing.T, e *Engine, p []byte) []string {
	t.Helper()
	evs, err := e.Decode(p, nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return render(evs)
}

func TestLine(t *testing.T) {
	e := newEngine(t, Options{})
	if got, want := e.Line(nil, "say héllo"), b("say héllo\r\n"); !bytes.Equal(got, want) {
		t.Errorf("utf-8 line = %q, want %q", got, want)
	}
	if got, want := e.Line([]byte("x"), "a\r\nb\nc"), b("xa\r\nb\r\nc\r\n"); !bytes.Equal(got, want) {
		t.Errorf("pasted lines = %q, want %q", got, want)
	}
	if got, want := e.Line(nil, "bad \xff"), b("bad \ufffd\r\n"); !bytes.Equal(got, want) {
		t.Errorf("invalid utf-8 line = %q, want %q", got, want)
	}
	latin := newEngine(t, Options{Charset: "latin-1"})
	if got, want := latin.Line(nil, "ÿé€"), b(IAC, IAC, 0xE9, "?\r\n"); !bytes.Equal(got, want) {
		t.Errorf("latin-1 line = %v, want %v", got, want)
	}
}

func TestGMCPAndResizeNeedAgreement(t *testing.T) {
	e := newEngine(t, Options{Width: 100, Height: 30})
	if out, ok := e.GMCP([]byte("x"), "Core.Ping", nil); ok || string(out) != "x" {
		t.Fatalf("GMCP before agreement = %q, %v", out, ok)
	}
	if out := e.Resize(nil, 120, 40); len(out) != 0 {
		t.Fatalf("Resize before agreement = %v", out)
	}
	mustDecode(t, e, b(IAC, WILL, OptGMCP, IAC, DO, OptNAWS))
	replies := e.Replies(nil)
	if want := b(IAC, WILL, OptNAWS, IAC, SB, OptNAWS, 0, 120, 0, 40, IAC, SE); !bytes.HasSuffix(replies, want) {
		t.Errorf("NAWS on agreement should carry the size set before it: %v", replies)
	}
	if r := e.Replies(nil); len(r) != 0 {
		t.Errorf("Replies did not clear the queue: %v", r)
	}
	out, ok := e.GMCP(nil, "Char.Skills.Get", []byte(`{"x":"`+"\xff"+`"}`))
	if want := b(IAC, SB, OptGMCP, `Char.Skills.Get {"x":"`, IAC, IAC, `"}`, IAC, SE); !ok || !bytes.Equal(out, want) {
		t.Errorf("GMCP = %v %v, want %v", out, ok, want)
	}
	if out, _ := e.GMCP(nil, "Core.Ping", nil); !bytes.Equal(out, b(IAC, SB, OptGMCP, "Core.Ping", IAC, SE)) {
		t.Errorf("GMCP without body = %v", out)
	}
	if out, want := e.Resize(nil, 70000, -5), b(IAC, SB, OptNAWS, IAC, IAC, IAC, IAC, 0, 0, IAC, SE); !bytes.Equal(out, want) {
		t.Errorf("clamped Resize = %v, want %v", out, want)
	}
	mustDecode(t, e, b(IAC, DONT, OptNAWS, IAC, WONT, OptGMCP))
	if want := b(IAC, WONT, OptNAWS, IAC, DONT, OptGMCP); !bytes.Equal(e.Replies(nil), want) {
		t.Errorf("turning off should be acknowledged once")
	}
	if out := e.Resize(nil, 1, 1); len(out) != 0 {
		t.Errorf("Resize after DONT NAWS = %v", out)
	}
	if _, ok := e.GMCP(nil, "Core.Ping", nil); ok {
		t.Errorf("GMCP after WONT GMCP succeeded")
	}
}

func TestServerEchoAndCompressing(t *testing.T) {
	e := newEngine(t, Options{})
	mustDecode(t, e, b(IAC, WILL, OptEcho, IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE))
	if !e.ServerEcho() || !e.Compressing() {
		t.Fatalf("ServerEcho %v Compressing %v, want both", e.ServerEcho(), e.Compressing())
	}
	got := mustDecode(t, e, compressed(t, b(IAC, WONT, OptEcho, "bye"), true))
	if want := []string{"echo false", `text "bye"`}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if e.ServerEcho() || e.Compressing() {
		t.Fatalf("ServerEcho %v Compressing %v after WONT ECHO and stream end", e.ServerEcho(), e.Compressing())
	}
}

// TestCloseMidStream checks Close frees the inflater parked mid-stream
// (goleak in TestMain fails the package otherwise).
func TestCloseMidStream(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustDecode(t, e, b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, compressed(t, []byte("half"), false)))
	if !e.Compressing() {
		t.Fatal("not compressing")
	}
	e.Close()
	e.Close()
	if e.Compressing() {
		t.Fatal("still compressing after Close")
	}
}

// TestMCCP2CorruptMidStream: the stream breaks after some output. The error
// wraps ErrCompression, DONT MCCP2 is owed, MCCP2 is never accepted again,
// and later bytes are plain telnet.
func TestMCCP2CorruptMidStream(t *testing.T) {
	e := newEngine(t, Options{})
	stream := compressed(t, []byte("good text\n"), false)
	stream = append(stream, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // a block of reserved type 3
	evs, err := e.Decode(b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, stream, "dropped"), nil)
	if !errors.Is(err, ErrCompression) {
		t.Fatalf("err = %v, want ErrCompression", err)
	}
	if got, want := render(evs), []string{`text "good text\n"`}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if got, want := e.Replies(nil), b(IAC, DO, OptMCCP2, IAC, DONT, OptMCCP2); !bytes.Equal(got, want) {
		t.Errorf("replies %v, want %v", got, want)
	}
	got := mustDecode(t, e, b(IAC, WONT, OptMCCP2, IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, "plain"))
	if want := []string{`text "plain"`}; !slices.Equal(got, want) {
		t.Errorf("after corruption: events %q, want %q", got, want)
	}
	if got, want := e.Replies(nil), b(IAC, DONT, OptMCCP2); !bytes.Equal(got, want) {
		t.Errorf("after corruption: replies %v, want %v", got, want)
	}
}

func TestEventKindString(t *testing.T) {
	for k, want := range map[EventKind]string{EventText: "text", EventPrompt: "prompt", EventEcho: "echo", EventGMCP: "gmcp", EventMSSP: "mssp", EventMSDP: "msdp", EventMSDPDropped: "msdp-dropped", 9: "EventKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

func TestAppendHelpers(t *testing.T) {
	if got, want := AppendCommand(nil, GA), b(IAC, GA); !bytes.Equal(got, want) {
		t.Errorf("AppendCommand = %v", got)
	}
	if got, want := AppendEscaped(nil, b(1, IAC, 2, IAC)), b(1, IAC, IAC, 2, IAC, IAC); !bytes.Equal(got, want) {
		t.Errorf("AppendEscaped = %v", got)
	}
	if got, want := AppendSubnegotiation(nil, OptGMCP, []byte("a"), b(IAC)), b(IAC, SB, OptGMCP, "a", IAC, IAC, IAC, SE); !bytes.Equal(got, want) {
		t.Errorf("AppendSubnegotiation = %v", got)
	}
	if got, want := appendSubnegString(nil, OptTTYPE, ttypeIS, "a\xffb"), b(IAC, SB, OptTTYPE, ttypeIS, "a", IAC, IAC, "b", IAC, SE); !bytes.Equal(got, want) {
		t.Errorf("appendSubnegString = %v", got)
	}
}

// TestLargeBlocksReleased: a large subnegotiation or reply burst must not
// leave a large buffer pinned on an idle session.
func TestLargeBlocksReleased(t *testing.T) {
	e := newEngine(t, Options{})
	body := `"` + strings.Repeat("x", 5000) + `"`
	got := mustDecode(t, e, b(IAC, WILL, OptGMCP, IAC, SB, OptGMCP, "Big ", body, IAC, SE))
	if want := []string{"gmcp Big " + body}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if cap(e.sb) > 4<<10 {
		t.Errorf("subnegotiation buffer kept %d bytes", cap(e.sb))
	}
	e.Replies(nil)
	for range 2000 {
		mustDecode(t, e, b(IAC, WILL, OptMXP))
	}
	if r := e.Replies(nil); len(r) != 6000 || cap(e.replies) > 4<<10 {
		t.Errorf("replies %d bytes, queue kept %d bytes", len(r), cap(e.replies))
	}
}

// TestOverTCP runs a small MCCP2 game on 127.0.0.1 that writes in many small
// flushed pieces, and decodes what the connection delivers, however the
// kernel splits it.
func TestOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var want bytes.Buffer
	lines := 200
	for i := range lines {
		want.WriteString("line ")
		want.WriteByte(byte('0' + i%10))
		want.WriteString(" é\n")
	}
	gameDone := make(chan error, 1)
	go func() {
		gameDone <- serveCompressedGame(ln, lines)
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{})
	var text bytes.Buffer
	var evs []Event
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		evs, derr := e.Decode(buf[:n], evs[:0])
		if derr != nil {
			t.Fatalf("Decode: %v", derr)
		}
		for _, ev := range evs {
			text.WriteString(ev.Text)
		}
		if r := e.Replies(nil); len(r) > 0 {
			if _, werr := conn.Write(r); werr != nil {
				t.Fatalf("write replies: %v", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if err := <-gameDone; err != nil {
		t.Fatalf("game: %v", err)
	}
	if text.String() != want.String() {
		t.Errorf("decoded text differs: got %d bytes, want %d", text.Len(), want.Len())
	}
	if e.Compressing() {
		t.Error("stream end not seen")
	}
}

func serveCompressedGame(ln net.Listener, lines int) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(b(IAC, WILL, OptMCCP2)); err != nil {
		return err
	}
	answer := make([]byte, 3)
	if _, err := io.ReadFull(c, answer); err != nil {
		return err
	}
	if !bytes.Equal(answer, b(IAC, DO, OptMCCP2)) {
		return errors.New("client did not agree to MCCP2")
	}
	if _, err := c.Write(b(IAC, SB, OptMCCP2, IAC, SE)); err != nil {
		return err
	}
	zw := zlib.NewWriter(c)
	for i := range lines {
		if _, err := zw.Write(b("line ", '0'+i%10, " é\r\n")); err != nil {
			return err
		}
		if err := zw.Flush(); err != nil {
			return err
		}
	}
	return zw.Close()
}

func TestNoCompressionRefusesMCCP2(t *testing.T) {
	e, err := New(Options{NoCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decode([]byte{IAC, WILL, OptMCCP2}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Replies(nil), []byte{IAC, DONT, OptMCCP2}; !bytes.Equal(got, want) {
		t.Fatalf("replies = %v, want %v", got, want)
	}
	if e.Compressing() {
		t.Fatal("compressing after refusing MCCP2")
	}
}
