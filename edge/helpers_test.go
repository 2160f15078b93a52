package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var testSecret = []byte("test-secret-test-secret-test-sec")

// userSeq makes user names unique across tests: pub/sub channels are shared
// by every logical database of the test server.
var userSeq atomic.Int64

func newUser() string { return fmt.Sprintf("user%d", userSeq.Add(1)) }

type env struct {
	t   testing.TB
	rdb redis.UniversalClient
	st  *store.Store
	srv *Server
	// addr is host:port of the edge.
	addr   string
	cancel context.CancelFunc
	done   chan error
	// clock is the edge's clock for input ack timeouts: real time plus
	// what a test added.
	clock *testClock
}

// testClock is real time moved forward on demand, so a test can pass a
// timeout without waiting for it.
type testClock struct{ ahead atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }

func (c *testClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }

// newEnv starts an edge on a loopback port against a fresh Redis database
// with the games "demo" and "other" registered.
func newEnv(t testing.TB, mutate func(*Config)) *env {
	tgt := redistest.Isolated(t)
	return newEnvOn(t, tgt.Client, mutate, store.WithNamespace(tgt.Namespace))
}

// newEnvOn is newEnv on a given client (a proxy, a server of the test's
// own): always a single node, so the default namespace.
func newEnvOn(t testing.TB, rdb redis.UniversalClient, mutate func(*Config), opts ...store.Option) *env {
	t.Helper()
	st := store.New(rdb, opts...)
	ctx := context.Background()
	for _, g := range []store.Game{
		{ID: "demo", Name: "Trellis Demo", Description: "the demo", Host: "127.0.0.1", Port: 4000},
		{ID: "other", Name: "Other", Host: "127.0.0.1", Port: 4001},
	} {
		if err := st.PutGame(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Listen:       "127.0.0.1:0",
		ID:           "edge-test",
		HelloTimeout: 2 * time.Second,
		LeaseCheck:   50 * time.Millisecond,
		PingInterval: time.Second,
		WriteTimeout: 2 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := auth.NewVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(cfg, v, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, rdb: rdb, st: st, srv: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1), clock: &testClock{}}
	srv.now = e.clock.now
	go func() { e.done <- srv.Serve(sctx, ln) }()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Serve: %v", err)
		}
		e.done <- nil // later stops return at once
	case <-time.After(15 * time.Second):
		e.t.Error("Serve did not return within 15s of cancel")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) token(user string) string {
	tok, err := auth.Mint(testSecret, user, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// wsClient is a browser stand-in.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

func (e *env) dial(h http.Header) *wsClient {
	e.t.Helper()
	c, err := e.tryDial(h)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) tryDial(h http.Header) (*wsClient, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws://"+e.addr+"/ws", h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &wsClient{t: e.t, conn: conn}
	e.t.Cleanup(func() { conn.Close() })
	return c, nil
}

// hello dials and says hello as user for game, and returns the client
// after reading the welcome.
func (e *env) hello(user, game, resume string) *wsClient {
	e.t.Helper()
	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": game, "token": e.token(user), "resume": resume, "cols": 100, "rows": 30})
	f := c.next()
	if f.Type != "welcome" {
		e.t.Fatalf("first frame %+v, want welcome", f)
	}
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.TextMessage, b)
}

func (c *wsClient) sendRaw(mt int, b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.conn.WriteMessage(mt, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// frame is any edge frame, decoded loosely.
type frame = wire.Frame

func (c *wsClient) read(timeout time.Duration) (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	mt, b, err := c.conn.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if mt != websocket.TextMessage {
		return frame{}, fmt.Errorf("message type %d", mt)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("decode %q: %w", b, err)
	}
	return f, nil
}

func (c *wsClient) next() frame {
	c.t.Helper()
	f, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// expectError reads until an error frame and checks its code.
func (c *wsClient) expectError(code string) frame {
	c.t.Helper()
	for range 100 {
		f := c.next()
		if f.Type == "error" {
			if f.Code != code {
				c.t.Fatalf("error %+v, want code %s", f, code)
			}
			return f
		}
	}
	c.t.Fatalf("no error frame %s", code)
	return frame{}
}

// expectClose reads until the connection closes and checks the close code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for range 100_000 {
		_, err := c.read(5 * time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
	c.t.Fatalf("no close after many frames")
}

// fakeWorker owns a session's lease the way a worker does, writes output
// entries with its fence and sequence numbers, and receives input on its
// channel. It talks to the same real Redis.
type fakeWorker struct {
	t      testing.TB
	st     *store.Store
	key    store.SessionKey
	lease  store.Lease
	seq    uint64
	ps     *redis.PubSub
	inputs <-chan *redis.Message
}

func (e *env) worker(name string, key store.SessionKey) *fakeWorker {
	e.t.Helper()
	ctx := context.Background()
	l, err := e.st.AcquireLease(ctx, key, name, "session-"+name, time.Minute)
	if err != nil {
		e.t.Fatalf("acquire lease: %v", err)
	}
	var ps *redis.PubSub
	if _, ok := e.rdb.(*redis.ClusterClient); ok {
		ps = e.rdb.SSubscribe(ctx, e.st.InputChannel(name))
	} else {
		ps = e.rdb.Subscribe(ctx, e.st.InputChannel(name))
	}
	if _, err := ps.Receive(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ps.Close() })
	return &fakeWorker{t: e.t, st: e.st, key: key, lease: l, ps: ps, inputs: ps.Channel()}
}

func (w *fakeWorker) write(o store.Output) string {
	w.t.Helper()
	w.seq++
	o.Fence, o.Seq, o.Worker = w.lease.Fence, w.seq, w.lease.Owner
	id, err := w.st.AppendOutput(context.Background(), w.key, o)
	if err != nil {
		w.t.Fatalf("append output: %v", err)
	}
	return id
}

func (w *fakeWorker) text(s string) string {
	return w.write(store.Output{Kind: store.OutText, Text: s})
}

func (w *fakeWorker) nextInput() store.Command {
	w.t.Helper()
	select {
	case m := <-w.inputs:
		c, err := store.ParseInput(m.Payload)
		if err != nil {
			w.t.Fatal(err)
		}
		return c
	case <-time.After(5 * time.Second):
		w.t.Fatal("no input reached the worker")
	}
	return store.Command{}
}

func (w *fakeWorker) release() {
	w.t.Helper()
	if err := w.st.ReleaseLease(context.Background(), w.lease); err != nil {
		w.t.Fatal(err)
	}
	w.ps.Close()
}

// waitFor polls cond every 10ms for up to 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// controlCommands returns every command on the control stream.
func (e *env) controlCommands() []store.Command {
	e.t.Helper()
	msgs, err := e.st.ControlEntries(context.Background(), "-", "+", 10_000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]store.Command, len(msgs))
	for i, m := range msgs {
		out[i] = m.Command
	}
	return out
}

func httpGet(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	// No keep-alive: idle connections would outlive the test (goleak).
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// testPublish publishes as the store does: on a shard channel on a cluster.
func testPublish(ctx context.Context, rdb redis.UniversalClient, ch, msg string) *redis.IntCmd {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return rdb.SPublish(ctx, ch, msg)
	}
	return rdb.Publish(ctx, ch, msg)
}
