package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/console"
	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var secret = []byte("console-secret-console-secret-!!")

// defaultConfig is the console's configuration with every default its
// tags state (no variable of this prefix is set).
func defaultConfig(t *testing.T) console.Config {
	t.Helper()
	var c console.Config
	if err := envconfig.Process("TRELLIS_CONSOLE_TEST_UNSET", &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// stack is Redis, and on it a console; with game, also the demo game,
// a worker and an edge, all on loopback.
type stack struct {
	st         *store.Store
	consoleURL string
	edgeAddr   string // "" without a game stack
}

func startStack(t *testing.T, game bool) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := testLogger(t)
	tgt := redistest.Isolated(t)
	st := store.New(tgt.Client, store.WithNamespace(tgt.Namespace))
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{st: st}
	done := map[string]chan error{}
	run := func(name string, f func() error) {
		ch := make(chan error, 1)
		done[name] = ch
		go func() { ch <- f() }()
	}
	var stopGame func()
	if game {
		_, gameAddr, stop, err := demogame.Start(ctx, demogame.Config{Logger: logger}, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		stopGame = stop
		host, port, _ := net.SplitHostPort(gameAddr)
		portNum, _ := strconv.Atoi(port)
		if err := st.PutGame(ctx, store.Game{ID: "demo", Name: "Trellis Demo", Host: host, Port: portNum}); err != nil {
			t.Fatal(err)
		}
		w, err := worker.New(worker.Config{Name: "console-worker", AllowNetworks: []string{"127.0.0.0/8", "::1/128"}}, st, logger)
		if err != nil {
			t.Fatal(err)
		}
		run("worker", func() error { return w.Run(ctx) })
		e, err := edge.New(edge.Config{ID: "console-edge", Listen: "127.0.0.1:0"}, v, st, logger)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.edgeAddr = ln.Addr().String()
		run("edge", func() error { return e.Serve(ctx, ln) })
	}
	c, err := console.New(defaultConfig(t), v, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.consoleURL = "http://" + ln.Addr().String()
	run("console", func() error { return c.Serve(ctx, ln) })
	t.Cleanup(func() {
		cancel()
		for name, ch := range done {
			select {
			case err := <-ch:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", name)
			}
		}
		if stopGame != nil {
			stopGame()
		}
	})
	return s
}

func operatorToken(t *testing.T, name string) string {
	t.Helper()
	tok, err := auth.MintOperator(secret, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func playerToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.Mint(secret, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is an operator's browser, speaking to the console's API.
type client struct {
	t      *testing.T
	base   string
	origin string // sent as Origin on state changes ("" for none)
	http   *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, origin: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// do sends a request (a JSON body when body is not nil) and returns the
// status and the body.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.origin != "" && method != http.MethodGet {
		req.Header.Set("Origin", c.origin)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// must is do, failing the test unless the status is want; it decodes the
// body into out (when not nil).
func (c *client) must(want int, method, path string, body, out any) {
	c.t.Helper()
	status, b := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: HTTP %d %s; want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func (c *client) login(token string) {
	c.t.Helper()
	c.must(http.StatusOK, "POST", "/api/login", map[string]string{"token": token}, nil)
}

// player is a browser stand-in on the edge's WebSocket.
type player struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialPlayer(t *testing.T, edgeAddr, user, game string) *player {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+edgeAddr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &player{t: t, conn: conn}
	p.send(map[string]any{"type": "hello", "game": game, "token": playerToken(t, user), "cols": 100, "rows": 30})
	if f := p.until(func(f frame) bool { return f.Type == "welcome" || f.Type == "error" }); f.Type != "welcome" {
		t.Fatalf("hello: %+v", f)
	}
	return p
}

type frame = wire.Frame

func (p *player) send(v any) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := p.conn.WriteJSON(v); err != nil {
		p.t.Fatal(err)
	}
}

func (p *player) input(line string) { p.send(map[string]any{"type": "input", "text": line}) }

// until reads frames until ok says one is it (bounded in frames and time).
func (p *player) until(ok func(frame) bool) frame {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for range 10000 {
		_ = p.conn.SetReadDeadline(deadline)
		var f frame
		if err := p.conn.ReadJSON(&f); err != nil {
			p.t.Fatalf("read frame: %v", err)
		}
		if ok(f) {
			return f
		}
	}
	p.t.Fatal("no such frame in 10000")
	return frame{}
}

// text waits for output containing s.
func (p *player) text(s string) {
	p.t.Helper()
	var seen strings.Builder
	p.until(func(f frame) bool {
		if f.Type == "output" {
			seen.WriteString(f.Text)
		}
		return strings.Contains(seen.String(), s)
	})
}

// signIn logs into the demo game as name with password.
func (p *player) signIn(name, password string) {
	p.t.Helper()
	p.text("What is your name?")
	p.input(name)
	p.text("Password:")
	p.input(password)
	p.text("> ")
}

// eventually polls cond until it holds, failing after a bounded number of
// tries; it never asserts how long that took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 400 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after 400 tries", what)
}

// sse reads a Server-Sent Events stream.
type sse struct {
	t    *testing.T
	ctx  context.Context
	res  *http.Response
	r    *bufio.Reader
	stop context.CancelFunc
}

type sseEvent struct{ event, id, data string }

func (c *client) stream(path string) *sse {
	c.t.Helper()
	// A stream's reads end with the test's bound at the latest.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	hc := *c.http
	hc.Timeout = 0 // the stream's life is the context's
	res, err := hc.Do(req)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		c.t.Fatalf("GET %s: HTTP %d %s", path, res.StatusCode, b)
	}
	s := &sse{t: c.t, ctx: ctx, res: res, r: bufio.NewReader(res.Body), stop: cancel}
	c.t.Cleanup(s.close)
	return s
}

func (s *sse) close() {
	s.stop()
	s.res.Body.Close()
}

// next returns the next dispatched event (comments and id-only frames are
// skipped), failing after 200 frames or when the stream's minute is up.
func (s *sse) next() sseEvent {
	s.t.Helper()
	for range 200 {
		var e sseEvent
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				s.t.Fatalf("read event stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			if line == "" {
				break
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "event":
				e.event = v
			case "id":
				e.id = v
			case "data":
				e.data += v
			}
		}
		if e.data != "" {
			if e.event == "" {
				e.event = "message"
			}
			return e
		}
	}
	s.t.Fatal("no event in 200 frames")
	return sseEvent{}
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// ended reads the stream until the server ends it (bounded in frames).
func (s *sse) ended() {
	s.t.Helper()
	for range 10000 {
		if _, err := s.r.ReadString('\n'); err != nil {
			if s.ctx.Err() != nil {
				s.t.Fatal("the stream did not end before the test's minute was up")
			}
			return
		}
	}
	s.t.Fatal("the stream did not end")
}
