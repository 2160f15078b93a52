package edge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/store"
)

// A resume id the stream cannot place must never cost the player the
// session: an id Redis refuses (both halves at the uint64 maximum, which
// the old pattern let through) used to close with internal/1011 on every
// retry, and an id newer than the newest entry used to say resumed:true and
// then drop every live entry as already sent. Either way the browser now
// gets welcome (not resumed), a gap saying the position was not found, the
// kept backlog from its start, and live output after it.
func TestResumeUnplaceableIDGetsBacklogFromStart(t *testing.T) {
	for _, tc := range []struct{ name, resume string }{
		{"max uint64 id", "18446744073709551615-18446744073709551615"},
		{"future id", "99999999999999-0"},
		{"id over uint64", "18446744073709551616-0"},
		{"not an id", "yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			user := newUser()
			w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
			backlog := []string{w.text("one\n"), w.text("two\n")}

			c := e.dial(nil)
			c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "resume": tc.resume})
			if f := c.next(); f.Type != "welcome" || f.Resumed {
				t.Fatalf("first frame %+v, want welcome with resumed=false", f)
			}
			f := c.next()
			if f.Type != "gap" || f.ID != "" || !f.Reset || f.Message == "" {
				t.Fatalf("frame %+v, want a gap without id that resets the resume point", f)
			}
			for _, id := range backlog {
				if f := c.next(); f.Type != "output" || f.ID != id {
					t.Fatalf("frame %+v, want backlog entry %s", f, id)
				}
			}
			live := w.text("three\n")
			if f := c.next(); f.Type != "output" || f.ID != live {
				t.Fatalf("frame %+v, want live entry %s", f, live)
			}
		})
	}
}

// A resume id that is a real position keeps working as before, and an
// empty transcript with a bogus id still gets the reset gap (there is
// nothing to resume from) and then live output.
func TestResumeUnplaceableIDOnEmptyStream(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(user), "resume": "99999999999999-0"})
	if f := c.next(); f.Type != "welcome" || f.Resumed {
		t.Fatalf("first frame %+v, want welcome with resumed=false", f)
	}
	if f := c.next(); f.Type != "gap" || !f.Reset {
		t.Fatalf("frame %+v, want a reset gap", f)
	}
	live := w.text("first\n")
	if f := c.next(); f.ID != live {
		t.Fatalf("frame %+v, want live entry %s", f, live)
	}
}

// rawEntry writes an entry with the given id to the session's stream and
// publishes it, as the append script does; explicit ids let a test build a
// stream that lost its newest entries (a failover to a replica that was
// behind) and a writer whose ids sort before ones already sent.
func (e *env) rawEntry(key store.SessionKey, id string, o store.Output) {
	e.t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.st.OutputChannel(key), ID: id, Values: []string{"v", string(b)}}).Err(); err != nil {
		e.t.Fatalf("xadd %s: %v", id, err)
	}
	if err := testPublish(ctx, e.rdb, e.st.OutputChannel(key), id+" "+string(b)).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// After the stream lost the entries after its newest (the last id the
// edge sent is no longer in it), a re-read must not leave the edge waiting
// for ids above the lost one: it tells the browser (a reset gap, without
// sending again what the browser has) and relays what the stream gets from
// then on, even with ids that sort before the lost one.
func TestStreamThatLostItsTailKeepsLiveOutputFlowing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	text := func(seq uint64, s string) store.Output {
		return store.Output{Kind: store.OutText, Text: s, Fence: w.lease.Fence, Seq: seq, Worker: "w1"}
	}
	e.rawEntry(key, "100-1", text(1, "one\n"))
	e.rawEntry(key, "100-5", text(2, "two\n"))
	for _, id := range []string{"100-1", "100-5"} {
		if f := c.next(); f.ID != id {
			t.Fatalf("frame %+v, want %s", f, id)
		}
	}
	// The stream as a replica that missed the last write has it.
	ctx := context.Background()
	if err := e.rdb.Del(ctx, e.st.OutputChannel(key)).Err(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(text(1, "one\n"))
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.st.OutputChannel(key), ID: "100-1", Values: []string{"v", string(b)}}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, viewers := range e.srv.hub.snapshot() {
		for _, v := range viewers {
			v.requestResync() // what the pub/sub reconnect after a failover does
		}
	}
	if f := c.next(); f.Type != "gap" || !f.Reset || f.ID != "" {
		t.Fatalf("frame %+v, want a reset gap", f)
	}
	e.rawEntry(key, "100-3", text(3, "three\n"))
	if f := c.next(); f.ID != "100-3" || f.Text != "three\n" {
		t.Fatalf("frame %+v, want the new entry 100-3 (and not the old ones again)", f)
	}
}
