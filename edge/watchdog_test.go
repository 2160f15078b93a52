package edge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// leaseReads records the watchdog's lease reads.
type leaseReads struct {
	mu      sync.Mutex
	largest int
	seen    map[store.SessionKey]int
}

func watchLeaseReads(e *env) *leaseReads {
	r := &leaseReads{seen: make(map[store.SessionKey]int)}
	f := func(keys []store.SessionKey) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.largest = max(r.largest, len(keys))
		for _, k := range keys {
			r.seen[k]++
		}
	}
	e.srv.leaseReadHook.Store(&f)
	return r
}

func (r *leaseReads) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.largest = 0
	clear(r.seen)
}

// One watchdog tick used to read the lease of every watched session in one
// go: a burst on Redis and on the hub lock, every LeaseCheck, that live
// output waited behind. Each tick must read only its share, and every
// session (also one that joined since) must still be read every round;
// one that left, no more.
func TestWatchdogSpreadsLeaseReads(t *testing.T) {
	const n = 40
	e := newEnv(t, func(c *Config) { c.LeaseCheck = 200 * time.Millisecond })
	share := (n + watchParts - 1) / watchParts
	clients := make(map[store.SessionKey]*wsClient)
	for range n {
		user := newUser()
		clients[store.SessionKey{User: user, Game: "demo"}] = e.hello(user, "demo", "")
	}
	waitFor(t, "every hello to reach the hub", func() bool { return len(e.srv.hub.snapshot()) == n })
	r := watchLeaseReads(e)
	passes := func(k int64) {
		before := e.srv.watchdogPasses.Load()
		waitFor(t, "watchdog passes", func() bool { return e.srv.watchdogPasses.Load() >= before+k })
	}
	check := func(gone map[store.SessionKey]bool) {
		t.Helper()
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.largest > share {
			t.Errorf("one lease read of %d sessions; with %d watched, a tick's share is %d", r.largest, n, share)
		}
		for k := range clients {
			if r.seen[k] == 0 {
				t.Errorf("session %s not read in two rounds", k)
			}
		}
		for k := range gone {
			if r.seen[k] > 0 {
				t.Errorf("session %s read after its viewer left", k)
			}
		}
	}
	// The round under way may have started before the last hellos: its
	// later parts take them too. The next two rounds are whole.
	passes(1)
	r.reset()
	passes(2)
	check(nil)

	// A quarter leave and as many join.
	gone := make(map[store.SessionKey]bool)
	for k, c := range clients {
		if len(gone) == n/4 {
			break
		}
		c.conn.Close()
		delete(clients, k)
		gone[k] = true
	}
	waitFor(t, "the viewers to leave", func() bool { return len(e.srv.hub.snapshot()) == n-n/4 })
	for range n / 4 {
		user := newUser()
		clients[store.SessionKey{User: user, Game: "demo"}] = e.hello(user, "demo", "")
	}
	waitFor(t, "the new hellos to reach the hub", func() bool { return len(e.srv.hub.snapshot()) == n })
	passes(1)
	r.reset()
	passes(2)
	check(gone)
}

// A round visits each session once: those that join during it too, those
// that leave before their turn not. The ticker is kept out of the way (an
// hour) and the parts are taken by hand.
func TestWatchRoundVisitsEachSessionOnce(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour })
	h := e.srv.hub
	ctx := context.Background()
	joined := make(map[*session]*client)
	join := func() *session {
		t.Helper()
		c := &client{}
		s, err := h.join(ctx, store.SessionKey{User: newUser(), Game: "demo"}, c)
		if err != nil {
			t.Fatal(err)
		}
		joined[s] = c
		return s
	}
	// Fake viewers must be gone before the server's shutdown looks at them.
	t.Cleanup(func() {
		for s, c := range joined {
			h.leave(s, c)
		}
	})
	for range 7 {
		join()
	}
	visits := make(map[*session]int)
	take := func(part, want int) {
		t.Helper()
		got := h.watchPart(part, 3)
		if len(got) != want {
			t.Errorf("part %d: %d sessions, want %d", part, len(got), want)
		}
		for s := range got {
			visits[s]++
		}
	}
	take(0, 3) // 7 over 3 parts
	late := join()
	join()
	take(1, 3) // 6 left over 2 parts
	var leaving *session
	for s := range joined {
		if visits[s] == 0 && s != late {
			leaving = s
			break
		}
	}
	h.leave(leaving, joined[leaving])
	delete(joined, leaving)
	take(2, 2) // the rest: 3, less the one that left
	for s := range joined {
		if visits[s] != 1 {
			t.Errorf("session %s visited %d times in one round", s.key, visits[s])
		}
	}
	if visits[leaving] != 0 {
		t.Error("a session that left was visited")
	}
	clear(visits)
	take(0, 3) // a new round: 8 over 3 parts
	take(1, 3)
	take(2, 2)
	if len(visits) != len(joined) {
		t.Errorf("second round visited %d sessions, want %d", len(visits), len(joined))
	}
}
