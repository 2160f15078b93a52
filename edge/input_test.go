package edge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// record writes the input entry a worker writes for a line it passed to
// the game: it names the viewer and the line's seq.
func (w *fakeWorker) record(in store.Command) string {
	w.t.Helper()
	return w.write(store.Output{Kind: store.OutInput, Text: in.Text, Viewer: in.Viewer, InputSeq: in.Seq})
}

// pause is a worker stopped (SIGSTOP) past its lease: the lease is gone,
// but its subscription still takes input, which it will never record.
func (w *fakeWorker) pause() {
	w.t.Helper()
	if err := w.st.ReleaseLease(context.Background(), w.lease); err != nil {
		w.t.Fatal(err)
	}
}

func (w *fakeWorker) noInput(within time.Duration) {
	w.t.Helper()
	select {
	case m := <-w.inputs:
		w.t.Fatalf("input reached %s: %s", w.lease.Owner, m.Payload)
	case <-time.After(within):
	}
}

// until reads frames until one matches, and returns it.
func (c *wsClient) until(what string, match func(frame) bool) frame {
	c.t.Helper()
	for range 1000 {
		if f := c.next(); match(f) {
			return f
		}
	}
	c.t.Fatalf("no %s", what)
	return frame{}
}

// quiet checks that no error frame arrives before the answer to a ping
// sent now (after waiting for a few watchdog passes, which look at the
// outstanding lines).
func (e *env) quiet(c *wsClient) {
	e.t.Helper()
	before := e.srv.watchdogPasses.Load()
	waitFor(e.t, "three watchdog passes", func() bool { return e.srv.watchdogPasses.Load() >= before+3 })
	noErrorBeforePong(c)
}

// noErrorBeforePong checks that no error frame is queued for c: error
// frames and pongs share one queue.
func noErrorBeforePong(c *wsClient) {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	c.until("pong", func(f frame) bool {
		if f.Type == "error" {
			c.t.Fatalf("error frame %+v, want none", f)
		}
		return f.Type == "pong"
	})
}

func input(text string) map[string]any { return map[string]any{"type": "input", "text": text} }

// Lines published to a worker that was paused past its lease reach its
// channel and are dropped when it wakes. When another worker takes the
// session (an entry with a higher fence), the player is told how many
// lines to type again, never which; a line the old owner recorded is not
// among them, and lines typed afterwards work.
func TestInputLostWhenOwnerStops(t *testing.T) {
	// No watchdog: the new owner's entry alone must tell.
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")

	c.send(input("look"))
	in := w1.nextInput()
	if in.Seq != 1 || in.Viewer == "" {
		t.Fatalf("first line %+v, want seq 1 and the viewer", in)
	}
	id := w1.record(in)
	if f := c.next(); f.Type != "input" || f.ID != id {
		t.Fatalf("frame %+v, want the recorded line %s", f, id)
	}

	c.send(input("hunter2"))
	c.send(input("say hi"))
	for want := uint64(2); want <= 3; want++ {
		if in := w1.nextInput(); in.Seq != want || in.Fence != w1.lease.Fence {
			t.Fatalf("line %+v, want seq %d under fence %d", in, want, w1.lease.Fence)
		}
	}
	w1.pause()
	w2 := e.worker("w2", key)
	w2.write(store.Output{Kind: store.OutStatus, State: store.StateReconnected})

	f := c.until("an error", func(f frame) bool { return f.Type == "error" })
	if f.Code != wire.ErrInputLost || !strings.HasPrefix(f.Message, "2 lines you typed did not reach the game") {
		t.Fatalf("error %+v, want input_lost for 2 lines", f)
	}
	if strings.Contains(f.Message, "hunter2") || strings.Contains(f.Message, "say hi") {
		t.Fatalf("error %q quotes what was typed", f.Message)
	}

	// The connection keeps working, with the new owner, and a line it
	// records is never reported, however long it waits.
	c.send(input("look"))
	in = w2.nextInput()
	if in.Seq != 4 || in.Fence != w2.lease.Fence {
		t.Fatalf("line after the takeover %+v, want seq 4 under fence %d", in, w2.lease.Fence)
	}
	id = w2.record(in)
	c.until("the recorded line", func(f frame) bool { return f.ID == id })
	e.clock.advance(time.Minute)
	e.srv.expireInputs()
	noErrorBeforePong(c)
	if n := counterValue(t, e.srv.m.inputLost.WithLabelValues(lostStopped)); n != 2 {
		t.Fatalf("%v lines counted lost, want 2", n)
	}
}

// The lease can vanish with no new owner yet (the watchdog sees it gone):
// the lines sent under it are lost all the same, once the stream shows
// no record of them.
func TestInputLostWhenLeaseVanishes(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	c.send(input("north"))
	w1.nextInput()
	w1.pause()
	f := c.expectError(wire.ErrInputLost)
	if !strings.HasPrefix(f.Message, "1 line you typed did not reach the game") || strings.Contains(f.Message, "north") {
		t.Fatalf("error %+v, want input_lost for 1 line, not quoting it", f)
	}
}

// A line typed after the game hung up, before the edge learnt the lease
// went, reaches the worker's channel and no session: the player is told the
// game connection had ended, not that a server stopped.
func TestInputLostAfterGameEnded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour }) // the test runs the check
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	id := w1.write(store.Output{Kind: store.OutStatus, State: store.StateDisconnected})
	c.until("the status", func(f frame) bool { return f.ID == id })
	w1.pause() // the worker lets the lease go and keeps running
	c.send(input("look"))
	w1.nextInput()
	e.srv.checkLeases(context.Background())
	f := c.expectError(wire.ErrInputLost)
	if f.Message != "1 line you typed did not reach the game: the game connection had ended." {
		t.Fatalf("error %+v", f)
	}
}

// A line the worker recorded just before its lease went is not lost: the
// watchdog's check reads the stream before it decides.
func TestInputRecordedBeforeLeaseWentIsNotLost(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	c.send(input("quit"))
	in := w1.nextInput()
	id := w1.record(in)
	w1.write(store.Output{Kind: store.OutStatus, State: store.StateDisconnected})
	w1.release()
	c.until("the recorded line", func(f frame) bool { return f.ID == id })
	e.quiet(c)
}

// A line nobody recorded while the fence stays the same is reported once
// inputAckTimeout has passed (the clock is moved, not waited for), and not
// before. GMCP is not tracked: nothing acknowledges it.
func TestInputUnconfirmedTimesOut(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	c.send(map[string]any{"type": "gmcp", "package": "Core.Ping", "data": map[string]any{}})
	if in := w1.nextInput(); in.Type != store.CmdGMCP || in.Seq != 0 {
		t.Fatalf("gmcp %+v, want no seq", in)
	}
	c.send(input("open door"))
	if in := w1.nextInput(); in.Seq != 1 {
		t.Fatalf("line %+v, want seq 1", in)
	}
	e.quiet(c)

	e.clock.advance(inputAckTimeout + time.Second)
	f := c.expectError(wire.ErrInputLost)
	if !strings.HasPrefix(f.Message, "1 line you typed may not have reached the game") || strings.Contains(f.Message, "open door") {
		t.Fatalf("error %+v, want a timeout input_lost for 1 line", f)
	}
	// Once only.
	e.clock.advance(time.Minute)
	e.quiet(c)
	if n := counterValue(t, e.srv.m.inputLost.WithLabelValues(lostTimeout)); n != 1 {
		t.Fatalf("%v lines counted as timed out, want 1", n)
	}
}

// A line the edge could not send (no_session) is not outstanding: the
// player was told at once and must not be told again.
func TestInputNotSentIsNotTracked(t *testing.T) {
	e := newEnv(t, nil)
	c := e.hello(newUser(), "demo", "")
	c.send(input("look"))
	c.expectError(wire.ErrNoSession)
	e.clock.advance(time.Minute)
	e.quiet(c)
}

// A worker that lost its lease may note a gap under its old fence after the
// new owner's entries. It is relayed (with its id), and it is not a new
// fence: no re-read, no lines reported lost, and input keeps going to the
// new owner (the entry names the old worker, which must not win the route
// back).
func TestStaleOwnerGapChangesNothing(t *testing.T) {
	// No watchdog pass during the test: its lease read would put the
	// route right again and hide a wrong one.
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w1 := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	first := w1.text("one\n")
	if f := c.next(); f.ID != first {
		t.Fatalf("frame %+v", f)
	}
	w1.pause()
	w2 := e.worker("w2", key)
	st := w2.write(store.Output{Kind: store.OutStatus, State: store.StateReconnected})
	c.until("the new owner's status", func(f frame) bool { return f.ID == st })
	c.send(input("look"))
	in := w2.nextInput()
	if in.Fence != w2.lease.Fence {
		t.Fatalf("line %+v, want fence %d", in, w2.lease.Fence)
	}
	holes := counterValue(t, e.srv.m.resyncs.WithLabelValues("seq_hole"))

	gid, err := e.st.AppendLostGap(context.Background(), key, w1.lease.Fence, "w1", 100)
	if err != nil || gid == "" {
		t.Fatalf("append lost gap: %q %v", gid, err)
	}
	if f := c.next(); f.Type != "gap" || f.ID != gid || f.Message == "" {
		t.Fatalf("frame %+v, want the stale owner's gap %s", f, gid)
	}
	c.send(input("north"))
	if in := w2.nextInput(); in.Text != "north" || in.Fence != w2.lease.Fence {
		t.Fatalf("line %+v, want it at the new owner", in)
	}
	w1.noInput(100 * time.Millisecond)
	id := w2.record(in)
	if f := c.next(); f.ID != id {
		t.Fatalf("frame %+v, want the recorded line %s", f, id)
	}
	next := w2.text("after\n")
	c.until("live output", func(f frame) bool { return f.ID == next })
	if n := counterValue(t, e.srv.m.resyncs.WithLabelValues("seq_hole")); n != holes {
		t.Fatalf("%v seq-hole re-reads, want %v", n, holes)
	}
	c.send(map[string]any{"type": "ping"})
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("frame %+v, want pong (and no error)", f)
	}
}

func TestInputTrackerBounds(t *testing.T) {
	var tr inputTracker
	now := time.Now()
	for range maxOutstanding + 3 {
		tr.add(tr.next(), 7, now)
	}
	if len(tr.lines) != maxOutstanding || tr.forgot != 3 || tr.lines[0].seq != 4 {
		t.Fatalf("%d lines from seq %d, %d forgotten; want %d from 4, 3 forgotten",
			len(tr.lines), tr.lines[0].seq, tr.forgot, maxOutstanding)
	}
	// An ack of another fence acknowledges nothing.
	tr.ack(8, 1000)
	if len(tr.lines) != maxOutstanding {
		t.Fatalf("an ack of another fence took lines")
	}
	tr.ack(7, 10)
	if len(tr.lines) != maxOutstanding-7 || tr.lines[0].seq != 11 {
		t.Fatalf("after ack 10: %d lines from %d", len(tr.lines), tr.lines[0].seq)
	}
	tr.add(tr.next(), 8, now.Add(time.Second))
	if n := tr.lostBelow(8); n != maxOutstanding-7 {
		t.Fatalf("lostBelow took %d", n)
	}
	if n := tr.expire(now); n != 0 {
		t.Fatalf("expire took %d lines sent after the deadline", n)
	}
	if n := tr.expire(now.Add(time.Second)); n != 1 || len(tr.lines) != 0 {
		t.Fatalf("expire took %d, left %d", n, len(tr.lines))
	}
}

func TestInputLostMessage(t *testing.T) {
	for _, tc := range []struct {
		n    int
		why  string
		want string
	}{
		{1, lostStopped, "1 line you typed did not reach the game: the server holding it stopped. Type it again."},
		{2, lostStopped, "2 lines you typed did not reach the game: the server holding it stopped. Type them again."},
		{3, lostTimeout, "3 lines you typed may not have reached the game: the server holding it did not confirm them within 10s. Type them again if nothing happened."},
		{2, lostEnded, "2 lines you typed did not reach the game: the game connection had ended."},
	} {
		if got := inputLostMessage(tc.n, tc.why); got != tc.want {
			t.Errorf("inputLostMessage(%d, %s) = %q, want %q", tc.n, tc.why, got, tc.want)
		}
	}
}
