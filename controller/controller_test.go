package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// table is a session table in memory: the controller's decisions are what
// is under test, against a real Redis.
type table struct {
	mu        sync.Mutex
	running   map[store.SessionKey]store.Lease
	delivered []store.Command
	startErr  error
	accepting bool
}

func newTable() *table {
	return &table{running: map[store.SessionKey]store.Lease{}, accepting: true}
}

func (t *table) Deliver(_ context.Context, c store.Command) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.running[c.Key()]; !ok {
		return false
	}
	t.delivered = append(t.delivered, c)
	return true
}

func (t *table) Start(_ context.Context, c store.Command, l store.Lease) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.startErr != nil {
		return t.startErr
	}
	t.running[c.Key()] = l
	return nil
}

func (t *table) Accepting() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accepting
}

func (t *table) count() (running, delivered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.running), len(t.delivered)
}

type fixture struct {
	t   *testing.T
	st  *store.Store
	ctx context.Context
}

func setup(t *testing.T) *fixture {
	tgt := redistest.Isolated(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fixture{t: t, st: store.New(tgt.Client, store.WithNamespace(tgt.Namespace)), ctx: ctx}
}

// run starts c until the test ends.
func (f *fixture) run(c *Controller) {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
}

func (f *fixture) controller(name, owner string, sessions Sessions) *Controller {
	return New(f.st, sessions, Config{Consumer: name, Owner: owner, LeaseTTL: time.Minute,
		ClaimMinIdle: 30 * time.Millisecond, MaxDeliveries: 3, ReadBlock: 50 * time.Millisecond})
}

func (f *fixture) publish(c store.Command) {
	if _, err := f.st.PublishControl(f.ctx, c); err != nil {
		f.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attach(user, viewer string) store.Command {
	return store.Command{Type: store.CmdAttach, User: user, Game: "g", Viewer: viewer, Correlation: "c-" + viewer}
}

func TestAttachAcquiresLeaseThenDeliversRepeats(t *testing.T) {
	f := setup(t)
	tab := newTable()
	f.run(f.controller("w1", "w1-aaaa", tab))
	f.publish(attach("u", "v1"))
	f.publish(attach("u", "v1")) // at-least-once: the same attach again
	f.publish(store.Command{Type: store.CmdDetach, User: "u", Game: "g", Viewer: "v1"})
	waitFor(t, "start and two deliveries", func() bool { r, d := tab.count(); return r == 1 && d == 2 })
	l, ok, _ := f.st.GetLease(f.ctx, store.SessionKey{User: "u", Game: "g"})
	if !ok || l.Owner != "w1-aaaa" || l.Fence != 1 {
		t.Fatalf("lease %+v %v", l, ok)
	}
	waitFor(t, "everything acknowledged", func() bool {
		st, _ := f.st.ControlStatus(f.ctx)
		return st.Pending == 0 && st.Lag == 0
	})
}

func TestAttachForLeaseHeldElsewhereGoesToOwnersInbox(t *testing.T) {
	f := setup(t)
	key := store.SessionKey{User: "u2", Game: "g"}
	if _, err := f.st.AcquireLease(f.ctx, key, "other-1234", "s", time.Minute); err != nil {
		t.Fatal(err)
	}
	tab := newTable()
	c := f.controller("w1", "w1-bbbb", tab)
	f.run(c)
	f.publish(attach("u2", "v9"))
	var got []store.InboxMessage
	waitFor(t, "forwarded attach", func() bool {
		msgs, _ := f.st.ReadInbox(f.ctx, "other-1234", "0", 10, 10*time.Millisecond)
		got = append(got, msgs...)
		return len(got) == 1
	})
	if got[0].Command.Viewer != "v9" || got[0].Command.Correlation != "c-v9" {
		t.Fatalf("forwarded %+v", got[0].Command)
	}
	// A forwarded command is never forwarded again.
	if err := c.Handle(f.ctx, attach("u2", "v10"), true); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := f.st.ReadInbox(f.ctx, "other-1234", "0", 10, 10*time.Millisecond); len(msgs) != 0 {
		t.Fatalf("forwarded command bounced on: %+v", msgs)
	}
	if r, _ := tab.count(); r != 0 {
		t.Fatal("started a session whose lease is held elsewhere")
	}
}

func TestFailingEntryIsDeadLetteredAfterMaxDeliveries(t *testing.T) {
	f := setup(t)
	tab := newTable()
	tab.startErr = errors.New("boom")
	f.run(f.controller("w1", "w1-cccc", tab))
	f.publish(attach("u3", "v1"))
	var dl []store.DeadLetterEntry
	waitFor(t, "dead letter", func() bool {
		dl, _ = f.st.DeadLetters(f.ctx, 10)
		return len(dl) == 1
	})
	if dl[0].Command.User != "u3" || dl[0].Deliveries != "4" {
		t.Fatalf("dead letter %+v, want u3 after 3 failed deliveries", dl[0])
	}
	// Every failed start released its lease.
	if _, ok, _ := f.st.GetLease(f.ctx, store.SessionKey{User: "u3", Game: "g"}); ok {
		t.Fatal("lease left behind by failed starts")
	}
	evs, _ := f.st.ReadEvents(f.ctx, "-", "+", 100)
	if n := countType(evs, store.EvControlDeadLetter); n != 1 {
		t.Fatalf("%d dead-letter events", n)
	}
}

func countType(evs []store.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestFullWorkerStopsPullingAndOthersTakeTheWork(t *testing.T) {
	f := setup(t)
	full := newTable()
	full.accepting = false
	f.run(f.controller("full", "full-1", full))
	f.publish(attach("u4", "v1"))
	time.Sleep(100 * time.Millisecond) // the full worker has had its chance to pull
	if st, _ := f.st.ControlStatus(f.ctx); st.Lag != 1 {
		t.Fatalf("lag %d: a full worker pulled work", st.Lag)
	}
	free := newTable()
	f.run(f.controller("free", "free-1", free))
	waitFor(t, "the free worker starts it", func() bool { r, _ := free.count(); return r == 1 })
}

func TestRestartedConsumerReadsOwnPendingFirstAndDeadWorkersEntriesAreClaimed(t *testing.T) {
	f := setup(t)
	// A worker read two entries and died before acknowledging them.
	f.publish(attach("u5", "v1"))
	f.publish(attach("u6", "v1"))
	if err := f.st.EnsureControlGroup(f.ctx); err != nil {
		t.Fatal(err)
	}
	dead := f.st.ControlConsumer("dead")
	if msgs, err := dead.Read(f.ctx, 1, time.Millisecond); err != nil || len(msgs) != 1 {
		t.Fatalf("read %v %v", msgs, err)
	}
	other := f.st.ControlConsumer("gone")
	if msgs, err := other.Read(f.ctx, 1, time.Millisecond); err != nil || len(msgs) != 1 {
		t.Fatalf("read %v %v", msgs, err)
	}
	// "dead" restarts under its name: it handles its own pending entry;
	// "gone" never comes back: its entry is claimed.
	tab := newTable()
	f.run(f.controller("dead", "dead-2", tab))
	waitFor(t, "both sessions started", func() bool { r, _ := tab.count(); return r == 2 })
	waitFor(t, "nothing pending", func() bool { st, _ := f.st.ControlStatus(f.ctx); return st.Pending == 0 })
}

func TestOldCommandsAreDroppedNotActedOn(t *testing.T) {
	f := setup(t)
	tab := newTable()
	old := attach("u-old", "v-old")
	old.Time = time.Now().Add(-time.Hour)
	f.publish(old)
	f.publish(attach("u-new", "v-new"))
	f.run(f.controller("w1", "w1-aaaa", tab))
	waitFor(t, "the fresh attach started and both acknowledged", func() bool {
		r, _ := tab.count()
		st, _ := f.st.ControlStatus(f.ctx)
		return r == 1 && st.Pending == 0 && st.Lag == 0
	})
	if _, ok, _ := f.st.GetLease(f.ctx, store.SessionKey{User: "u-old", Game: "g"}); ok {
		t.Fatal("an hour-old attach took a lease")
	}
	if _, ok, _ := f.st.GetLease(f.ctx, store.SessionKey{User: "u-new", Game: "g"}); !ok {
		t.Fatal("the fresh attach took no lease")
	}
}

// Redis going away stops nothing for good: the loop backs off, and once
// Redis is back the commands published meanwhile are handled.
func TestRedisOutageThenRecovery(t *testing.T) {
	srv := redistest.New(t, redistest.Options{AOF: true})
	st, err := store.Open(store.Config{URL: srv.URL(0), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, OutputMaxLen: 100, EventsMaxAge: time.Hour, ControlMaxLen: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, st: st, ctx: ctx}
	tab := newTable()
	f.run(f.controller("w1", "w1-aaaa", tab))
	f.publish(attach("before", "v1"))
	waitFor(t, "the first attach", func() bool { r, _ := tab.count(); return r == 1 })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the loop fail a few reads
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Redis back", func() bool { return st.Ping(ctx) == nil })
	f.publish(attach("after", "v2"))
	waitFor(t, "the attach published after the outage", func() bool { r, _ := tab.count(); return r == 2 })
}

// Detach, stop and resize go to the session's owner: delivered here when
// it runs here, forwarded to the owner's inbox when another worker holds
// the lease, and dropped when no session exists.
func TestRouteDetachStopResize(t *testing.T) {
	f := setup(t)
	tab := newTable()
	c := f.controller("w1", "w1-aaaa", tab)
	// Runs here.
	if err := c.Handle(f.ctx, attach("here", "v1"), false); err != nil {
		t.Fatal(err)
	}
	if err := c.Handle(f.ctx, store.Command{Type: store.CmdResize, User: "here", Game: "g", Viewer: "v1", Cols: 90, Rows: 20}, false); err != nil {
		t.Fatal(err)
	}
	if _, d := tab.count(); d != 1 {
		t.Fatalf("resize of a local session: %d deliveries, want 1", d)
	}
	// Held by another worker.
	key := store.SessionKey{User: "there", Game: "g"}
	if _, err := f.st.AcquireLease(f.ctx, key, "w2-bbbb", "s", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Handle(f.ctx, store.Command{Type: store.CmdStop, User: "there", Game: "g", Reason: "ops"}, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := f.st.ReadInbox(f.ctx, "w2-bbbb", "0", 10, 10*time.Millisecond)
	if err != nil || len(msgs) != 1 || msgs[0].Command.Type != store.CmdStop {
		t.Fatalf("owner's inbox %+v %v, want the stop", msgs, err)
	}
	// No session anywhere: nothing to do, not an error.
	if err := c.Handle(f.ctx, store.Command{Type: store.CmdDetach, User: "nobody", Game: "g", Viewer: "v"}, false); err != nil {
		t.Fatalf("detach of no session: %v", err)
	}
	// An unknown type on the control path is permanent: dead-lettered.
	if err := c.Handle(f.ctx, store.Command{Type: store.CmdInput, User: "here", Game: "g"}, false); !errors.Is(err, errPermanent) {
		t.Fatalf("input on the control path: %v, want a permanent error", err)
	}
}
