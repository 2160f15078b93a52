package drills

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// frame is a frame the edge sent (wire.Frame) and where and when it came.
type frame struct {
	wire.Frame

	conn int       // which of the player's connections it came on (1, 2, ...)
	at   time.Time // when it arrived
}

// player is a scripted browser tab. It keeps one WebSocket to an edge and,
// like the web client, reconnects with resume = the last stream id after
// any close that is not final, trying the edges in turn (a load balancer
// would pick another edge when one is gone). Every frame is kept.
//
// Methods are for the test goroutine (or one goroutine per player); the
// player's own goroutine only reads and reconnects.
type player struct {
	t     testing.TB
	user  string // user id, also the character's name in the game
	game  string // the registry id of the game it plays (gameID unless newPlayerIn)
	pass  string
	token string
	edges []string

	writeMu sync.Mutex // one writer at a time on the connection

	mu       sync.Mutex
	conn     *websocket.Conn // nil between connections
	conns    int             // connections opened so far
	next     int             // index into edges of the next dial
	resumeAt *string         // overrides lastID for the next hello (a reload)
	frames   []frame
	lastID   string // newest stream id received on any connection
	// disorder lists frames whose id was not after the previous one on
	// the same connection, or not after the resume id at its start: a
	// frame delivered twice or out of order.
	disorder []string
	final    error         // a final close: the player stopped
	changed  chan struct{} // closed and replaced whenever anything changes

	stop chan struct{}
	done chan struct{}
}

// newPlayer starts a player that connects to edges[first] and keeps
// connected until the test ends.
func newPlayer(t testing.TB, user string, edges []string, first int) *player {
	t.Helper()
	return newPlayerIn(t, user, gameID, edges, first)
}

// newPlayerIn is newPlayer for another registered game.
func newPlayerIn(t testing.TB, user, game string, edges []string, first int) *player {
	t.Helper()
	tok, err := auth.Mint([]byte(authSecret), user, time.Hour)
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	p := &player{
		t: t, user: user, game: game, pass: "pw-" + strings.ToLower(user), token: tok,
		edges: edges, next: first % len(edges),
		changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.run()
	t.Cleanup(p.close)
	return p
}

// run is the player's connection loop: dial, hello, read until the
// connection ends, back off, dial the next edge.
func (p *player) run() {
	defer close(p.done)
	backoff := 50 * time.Millisecond
	for {
		p.mu.Lock()
		addr := p.edges[p.next]
		p.next = (p.next + 1) % len(p.edges)
		resume := p.lastID
		if p.resumeAt != nil {
			resume, p.resumeAt = *p.resumeAt, nil
		}
		p.mu.Unlock()

		err := p.session(addr, resume)
		var ce *websocket.CloseError
		if errors.As(err, &ce) && wire.Final(ce.Code) {
			p.update(func() { p.final = err })
			return
		}
		select {
		case <-p.stop:
			return
		default:
		}
		if errors.Is(err, errReload) {
			backoff = 50 * time.Millisecond
			continue // a reload dials at once
		}
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// errReload ends a connection the test closed on purpose to reload.
var errReload = errors.New("reload")

// session is one connection: it returns why it ended.
func (p *player) session(addr, resume string) error {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+addr+"/ws", http.Header{})
	if err != nil {
		return err
	}
	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "game": p.game, "token": p.token, "resume": resume, "cols": 100, "rows": 30,
	})
	p.writeMu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = conn.WriteMessage(websocket.TextMessage, hello)
	p.writeMu.Unlock()
	if err != nil {
		conn.Close()
		return err
	}
	var n int
	p.update(func() { p.conn = conn; p.conns++; n = p.conns })
	defer p.update(func() {
		if p.conn == conn {
			p.conn = nil
		}
	})
	defer conn.Close()

	prev := resume // ids on this connection must come after the resume point
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			select {
			case <-p.stop:
				return err
			default:
			}
			p.mu.Lock()
			reload := p.resumeAt != nil
			p.mu.Unlock()
			if reload {
				return errReload
			}
			return err
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			p.t.Errorf("%s: undecodable frame %q: %v", p.user, msg, err)
			continue
		}
		f.conn, f.at = n, time.Now()
		p.update(func() {
			if f.ID != "" {
				if prev != "" && store.CompareIDs(f.ID, prev) <= 0 {
					p.disorder = append(p.disorder, fmt.Sprintf("conn %d: %s %s after %s", n, f.Type, f.ID, prev))
				}
				prev = f.ID
				if p.lastID == "" || store.CompareIDs(f.ID, p.lastID) > 0 {
					p.lastID = f.ID
				}
			}
			p.frames = append(p.frames, f)
		})
	}
}

// update changes the player's state under its lock and wakes waiters.
func (p *player) update(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// close stops the player: a normal close, as when a tab is closed.
func (p *player) close() {
	select {
	case <-p.stop:
		<-p.done
		return
	default:
	}
	close(p.stop)
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		conn.Close()
	}
	<-p.done
}

// reload closes the connection like a page reload and reconnects at once
// through edges[edge], resuming after the stream id resume.
func (p *player) reload(edge int, resume string) {
	p.mu.Lock()
	conn := p.conn
	p.next = edge
	p.resumeAt = &resume
	p.mu.Unlock()
	if conn == nil {
		p.t.Fatalf("%s: reload while not connected", p.user)
	}
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "reload"), time.Now().Add(time.Second))
	conn.Close()
}

// send types a line. While the player is between connections it waits
// for the next one, as the web client queues input.
func (p *player) send(text string) {
	p.t.Helper()
	if err := p.trySend(text, 10*time.Second); err != nil {
		p.t.Fatalf("%s: %v", p.user, err)
	}
}

func (p *player) trySend(text string, timeout time.Duration) error {
	msg, _ := json.Marshal(map[string]any{"type": "input", "text": text})
	var conn *websocket.Conn
	err := p.waitUntil(timeout, "connected", func() bool {
		conn = p.conn
		return conn != nil
	})
	if err != nil {
		return fmt.Errorf("send %q: %w", text, err)
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("send %q: %w", text, err)
	}
	return nil
}

// waitUntil waits for cond, evaluated under the player's lock after every
// change, for at most timeout.
func (p *player) waitUntil(timeout time.Duration, what string, cond func() bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok, changed, final := cond(), p.changed, p.final
		p.mu.Unlock()
		if ok {
			return nil
		}
		if final != nil {
			return fmt.Errorf("waiting for %s: the edge closed for good: %w", what, final)
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("no %s within %s; last frames:\n%s", what, timeout, p.recent(15))
		}
	}
}

// waitFor is waitUntil that fails the test.
func (p *player) waitFor(timeout time.Duration, what string, cond func() bool) {
	p.t.Helper()
	if err := p.waitUntil(timeout, what, cond); err != nil {
		p.t.Fatalf("%s: %v", p.user, err)
	}
}

// mark is a position in the frame log; the text and frames after it are
// what happened since.
func (p *player) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.frames)
}

// textSinceLocked is the game text of the output frames after mark, with
// colour codes removed. The caller holds p.mu.
func (p *player) textSinceLocked(mark int) string {
	var b strings.Builder
	for _, f := range p.frames[min(mark, len(p.frames)):] {
		if f.Type == "output" {
			b.WriteString(f.Text)
		}
	}
	return sgr.ReplaceAllString(b.String(), "")
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// textSince is textSinceLocked for callers without the lock.
func (p *player) textSince(mark int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.textSinceLocked(mark)
}

// waitText waits until the game text after mark contains s.
func (p *player) waitText(mark int, s string, timeout time.Duration) {
	p.t.Helper()
	p.waitFor(timeout, fmt.Sprintf("text %q", s), func() bool {
		return strings.Contains(p.textSinceLocked(mark), s)
	})
}

// findFrame returns the first frame after mark that match accepts.
func (p *player) findFrame(mark int, match func(frame) bool) (frame, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.findFrameLocked(mark, match)
}

func (p *player) findFrameLocked(mark int, match func(frame) bool) (frame, bool) {
	for _, f := range p.frames[min(mark, len(p.frames)):] {
		if match(f) {
			return f, true
		}
	}
	return frame{}, false
}

// waitFrame waits for a frame after mark that match accepts and returns it.
func (p *player) waitFrame(mark int, what string, timeout time.Duration, match func(frame) bool) frame {
	p.t.Helper()
	var got frame
	p.waitFor(timeout, what, func() bool {
		var ok bool
		got, ok = p.findFrameLocked(mark, match)
		return ok
	})
	return got
}

// isStatus matches a status frame in one of the given states.
func isStatus(states ...string) func(frame) bool {
	return func(f frame) bool {
		if f.Type != "status" {
			return false
		}
		for _, s := range states {
			if f.State == s {
				return true
			}
		}
		return false
	}
}

// login answers the demo game's name and password prompts that appear
// after mark, and waits until the game welcomes the character.
func (p *player) login(mark int, timeout time.Duration) {
	p.t.Helper()
	if err := p.tryLogin(mark, timeout); err != nil {
		p.t.Fatalf("%s: %v", p.user, err)
	}
}

func (p *player) tryLogin(mark int, timeout time.Duration) error {
	waitText := func(mark int, s string) error {
		return p.waitUntil(timeout, fmt.Sprintf("text %q", s), func() bool {
			return strings.Contains(p.textSinceLocked(mark), s)
		})
	}
	if err := waitText(mark, "What is your name?"); err != nil {
		return err
	}
	if err := p.answer(p.user, "Password:", timeout); err != nil {
		return err
	}
	return p.answer(p.pass, "> ", timeout)
}

// answer types line and waits for want. A line the edge refused at once
// (no_session or internal: "the line was not sent", as right after a
// failover, before the new owner listens or while the cluster still says
// CLUSTERDOWN) is typed again, as a player would, a few times.
func (p *player) answer(line, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for try := 1; ; try++ {
		m := p.mark()
		if err := p.trySend(line, time.Until(deadline)); err != nil {
			return err
		}
		refused := false
		err := p.waitUntil(time.Until(deadline), fmt.Sprintf("text %q", want), func() bool {
			for _, f := range p.frames[min(m, len(p.frames)):] {
				if f.Type == "error" && (f.Code == "no_session" || f.Code == "internal") {
					refused = true
					return true
				}
			}
			return strings.Contains(p.textSinceLocked(m), want)
		})
		if err != nil || !refused {
			return err
		}
		if try == 5 || time.Now().After(deadline) {
			return fmt.Errorf("%q refused %d times", line, try)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastStreamID is the newest stream id the player has seen.
func (p *player) lastStreamID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastID
}

// connections is how many WebSocket connections the player has opened.
func (p *player) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// checkOrder fails the test if any frame came twice or out of order.
func (p *player) checkOrder() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.disorder) > 0 {
		p.t.Errorf("%s: %d frames out of order or repeated: %s", p.user, len(p.disorder), strings.Join(p.disorder[:min(5, len(p.disorder))], "; "))
	}
}

// checkSecret fails the test if the player's password shows up in any
// frame: passwords typed under server echo never reach Redis.
func (p *player) checkSecret() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frames {
		if strings.Contains(f.Text, p.pass) {
			p.t.Errorf("%s: the password appears in a %s frame %s", p.user, f.Type, f.ID)
		}
	}
}

// recent renders the last n frames for a failure message.
func (p *player) recent(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, f := range p.frames[max(0, len(p.frames)-n):] {
		switch f.Type {
		case "output":
			txt := f.Text
			if len(txt) > 120 {
				txt = txt[:60] + " ... " + txt[len(txt)-60:]
			}
			fmt.Fprintf(&b, "  [c%d] output %s %q\n", f.conn, f.ID, txt)
		case "status":
			fmt.Fprintf(&b, "  [c%d] status %s %s %q\n", f.conn, f.ID, f.State, f.Message)
		default:
			fmt.Fprintf(&b, "  [c%d] %s %s code=%s msg=%q\n", f.conn, f.Type, f.ID, f.Code, f.Message)
		}
	}
	fmt.Fprintf(&b, "  (%d frames, %d connections, connected=%v)", len(p.frames), p.conns, p.conn != nil)
	return b.String()
}
