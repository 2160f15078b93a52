package drills

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/wire"
)

// Hostile games: real TCP servers on 127.0.0.1 that a worker dials like
// any registered game, each misbehaving in one way a broken or malicious
// MUD does. Every loop is bounded by the game's context (cancelled by
// stop) and by a count; every goroutine is waited for in stop.

// Telnet bytes the hostile games speak.
const (
	tnIAC   = 255
	tnWILL  = 251
	tnDO    = 253
	tnSB    = 250
	tnSE    = 240
	tnMCCP2 = 86
	tnTTYPE = 24
	tnGMCP  = 201
)

// hostileGame is one misbehaving game server.
type hostileGame struct {
	id, name string
	user     string // the player (a sink) attached to it
	ln       net.Listener
	handle   func(ctx context.Context, g *hostileGame, conn net.Conn)

	accepted atomic.Int64 // game connections the worker opened
	written  atomic.Int64 // bytes the game managed to write
	events   atomic.Int64 // handler-specific: bombs sent, packages sent, ...
	note     atomic.Value // handler-specific remark (string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// startHostile listens on a loopback port and serves handle on every
// connection until stop. rcvBuf, when positive, shrinks the receive buffer
// of accepted sockets (a game that never reads fills up sooner).
func startHostile(t *testing.T, id, name, user string, rcvBuf int, handle func(context.Context, *hostileGame, net.Conn)) *hostileGame {
	t.Helper()
	lc := net.ListenConfig{}
	if rcvBuf > 0 {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostile game %s: listen: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &hostileGame{id: id, name: name, user: user, ln: ln, handle: handle, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(g.stop)
	return g
}

func (g *hostileGame) addr() string { return g.ln.Addr().String() }

func (g *hostileGame) accept() {
	defer g.wg.Done()
	for range 10_000 { // bounded: a worker redials with backoff, far fewer
		conn, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.ctx.Err() != nil {
			g.mu.Unlock()
			conn.Close()
			return
		}
		g.conns[conn] = struct{}{}
		g.wg.Add(1)
		g.mu.Unlock()
		g.accepted.Add(1)
		go func() {
			defer g.wg.Done()
			defer func() {
				g.mu.Lock()
				delete(g.conns, conn)
				g.mu.Unlock()
				conn.Close()
			}()
			g.handle(g.ctx, g, conn)
		}()
	}
}

// kernelQueued is the bytes the worker has written to this game that sit
// in the kernel (the worker's send queue and the game's receive queue),
// over the game's open connections.
func (g *hostileGame) kernelQueued() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var total int64
	for c := range g.conns {
		game, worker := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
		if n, ok := kernelQueued(worker.Port, game.Port); ok {
			total += n
		}
	}
	return total
}

// stop closes the listener and every connection and waits for the
// handlers.
func (g *hostileGame) stop() {
	g.cancel()
	g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// write writes all of p, retrying short timeouts while the game runs (a
// worker applying backpressure is not an error), and counts what went out.
func (g *hostileGame) write(ctx context.Context, conn net.Conn, p []byte) error {
	for len(p) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = conn.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := conn.Write(p)
		g.written.Add(int64(n))
		p = p[n:]
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return err
		}
	}
	return nil
}

// sleep waits d or until the game stops; false if it stopped.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// telnetListener reads what the worker sends (so the game never backs up
// the worker's writes) and remembers the first 4 KiB, where the answers
// to the game's offers are.
type telnetListener struct {
	mu   sync.Mutex
	head []byte
	done chan struct{}
}

func listenTelnet(g *hostileGame, conn net.Conn) *telnetListener {
	l := &telnetListener{done: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer close(l.done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			l.mu.Lock()
			if room := 4096 - len(l.head); room > 0 {
				l.head = append(l.head, buf[:min(n, room)]...)
			}
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return l
}

// waitFor waits until the worker has sent seq, up to timeout.
func (l *telnetListener) waitFor(ctx context.Context, seq []byte, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		ok := bytes.Contains(l.head, seq)
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// zipBomb is one complete zlib stream that inflates to a lot of text.
type zipBomb struct {
	name       string
	compressed []byte
	inflated   int
}

// buildZipBombs compresses size bytes of text twice: once one endless
// line (no newline at all), once 80-byte lines.
func buildZipBombs(t *testing.T, size int) []zipBomb {
	t.Helper()
	var out []zipBomb
	for _, b := range []struct {
		name    string
		pattern []byte
	}{
		{"no newlines", []byte("zipbomb ")},
		{"80-byte lines", append(bytes.Repeat([]byte("z"), 78), '\r', '\n')},
	} {
		chunk := bytes.Repeat(b.pattern, (64<<10)/len(b.pattern))
		var buf bytes.Buffer
		zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < size {
			k, _ := zw.Write(chunk)
			n += k
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		out = append(out, zipBomb{name: b.name, compressed: buf.Bytes(), inflated: n})
	}
	return out
}

// zipBombHandler offers MCCP2 and, once the worker agrees, sends rounds of
// zip bombs (each a fresh compressed stream: IAC SB MCCP2 IAC SE, then the
// zlib stream, which ends cleanly), a pause between rounds, at most
// *rounds rounds over all connections.
func zipBombHandler(bombs []zipBomb, rounds *atomic.Int64, pause time.Duration) func(context.Context, *hostileGame, net.Conn) {
	return func(ctx context.Context, g *hostileGame, conn net.Conn) {
		tl := listenTelnet(g, conn)
		if g.write(ctx, conn, []byte{tnIAC, tnWILL, tnMCCP2}) != nil {
			return
		}
		if !tl.waitFor(ctx, []byte{tnIAC, tnDO, tnMCCP2}, 5*time.Second) {
			g.note.Store("the worker did not accept MCCP2")
			<-ctx.Done()
			return
		}
		for rounds.Add(-1) >= 0 {
			for _, b := range bombs {
				if g.write(ctx, conn, []byte{tnIAC, tnSB, tnMCCP2, tnIAC, tnSE}) != nil ||
					g.write(ctx, conn, b.compressed) != nil {
					return
				}
				g.events.Add(1)
			}
			if !sleep(ctx, pause) {
				return
			}
		}
		<-ctx.Done()
	}
}

// pacedFlood writes chunk over and over at about rate bytes/s, at most
// limit bytes, after prefix.
func pacedFlood(prefix, chunk []byte, rate int, limit int64) func(context.Context, *hostileGame, net.Conn) {
	return func(ctx context.Context, g *hostileGame, conn net.Conn) {
		listenTelnet(g, conn)
		if g.write(ctx, conn, prefix) != nil {
			return
		}
		start := time.Now()
		var sent int64
		for sent < limit {
			due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 && !sleep(ctx, d) {
				return
			}
			if g.write(ctx, conn, chunk) != nil {
				return
			}
			sent += int64(len(chunk))
		}
		<-ctx.Done()
	}
}

// endlessSBHandler offers GMCP, opens a GMCP subnegotiation and never
// closes it: bytes forever, never IAC SE.
func endlessSBHandler(rate int, limit int64) func(context.Context, *hostileGame, net.Conn) {
	chunk := bytes.Repeat([]byte(`Core.Junk {"x":"endless-subnegotiation"} `), 32<<10/42)
	return pacedFlood([]byte{tnIAC, tnWILL, tnGMCP, tnIAC, tnSB, tnGMCP}, chunk, rate, limit)
}

// noNewlineHandler floods text that never has a newline (nor CR, nor GA).
func noNewlineHandler(rate int, limit int64) func(context.Context, *hostileGame, net.Conn) {
	chunk := bytes.Repeat([]byte("no newline ever "), 16<<10/16)
	return pacedFlood([]byte("Welcome. "), chunk, rate, limit)
}

// gmcpFloodHandler offers GMCP and, once the worker agrees, sends n
// distinct packages (Pkg.1 {"x":1} ... ), on at most *conns connections.
func gmcpFloodHandler(n int, conns *atomic.Int64) func(context.Context, *hostileGame, net.Conn) {
	var msgs []byte
	for i := 1; i <= n; i++ {
		msgs = append(msgs, tnIAC, tnSB, tnGMCP)
		msgs = fmt.Appendf(msgs, `Pkg.%d {"x":%d}`, i, i)
		msgs = append(msgs, tnIAC, tnSE)
	}
	return func(ctx context.Context, g *hostileGame, conn net.Conn) {
		tl := listenTelnet(g, conn)
		if g.write(ctx, conn, append([]byte("GMCP flood game\r\n"), tnIAC, tnWILL, tnGMCP)) != nil {
			return
		}
		if !tl.waitFor(ctx, []byte{tnIAC, tnDO, tnGMCP}, 5*time.Second) {
			g.note.Store("the worker did not accept GMCP")
			<-ctx.Done()
			return
		}
		if conns.Add(-1) >= 0 {
			if g.write(ctx, conn, msgs) != nil {
				return
			}
			g.events.Add(int64(n))
		}
		<-ctx.Done()
	}
}

// neverReadsHandler says hello and a prompt, then never reads its socket:
// what the worker writes backs up. Besides the player's input it provokes
// writes: it asks for the terminal type (DO TTYPE, then SB TTYPE SEND
// perSecond times a second, at most limit times), which the worker answers
// every time, into a socket nobody reads.
func neverReadsHandler(perSecond, limit int) func(context.Context, *hostileGame, net.Conn) {
	const batch = 100
	send := bytes.Repeat([]byte{tnIAC, tnSB, tnTTYPE, 1, tnIAC, tnSE}, batch)
	return func(ctx context.Context, g *hostileGame, conn net.Conn) {
		if g.write(ctx, conn, append([]byte("This game never listens.\r\nLogin: "), tnIAC, tnDO, tnTTYPE)) != nil {
			return
		}
		start := time.Now()
		for i := 0; i < limit/batch; i++ {
			due := start.Add(time.Duration(i*batch) * time.Second / time.Duration(perSecond))
			if d := time.Until(due); d > 0 && !sleep(ctx, d) {
				return
			}
			if g.write(ctx, conn, send) != nil {
				return
			}
			g.events.Add(batch)
		}
		<-ctx.Done()
	}
}

// trickleHandler writes 1-5 bytes at a time with a short sleep between,
// at most limit writes.
func trickleHandler(limit int) func(context.Context, *hostileGame, net.Conn) {
	text := []byte("a trickle of text, a few bytes at a time\r\n")
	return func(ctx context.Context, g *hostileGame, conn net.Conn) {
		listenTelnet(g, conn)
		pos := 0
		for range limit {
			n := 1 + rand.IntN(5)
			var p []byte
			for range n {
				p = append(p, text[pos])
				pos = (pos + 1) % len(text)
			}
			if g.write(ctx, conn, p) != nil {
				return
			}
			g.events.Add(1)
			if !sleep(ctx, 2*time.Millisecond) {
				return
			}
		}
		<-ctx.Done()
	}
}

// sink is a browser tab on a hostile game: it reads every frame but keeps
// only counts (a zip bomb's frames would not fit in a player's log), and
// reconnects with resume like the web client. With a line set it types it
// every period (at the game that never reads).
type sink struct {
	user, game, token string
	edges             []string
	line              string
	period            time.Duration

	writeMu sync.Mutex

	mu       sync.Mutex
	conn     *websocket.Conn
	conns    int
	frames   int64
	outputs  int64
	outBytes int64 // output text received
	maxFrame int64 // the largest frame, in bytes on the wire
	gaps     int
	errs     map[string]int // error frames by code
	closes   map[string]int // connection ends by close code or error
	states   []string       // status states, in order (first 50)
	lastID   string
	typed    int // lines sent
	refused  int // lines the edge would not take (send failed)

	stop chan struct{}
	wg   sync.WaitGroup
}

func startSink(t *testing.T, user, game string, edges []string, line string, period time.Duration) *sink {
	t.Helper()
	tok, err := auth.Mint([]byte(authSecret), user, time.Hour)
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	s := &sink{user: user, game: game, token: tok, edges: edges, line: line, period: period,
		errs: map[string]int{}, closes: map[string]int{}, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	if line != "" {
		s.wg.Add(1)
		go s.typeLines()
	}
	t.Cleanup(s.close)
	return s
}

func (s *sink) run() {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for i := 0; i < 100; i++ { // bounded reconnects
		err := s.session(s.edges[i%len(s.edges)])
		why := "error"
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			why = strconv.Itoa(ce.Code)
		}
		s.mu.Lock()
		s.closes[why]++
		s.mu.Unlock()
		if errors.As(err, &ce) && wire.Final(ce.Code) {
			return
		}
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *sink) session(addr string) error {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+addr+"/ws", http.Header{})
	if err != nil {
		return err
	}
	defer conn.Close()
	s.mu.Lock()
	resume := s.lastID
	s.mu.Unlock()
	hello, _ := json.Marshal(map[string]any{"type": "hello", "game": s.game, "token": s.token, "resume": resume, "cols": 100, "rows": 30})
	s.writeMu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = conn.WriteMessage(websocket.TextMessage, hello)
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return errors.New("stopped")
	default:
	}
	s.conn = conn
	s.conns++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.conn == conn {
			s.conn = nil
		}
		s.mu.Unlock()
	}()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var f struct {
			Type  string `json:"type"`
			ID    string `json:"id"`
			Text  string `json:"text"`
			State string `json:"state"`
			Code  string `json:"code"`
		}
		_ = json.Unmarshal(msg, &f)
		s.mu.Lock()
		s.frames++
		s.maxFrame = max(s.maxFrame, int64(len(msg)))
		if f.ID != "" {
			s.lastID = f.ID
		}
		switch f.Type {
		case "output":
			s.outputs++
			s.outBytes += int64(len(f.Text))
		case "gap":
			s.gaps++
		case "error":
			s.errs[f.Code]++
		case "status":
			if len(s.states) < 50 {
				s.states = append(s.states, f.State)
			}
		}
		s.mu.Unlock()
	}
}

// typeLines types s.line every period while connected.
func (s *sink) typeLines() {
	defer s.wg.Done()
	msg, _ := json.Marshal(map[string]any{"type": "input", "text": s.line})
	tick := time.NewTicker(s.period)
	defer tick.Stop()
	for range 100_000 { // bounded; the stop ends it long before
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn == nil {
			continue
		}
		s.writeMu.Lock()
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		err := conn.WriteMessage(websocket.TextMessage, msg)
		s.writeMu.Unlock()
		s.mu.Lock()
		if err != nil {
			s.refused++
		} else {
			s.typed++
		}
		s.mu.Unlock()
	}
}

// sawState reports whether a status frame with one of states arrived.
func (s *sink) sawState(states ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, got := range s.states {
		for _, want := range states {
			if got == want {
				return true
			}
		}
	}
	return false
}

func (s *sink) close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		s.writeMu.Lock()
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		s.writeMu.Unlock()
		conn.Close()
	}
	s.wg.Wait()
}

// summary is one line about what the sink saw.
func (s *sink) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states
	if len(st) > 8 {
		st = append(append([]string(nil), st[:4]...), append([]string{"..."}, st[len(st)-3:]...)...)
	}
	return fmt.Sprintf("frames %d (output %d, %s of text, largest frame %s), gaps %d, errors %v, ws connections %d (ends %v), statuses %v, typed %d (refused %d)",
		s.frames, s.outputs, mib(s.outBytes), mib(s.maxFrame), s.gaps, s.errs, s.conns, s.closes, st, s.typed, s.refused)
}
