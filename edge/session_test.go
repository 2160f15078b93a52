package edge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

func TestHelloSendsBacklogStateThenLive(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	w.write(store.Output{Kind: store.OutStatus, State: store.StateConnected})
	w.text("Welcome to the demo\n")
	w.write(store.Output{Kind: store.OutGMCP, Package: "Char.Vitals", Data: json.RawMessage(`{"hp":5,"maxhp":10}`)})
	w.write(store.Output{Kind: store.OutInput, Redacted: true})
	w.write(store.Output{Kind: store.OutEcho, Echo: true})
	w.write(store.Output{Kind: store.OutText, Text: "> ", Prompt: true})

	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "cols": 120, "rows": 40})
	f := c.next()
	if f.Type != "welcome" || f.User != user || f.Game != "demo" || f.Resumed {
		t.Fatalf("welcome %+v", f)
	}
	// The GMCP state comes first, without an id (it must not move the
	// browser's resume point), then the backlog in stream order.
	if f := c.next(); f.Type != "gmcp" || f.ID != "" || f.Package != "Char.Vitals" || string(f.Data) != `{"hp":5,"maxhp":10}` {
		t.Fatalf("gmcp state %+v", f)
	}
	want := []struct{ typ, detail string }{
		{"status", "connected"}, {"output", "Welcome to the demo\n"}, {"gmcp", "Char.Vitals"},
		{"input", "redacted"}, {"echo", "true"}, {"output", "> "},
	}
	last := ""
	for _, w := range want {
		f := c.next()
		got := map[string]string{
			"status": f.State, "output": f.Text, "gmcp": f.Package, "echo": map[bool]string{true: "true", false: "false"}[f.Server],
			"input": map[bool]string{true: "redacted", false: f.Text}[f.Redacted],
		}[f.Type]
		if f.Type != w.typ || got != w.detail || f.ID == "" {
			t.Fatalf("frame %+v, want %s %q with an id", f, w.typ, w.detail)
		}
		if store.CompareIDs(f.ID, last) <= 0 {
			t.Fatalf("id %s not after %s", f.ID, last)
		}
		last = f.ID
	}
	id := w.text("live line\n")
	if f := c.next(); f.Type != "output" || f.Text != "live line\n" || f.ID != id {
		t.Fatalf("live frame %+v, want id %s", f, id)
	}

	// The attach names the viewer, this edge, the size and the address.
	waitFor(t, "attach on the control stream", func() bool { return len(e.controlCommands()) > 0 })
	a := e.controlCommands()[0]
	if a.Type != store.CmdAttach || a.User != user || a.Game != "demo" || a.Edge != "edge-test" ||
		a.Viewer == "" || a.Cols != 120 || a.Rows != 40 || a.IP != "127.0.0.1" || a.Correlation == "" || a.Reason != "" || a.ScreenReader {
		t.Fatalf("attach %+v", a)
	}
}

// A page in screen-reader mode says so at hello; the attach carries it to
// the worker (MTTS bit 64 for the game connection it starts).
func TestHelloScreenReaderReachesTheAttach(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "cols": 80, "rows": 24, "screen_reader": true})
	if f := c.next(); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want welcome", f)
	}
	waitFor(t, "attach on the control stream", func() bool { return len(e.controlCommands()) > 0 })
	if a := e.controlCommands()[0]; a.Type != store.CmdAttach || !a.ScreenReader {
		t.Fatalf("attach %+v, want screen reader set", a)
	}
	bad := e.dial(nil)
	bad.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "screen_reader": "yes"})
	if f := bad.next(); f.Type != "error" || f.Code != "bad_request" || !strings.Contains(f.Message, "screen_reader") {
		t.Fatalf("hello with screen_reader a string: %+v, want bad_request naming the field", f)
	}
}

func TestResumeSkipsWhatWasSent(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	w.text("one\n")
	second := w.text("two\n")
	third := w.text("three\n")

	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "resume": second})
	if f := c.next(); f.Type != "welcome" || !f.Resumed {
		t.Fatalf("welcome %+v, want resumed", f)
	}
	if f := c.next(); f.ID != third || f.Text != "three\n" {
		t.Fatalf("first frame after resume %+v, want %s", f, third)
	}
	fourth := w.text("four\n")
	if f := c.next(); f.ID != fourth {
		t.Fatalf("live frame %+v, want %s", f, fourth)
	}
}

func TestResumeTooOldSendsGap(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	first := w.text("kept\n")

	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "resume": "1-0"})
	if f := c.next(); f.Type != "welcome" || f.Resumed {
		t.Fatalf("welcome %+v, want resumed=false", f)
	}
	if f := c.next(); f.Type != "gap" || f.Message == "" {
		t.Fatalf("frame %+v, want gap", f)
	}
	if f := c.next(); f.ID != first {
		t.Fatalf("frame %+v, want the kept entry", f)
	}
}

func TestInputGoesToOwnerWithFence(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")

	c.send(map[string]any{"type": "input", "text": "say hello"})
	in := w.nextInput()
	if in.Type != store.CmdInput || in.Text != "say hello" || in.Fence != w.lease.Fence || in.User != user || in.Game != "demo" || in.Viewer == "" {
		t.Fatalf("input %+v", in)
	}
	c.send(map[string]any{"type": "gmcp", "package": "Core.Ping", "data": map[string]any{}})
	in = w.nextInput()
	if in.Type != store.CmdGMCP || in.Package != "Core.Ping" || string(in.Data) != "{}" {
		t.Fatalf("gmcp %+v", in)
	}
	c.send(map[string]any{"type": "msdp", "var": "REPORT", "val": []string{"HEALTH", "HEALTH_MAX"}})
	in = w.nextInput()
	if in.Type != store.CmdMSDP || in.Package != "REPORT" || string(in.Data) != `["HEALTH","HEALTH_MAX"]` || in.Fence != w.lease.Fence || in.Seq != 0 {
		t.Fatalf("msdp %+v", in)
	}

	// The owner dies and another worker takes over with a higher fence:
	// the cached route fails (nobody listens), the edge looks again.
	w.release()
	w2 := e.worker("w2", key)
	c.send(map[string]any{"type": "input", "text": "look"})
	in = w2.nextInput()
	if in.Text != "look" || in.Fence != w2.lease.Fence || in.Fence <= w.lease.Fence {
		t.Fatalf("input after takeover %+v, want fence %d", in, w2.lease.Fence)
	}
}

func TestInputWithoutSessionSaysSo(t *testing.T) {
	e := newEnv(t, nil)
	c := e.hello(newUser(), "demo", "")
	c.send(map[string]any{"type": "input", "text": "look"})
	c.expectError(wire.ErrNoSession)
	// The connection stays up.
	c.send(map[string]any{"type": "input", "text": "look"})
	c.expectError(wire.ErrNoSession)
}

func TestResizeGoesToOwnerInbox(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	// Route learnt from the first input; then resize.
	c.send(map[string]any{"type": "input", "text": "x"})
	w.nextInput()
	c.send(map[string]any{"type": "resize", "cols": 132, "rows": 50})
	var got []store.InboxMessage
	waitFor(t, "resize in the inbox", func() bool {
		msgs, err := e.st.ReadInbox(context.Background(), "w1", "0", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
		return len(got) > 0
	})
	r := got[0].Command
	if r.Type != store.CmdResize || r.Cols != 132 || r.Rows != 50 || r.Fence != w.lease.Fence {
		t.Fatalf("resize %+v", r)
	}
}

// A live message lost between Redis and the edge shows as a hole in the
// sequence numbers; the edge fills it from the stream, in order.
func TestSeqHoleIsFilledFromStream(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	first := w.text("one\n")
	if f := c.next(); f.ID != first {
		t.Fatalf("frame %+v", f)
	}
	// Write seq 2 to the stream without publishing it (what a lost pub/sub
	// message looks like to the edge).
	lost := store.Output{Kind: store.OutText, Text: "two\n", Fence: w.lease.Fence, Seq: 2, Worker: "w1"}
	b, _ := json.Marshal(lost)
	// The stream has the channel's name (store.SessionKey.OutputChannel).
	lostID, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.st.OutputChannel(key), Values: []string{"v", string(b)}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	w.seq = 2
	third := w.text("three\n")
	if f := c.next(); f.ID != lostID || f.Text != "two\n" {
		t.Fatalf("frame %+v, want the lost entry %s first", f, lostID)
	}
	if f := c.next(); f.ID != third {
		t.Fatalf("frame %+v, want %s", f, third)
	}
}

// A hole the stream cannot fill either (entries Redis acknowledged and then
// lost in a failover to a replica that was behind) is reported where it
// is: a gap frame right before the entry after it, live and on resume.
func TestSeqHoleTheStreamLacksIsAGap(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	first := w.text("one\n")
	if f := c.next(); f.ID != first {
		t.Fatalf("frame %+v", f)
	}
	w.seq += 2 // seq 2 and 3 were acknowledged, then lost with the primary
	fourth := w.text("four\n")
	if f := c.next(); f.Type != "gap" || f.ID != "" || !strings.Contains(f.Message, "2 pieces of output were lost") {
		t.Fatalf("frame %+v, want a gap for the 2 lost entries before %s", f, fourth)
	}
	if f := c.next(); f.ID != fourth {
		t.Fatalf("frame %+v, want %s", f, fourth)
	}
	// A reload resuming before the hole is told at the same place.
	r := e.hello(user, "demo", first)
	if f := r.next(); f.Type != "gap" || !strings.Contains(f.Message, "2 pieces") {
		t.Fatalf("resume: frame %+v, want the gap first", f)
	}
	if f := r.next(); f.ID != fourth {
		t.Fatalf("resume: frame %+v, want %s", f, fourth)
	}
	// A new owner whose first entry is missing: one piece lost.
	w.release()
	w2 := e.worker("w2", key)
	w2.seq = 1
	next := w2.text("new owner\n")
	if f := c.next(); f.Type != "gap" || !strings.Contains(f.Message, "1 pieces") {
		t.Fatalf("frame %+v, want a gap for the new fence's first entry", f)
	}
	if f := c.next(); f.ID != next {
		t.Fatalf("frame %+v, want %s", f, next)
	}
}

// A new owner numbers its entries from 1 again: if the first entries of a
// new fence are lost on the live path, the edge notices the hole all the
// same and fills it from the stream.
func TestSeqHoleAtNewFenceIsFilledFromStream(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	id := w1.text("old owner\n")
	if f := c.next(); f.ID != id {
		t.Fatalf("frame %+v, want %s", f, id)
	}
	w1.release()
	w2 := e.worker("w2", key)
	lost := store.Output{Kind: store.OutStatus, State: store.StateReconnected, Fence: w2.lease.Fence, Seq: 1, Worker: "w2"}
	b, _ := json.Marshal(lost)
	lostID, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.st.OutputChannel(key), Values: []string{"v", string(b)}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	w2.seq = 1
	next := w2.text("new owner\n")
	if f := c.next(); f.ID != lostID || f.State != store.StateReconnected {
		t.Fatalf("frame %+v, want the lost first entry of the new fence %s", f, lostID)
	}
	if f := c.next(); f.ID != next {
		t.Fatalf("frame %+v, want %s", f, next)
	}
}

func TestTwoViewersShareOneSubscription(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	a := e.hello(user, "demo", "")
	b := e.hello(user, "demo", "")
	if n := gaugeValue(t, e.srv.m.subscriptions); n != 1 {
		t.Fatalf("%v subscriptions for one session, want 1", n)
	}
	id := w.text("both see this\n")
	for _, c := range []*wsClient{a, b} {
		if f := c.next(); f.ID != id {
			t.Fatalf("frame %+v", f)
		}
	}
	a.conn.Close()
	b.conn.Close()
	waitFor(t, "unsubscribe", func() bool { return gaugeValue(t, e.srv.m.subscriptions) == 0 })
	waitFor(t, "two detaches", func() bool {
		n := 0
		for _, c := range e.controlCommands() {
			if c.Type == store.CmdDetach && c.User == user && c.Edge == "edge-test" {
				n++
			}
		}
		return n == 2
	})
}

func TestRedisRestartResyncsViewers(t *testing.T) {
	rs := redistest.New(t, redistest.Options{AOF: true})
	e := newEnvOn(t, rs.Client(t), nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	first := w.text("before\n")
	if f := c.next(); f.ID != first {
		t.Fatalf("frame %+v", f)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rs.StartAgain(); err != nil {
		t.Fatal(err)
	}
	// Written while the edge's pub/sub connection may still be down: it
	// arrives live or through the resync, but exactly once and in order.
	var ids []string
	for i := range 3 {
		ids = append(ids, w.text(strings.Repeat("x", i+1)+"\n"))
	}
	for _, id := range ids {
		if f := c.next(); f.ID != id {
			t.Fatalf("frame %+v, want %s", f, id)
		}
	}
	waitFor(t, "a reconnect resync", func() bool {
		return counterValue(t, e.srv.m.resyncs.WithLabelValues("reconnect")) >= 1
	})
	// Live output flows again after the reconnect.
	id := w.text("after\n")
	if f := c.next(); f.ID != id {
		t.Fatalf("frame %+v, want %s", f, id)
	}
}

// MSDP state is replayed after the GMCP state, without ids, before the
// backlog; live MSDP entries carry their id.
func TestHelloReplaysMSDPStateAfterGMCPState(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	w.write(store.Output{Kind: store.OutGMCP, Package: "Char.Vitals", Data: json.RawMessage(`{"hp":5,"maxhp":10}`)})
	w.write(store.Output{Kind: store.OutMSDP, Package: "HEALTH", Data: json.RawMessage(`"90"`)})
	w.write(store.Output{Kind: store.OutMSDP, Package: "HEALTH", Data: json.RawMessage(`"95"`)})
	w.text("hello\n")

	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user)})
	if f := c.next(); f.Type != "welcome" {
		t.Fatalf("welcome %+v", f)
	}
	if f := c.next(); f.Type != "gmcp" || f.ID != "" {
		t.Fatalf("gmcp state %+v", f)
	}
	if f := c.next(); f.Type != "msdp" || f.ID != "" || f.Var != "HEALTH" || string(f.Val) != `"95"` {
		t.Fatalf("msdp state %+v, want HEALTH \"95\" without id", f)
	}
	for _, want := range []string{"gmcp", "msdp", "msdp", "output"} {
		if f := c.next(); f.Type != want || f.ID == "" {
			t.Fatalf("backlog frame %+v, want %s with an id", f, want)
		}
	}
	id := w.write(store.Output{Kind: store.OutMSDP, Package: "ROOM", Data: json.RawMessage(`{"VNUM":"6008","EXITS":{"n":"6001"}}`)})
	if f := c.next(); f.Type != "msdp" || f.ID != id || f.Var != "ROOM" || string(f.Val) != `{"VNUM":"6008","EXITS":{"n":"6001"}}` {
		t.Fatalf("live msdp %+v, want id %s", f, id)
	}
}
