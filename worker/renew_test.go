package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
)

// Leases are renewed a tick's share at a time, each at a phase of its own,
// not all in one round trip: sessions started together are renewed at
// several different instants. (The whole-worker round stamped every lease
// with the same renewal time, and its one pipeline of every lease held
// Redis long enough to show in the neighbours' echo p99.)
func TestRenewalsArePacedOverTheInterval(t *testing.T) {
	e := newEnv(t, demogame.Config{Bench: true})
	cfg := testConfig()
	cfg.LeaseTTL = 3 * time.Second // an interval of 1 s in 8 ticks
	e.startWorker(cfg)
	const n = 24
	users := make([]string, n)
	for i := range users {
		users[i] = e.user(fmt.Sprint("pace", i))
		e.attach(users[i], "v1", "", "")
	}
	var last time.Time
	for _, u := range users {
		e.waitState(u, store.StateConnected)
		l, _ := e.lease(u)
		if l.Acquired.After(last) {
			last = l.Acquired
		}
	}
	renewed := map[int64]int{}
	waitFor(t, 10*time.Second, "every lease renewed after the last one started", func() bool {
		return e.renewedAfter(users, last, renewed)
	})
	if len(renewed) < 3 {
		t.Fatalf("%d leases renewed at only %d instants (%v): renewals are not spread over the interval", n, len(renewed), renewed)
	}
}

// After renewals failed for a while (Redis away) every lease falls due at
// once and is renewed in one round; the leases are then spread over the
// interval again, not kept in one burst for the rest of their lives.
func TestOverdueRenewalsAreSpreadAgain(t *testing.T) {
	e := newEnv(t, demogame.Config{Bench: true})
	cfg := testConfig()
	cfg.LeaseTTL = 3 * time.Second
	w := e.startWorker(cfg)
	const n = 24
	users := make([]string, n)
	for i := range users {
		users[i] = e.user(fmt.Sprint("spread", i))
		e.attach(users[i], "v1", "", "")
	}
	for _, u := range users {
		e.waitState(u, store.StateConnected)
	}
	// As after an outage: every lease overdue (but not yet late).
	overdue := time.Now()
	for _, s := range w.snapshot() {
		s.renewAt.Store(overdue.Add(-2 * time.Second).UnixNano())
	}
	bunch := map[int64]int{}
	waitFor(t, 10*time.Second, "the overdue leases renewed", func() bool { return e.renewedAfter(users, overdue, bunch) })
	var last time.Time
	for ms := range bunch {
		if at := time.UnixMilli(ms); at.After(last) {
			last = at
		}
	}
	again := map[int64]int{}
	waitFor(t, 10*time.Second, "every lease renewed once more", func() bool { return e.renewedAfter(users, last, again) })
	if len(again) < 3 {
		t.Fatalf("after the overdue round, %d leases renewed at only %d instants (%v)", n, len(again), again)
	}
}

// A renewal extends the transcript's expiry only when that is due: the
// stream's TTL runs down between renewals instead of being set again by
// every one (six PEXPIREs per session per renewal). A key a later entry
// creates still gets an expiry from the next renewal.
func TestRenewalExtendsTheTranscriptOnlyWhenDue(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.TranscriptTTL = time.Hour
	e.startWorker(cfg)
	u := e.user("keep")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	tag := e.ns + ":{ug:" + u + ":demo}"
	out, gmcp := tag+":out", tag+":gmcp"
	waitFor(t, 10*time.Second, "the transcript's expiry set", func() bool {
		return e.rdb.PTTL(e.ctx, out).Val() > 0
	})
	first, _ := e.lease(u)
	prev := e.rdb.PTTL(e.ctx, out).Val()
	renewals := 0
	var seen time.Time
	// At the login prompt the game is quiet: nothing makes the expiry due.
	waitFor(t, 20*time.Second, "three more renewals", func() bool {
		ttl := e.rdb.PTTL(e.ctx, out).Val()
		if ttl > prev+50*time.Millisecond {
			t.Fatalf("the transcript's TTL went from %s up to %s: a renewal extended it again", prev, ttl)
		}
		prev = ttl
		if l, ok := e.lease(u); ok && l.Renewed.After(first.Renewed) && !l.Renewed.Equal(seen) {
			seen = l.Renewed
			renewals++
		}
		return renewals >= 3
	})
	// Char.Vitals creates the GMCP hash, after the session started: the
	// next renewal must give it an expiry.
	if n := e.rdb.Exists(e.ctx, gmcp).Val(); n != 0 {
		t.Fatalf("GMCP hash exists before login")
	}
	e.login(u, "Kip", "pw")
	e.input(u, "vitals")
	waitFor(t, 10*time.Second, "the GMCP hash created and given an expiry", func() bool {
		return e.rdb.PTTL(e.ctx, gmcp).Val() > 0
	})
}

// renewedAfter reports whether every user's lease was renewed after after,
// and counts the leases renewed at each instant (unix ms) in instants.
func (e *env) renewedAfter(users []string, after time.Time, instants map[int64]int) bool {
	clear(instants)
	for _, u := range users {
		l, ok := e.lease(u)
		if !ok || !l.Renewed.After(after) {
			return false
		}
		instants[l.Renewed.UnixMilli()]++
	}
	return true
}
