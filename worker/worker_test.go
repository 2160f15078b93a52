package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
)

func TestAttachStartsSessionAndOutputReachesStream(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("ann")

	start := time.Now()
	corr := e.attach(u, "v1", "", "")
	outs := e.waitText(u, "What is your name?")
	t.Logf("session start (attach to first game text in the stream): %s", time.Since(start))

	st := states(outs)
	if len(st) < 2 || st[0] != store.StateConnecting || st[1] != store.StateConnected {
		t.Fatalf("statuses = %v, want connecting then connected", st)
	}
	l, ok := e.lease(u)
	if !ok || l.Owner != w.ID() || l.Fence != 1 {
		t.Fatalf("lease = %+v %v, want owner %s fence 1", l, ok, w.ID())
	}
	var seq uint64
	for _, o := range outs {
		if o.Fence != 1 {
			t.Errorf("entry %s has fence %d, want 1", o.ID, o.Fence)
		}
		if o.Seq != seq+1 {
			t.Errorf("entry %s has seq %d after %d: a hole", o.ID, o.Seq, seq)
		}
		seq = o.Seq
		if o.Kind == store.OutStatus && o.Worker != w.ID() {
			t.Errorf("status %s names worker %q, want %q", o.State, o.Worker, w.ID())
		}
	}
	evs := e.events(u)
	for _, typ := range []string{store.EvSessionStarting, store.EvSessionStarted} {
		if countEvents(evs, typ) != 1 {
			t.Errorf("%d %s events, want 1", countEvents(evs, typ), typ)
		}
	}
	for _, ev := range evs {
		if ev.Correlation != corr {
			t.Errorf("event %s has correlation %q, want %q", ev.Type, ev.Correlation, corr)
		}
	}
	// The demo game sees the player's window size (NAWS) and IP (MNES).
	e.login(u, "Ann", "pw")
	e.input(u, "look")
	e.waitText(u, "Your window is 100x30")
	e.input(u, "who")
	e.waitText(u, "203.0.113.7")
	if n := w.Sessions(); n != 1 {
		t.Errorf("Sessions() = %d, want 1", n)
	}
}

func TestSecondAttachFromAnotherEdgeReusesSession(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w1 := e.startWorker(testConfig())
	w2 := e.startWorker(testConfig())
	u := e.user("bob")

	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	// Several attaches from another edge: whichever worker reads them, they
	// reach the owner, and the game still sees one connection.
	for i := range 4 {
		e.attach(u, fmt.Sprintf("v%d", i+2), "", "")
	}
	waitFor(t, 10*time.Second, "4 reattached events", func() bool {
		return countEvents(e.events(u), store.EvSessionReattached) == 4
	})
	if c, a := e.game.Conns(), e.game.Accepted(); c != 1 || a != 1 {
		t.Fatalf("game conns = %d, accepted = %d; want 1 and 1", c, a)
	}
	if n := w1.Sessions() + w2.Sessions(); n != 1 {
		t.Fatalf("sessions across workers = %d, want 1", n)
	}
}

func TestManyAttachesAcrossTwoWorkersStartEachOnce(t *testing.T) {
	e := newEnv(t, demogame.Config{NegotiationWait: time.Millisecond})
	cfg := testConfig()
	cfg.LeaseTTL = 5 * time.Second // the race detector on a shared box is slow
	w1 := e.startWorker(cfg)
	w2 := e.startWorker(testConfig())
	const n = 100
	users := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = e.user(fmt.Sprintf("p%03d", i))
		// Two edges publish the same attach at once: the duplicate must
		// not start a second session.
		wg.Go(func() { e.attach(users[i], "a", "", "") })
		wg.Go(func() { e.attach(users[i], "b", "", "") })
	}
	wg.Wait()
	waitFor(t, 90*time.Second, "all sessions connected", func() bool {
		for _, u := range users {
			if l, ok := e.lease(u); !ok || l.Fence != 1 {
				return false
			}
		}
		return w1.Sessions()+w2.Sessions() == n && e.game.Conns() == n
	})
	evs := e.events("")
	starting := map[string]int{}
	for _, ev := range evs {
		if ev.Type == store.EvSessionStarting {
			starting[ev.Subject]++
		}
	}
	for _, u := range users {
		if c := starting[key(u).String()]; c != 1 {
			t.Errorf("%s started %d times", u, c)
		}
	}
	if a := e.game.Accepted(); a != n {
		t.Errorf("game accepted %d connections, want %d", a, n)
	}
	t.Logf("sessions: worker1 %d, worker2 %d", w1.Sessions(), w2.Sessions())
}

func TestPasswordTypedUnderEchoReachesNoStream(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig())
	u := e.user("cat")
	const password = "Xyzzy-s3cret-PW"

	e.attach(u, "v1", "", "")
	e.login(u, "Catherine", password)
	e.input(u, "say hello")
	e.waitText(u, "You say: hello")

	var redacted, named bool
	for _, o := range e.outputs(u) {
		if o.Kind != store.OutInput {
			continue
		}
		if o.Redacted && o.Text == "" {
			redacted = true
		}
		if o.Text == "Catherine" {
			named = true
		}
	}
	if !redacted || !named {
		t.Fatalf("input entries: redacted %v, name recorded %v; want both", redacted, named)
	}
	// Scan every key of every type in the test's database.
	keys := e.keys()
	for _, k := range keys {
		typ := e.rdb.Type(e.ctx, k).Val()
		var dump string
		switch typ {
		case "stream":
			msgs := e.rdb.XRange(e.ctx, k, "-", "+").Val()
			dump = fmt.Sprint(msgs)
		case "hash":
			dump = fmt.Sprint(e.rdb.HGetAll(e.ctx, k).Val())
		case "string":
			dump = e.rdb.Get(e.ctx, k).Val()
		case "set":
			dump = fmt.Sprint(e.rdb.SMembers(e.ctx, k).Val())
		}
		if strings.Contains(dump, password) {
			t.Errorf("password found in %s %s", typ, k)
		}
	}
	if strings.Contains(e.logs.String(), password) {
		t.Error("password found in the worker's log")
	}
	if len(keys) < 3 {
		t.Fatalf("only %d keys scanned: the scan looked at the wrong database", len(keys))
	}
}

func TestInputWithStaleFenceIsDropped(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("dan")
	e.attach(u, "v1", "", "")
	e.waitText(u, "What is your name?")
	l, _ := e.lease(u)

	e.inputFenced(u, "Stalename", w.ID(), l.Fence+1)
	e.inputFenced(u, "Oldername", w.ID(), 0)
	e.inputFenced(u, "Goodname", w.ID(), l.Fence)
	outs := e.waitText(u, "Password:")
	for _, o := range outs {
		if o.Kind == store.OutInput && o.Text != "Goodname" {
			t.Errorf("input %q with a stale fence reached the game", o.Text)
		}
	}
	if strings.Contains(text(outs), "Stalename") || strings.Contains(text(outs), "Oldername") {
		t.Error("the game saw a name sent with a stale fence")
	}
}

func TestGameHangsUpEndsSession(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("eve")
	e.attach(u, "v1", "", "")
	e.login(u, "Eve", "pw")
	e.input(u, "quit")
	outs := e.waitState(u, store.StateDisconnected)
	if last := states(outs)[len(states(outs))-1]; last != store.StateDisconnected {
		t.Fatalf("last status %s, want disconnected", last)
	}
	waitFor(t, 5*time.Second, "session gone and lease released", func() bool {
		_, held := e.lease(u)
		return !held && w.Sessions() == 0
	})
	if a := e.game.Accepted(); a != 1 {
		t.Fatalf("game accepted %d connections: a clean hang-up must not be redialled", a)
	}
	if countEvents(e.events(u), store.EvSessionEnded) != 1 {
		t.Fatal("no session ended event")
	}
}

func TestGameDownBacksOffThenFails(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	e.addGame("down", addr)
	cfg := testConfig()
	cfg.RestartIntensity = 3
	w := e.startWorker(cfg)
	u := e.user("fay")
	k := store.SessionKey{User: u, Game: "down"}
	e.control(store.Command{Type: store.CmdAttach, User: u, Game: "down", Viewer: "v1", Correlation: "c-down"})

	var outs []store.Output
	waitFor(t, 10*time.Second, "status failed", func() bool {
		outs, _ = e.st.OutputRange(e.ctx, k, "-", "+", 1000)
		return hasState(outs, store.StateFailed)
	})
	st := states(outs)
	if st[len(st)-1] != store.StateFailed {
		t.Fatalf("statuses %v: want failed last", st)
	}
	if n := strings.Count(strings.Join(st, " "), store.StateConnecting); n != 4 {
		t.Errorf("%d connecting statuses, want 4 (first try + 3 restarts): %v", n, st)
	}
	last := outs[len(outs)-1]
	if !strings.Contains(last.Text, "refused the connection") {
		t.Errorf("failed status text %q does not say why", last.Text)
	}
	// Players get the reason, not the game's address or internals.
	for _, o := range outs {
		if o.Kind == store.OutStatus && strings.Contains(o.Text, addr) {
			t.Errorf("status %q shows the game's address to the player", o.Text)
		}
	}
	// The failed event is appended just after the failed status.
	var restarting, failed int
	waitFor(t, 5*time.Second, "the failed event", func() bool {
		evs, _ := e.st.ReadEvents(e.ctx, "-", "+", 1000)
		restarting, failed = 0, 0
		for _, ev := range evs {
			if ev.Subject != k.String() {
				continue
			}
			switch ev.Type {
			case store.EvSessionRestarting:
				restarting++
			case store.EvSessionFailed:
				failed++
				if !strings.Contains(string(ev.Data), "connection refused") {
					t.Errorf("failed event %s lacks the full error for operators", ev.Data)
				}
			}
			if ev.Correlation != "c-down" {
				t.Errorf("event %s correlation %q", ev.Type, ev.Correlation)
			}
		}
		return failed > 0
	})
	if restarting != 3 || failed != 1 {
		t.Errorf("events: %d restarting, %d failed; want 3 and 1", restarting, failed)
	}
	waitFor(t, 5*time.Second, "lease released", func() bool {
		_, ok, _ := e.st.GetLease(e.ctx, k)
		return !ok && w.Sessions() == 0
	})
}

func TestIdleGraceCancelledByReattachAndRestartedByDetach(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.IdleGrace = 300 * time.Millisecond
	w := e.startWorker(cfg)
	u := e.user("gil")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)

	e.control(store.Command{Type: store.CmdDetach, User: u, Game: "demo", Viewer: "v1"})
	waitFor(t, 5*time.Second, "idle event", func() bool { return countEvents(e.events(u), store.EvSessionIdle) == 1 })
	e.attach(u, "v2", "", "")
	waitFor(t, 5*time.Second, "reattached event", func() bool {
		return countEvents(e.events(u), store.EvSessionReattached) == 1
	})
	// Past the grace the session still runs: the re-attach cancelled it.
	time.Sleep(3 * cfg.IdleGrace)
	if w.Sessions() != 1 || hasState(e.outputs(u), store.StateDisconnected) {
		t.Fatal("session ended although a viewer came back")
	}
	// A later detach starts a fresh grace, which ends the session.
	e.control(store.Command{Type: store.CmdDetach, User: u, Game: "demo", Viewer: "v2"})
	outs := e.waitState(u, store.StateDisconnected)
	if !strings.Contains(outs[len(outs)-1].Text, "without a viewer") {
		t.Errorf("final status %q does not say idle", outs[len(outs)-1].Text)
	}
	waitFor(t, 5*time.Second, "game connection closed", func() bool { return e.game.Conns() == 0 })
}

func TestStopCommandEndsSession(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("hal")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	e.control(store.Command{Type: store.CmdStop, User: u, Game: "demo"})
	e.waitState(u, store.StateDisconnected)
	waitFor(t, 5*time.Second, "session gone", func() bool { _, held := e.lease(u); return !held && w.Sessions() == 0 })
}

func TestDrainTellsViewersAndReleasesLeases(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.DrainTimeout = 100 * time.Millisecond
	w := e.startWorker(cfg)
	users := []string{e.user("ida"), e.user("jon")}
	for _, u := range users {
		e.attach(u, "v1", "", "")
		e.waitState(u, store.StateConnected)
	}
	w.stop(t)
	for _, u := range users {
		outs := e.outputs(u)
		var drains []string
		for _, o := range outs {
			if o.Kind == store.OutStatus && o.State == store.StateDraining {
				drains = append(drains, o.Text)
			}
		}
		if len(drains) != 2 || drains[1] != "moving to another server" {
			t.Errorf("%s draining statuses %q, want a warning then \"moving to another server\"", u, drains)
		}
		if _, held := e.lease(u); held {
			t.Errorf("%s lease still held after drain", u)
		}
	}
	waitFor(t, 5*time.Second, "game connections closed", func() bool { return e.game.Conns() == 0 })
	if countEvents(e.events(""), store.EvWorkerDraining) != 1 {
		t.Error("no worker draining event")
	}
}

func TestLostLeaseStopsSessionAndStaleWritesAreRefused(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("kim")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	l, _ := e.lease(u)
	// Another worker takes over (as after an expiry the old owner missed).
	if err := e.st.ReleaseLease(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	nl, err := e.st.AcquireLease(e.ctx, key(u), "other-worker", "s2", time.Minute)
	if err != nil || nl.Fence != 2 {
		t.Fatalf("takeover: %v fence %d", err, nl.Fence)
	}
	waitFor(t, 10*time.Second, "session stopped", func() bool { return w.Sessions() == 0 && e.game.Conns() == 0 })
	if countEvents(e.events(u), store.EvLeaseLost) != 1 {
		t.Error("no lease lost event")
	}
	_, err = e.st.AppendOutput(e.ctx, key(u), store.Output{Kind: store.OutText, Text: "late", Fence: l.Fence})
	if !errors.Is(err, store.ErrStaleFence) {
		t.Fatalf("late write with old fence: err = %v, want ErrStaleFence", err)
	}
	if cur, _ := e.lease(u); cur.Owner != "other-worker" {
		t.Fatalf("the old owner touched the new lease: %+v", cur)
	}
}

func TestViewersOfDeadEdgesAreForgotten(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.ViewerCheck = 50 * time.Millisecond
	cfg.IdleGrace = 50 * time.Millisecond
	w := e.startWorker(cfg)
	if err := e.st.EdgeHeartbeat(e.ctx, "edge-live", time.Minute); err != nil {
		t.Fatal(err)
	}
	alive, dead := e.user("liv"), e.user("ded")
	e.attach(alive, "v1", "edge-live", "")
	e.attach(dead, "v2", "edge-dead", "")
	e.waitState(dead, store.StateDisconnected)
	waitFor(t, 5*time.Second, "dead edge's session gone", func() bool { return w.Sessions() == 1 })
	if hasState(e.outputs(alive), store.StateDisconnected) {
		t.Fatal("a session of a live edge was closed")
	}
}

func TestConfigValidateNamesVariable(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.LeaseTTL = time.Millisecond }, "TRELLIS_WORKER_LEASE_TTL=1ms: must be at least 1s"},
		{func(c *Config) { c.MaxSessions = -1 }, "TRELLIS_WORKER_MAX_SESSIONS=-1"},
		{func(c *Config) { c.BackoffMax = time.Millisecond }, "TRELLIS_WORKER_BACKOFF_MAX=1ms"},
		{func(c *Config) { c.SessionBuffer = 600; c.FlushBytes = 1000 }, "TRELLIS_WORKER_SESSION_BUFFER=600"},
	}
	for _, c := range cases {
		cfg := Config{}
		cfg.SetDefaults()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, c.want)
		}
	}
	cfg := Config{}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.Name == "" || cfg.IdleGrace != 10*time.Minute || cfg.FlushBytes != 16384 {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("max")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	body := get(t, w.Handler(), "/metrics", 200)
	for _, m := range []string{"trellis_worker_sessions 1", "trellis_worker_session_starts_total 1",
		"trellis_worker_output_batch_entries_count", "trellis_controller_commands_total{outcome=\"ok\",type=\"attach\"} 1"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if body := get(t, w.Handler(), "/healthz", 200); !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/healthz = %s", body)
	}
	w.draining.Store(true)
	get(t, w.Handler(), "/readyz", 503) // /healthz is liveness: admin_test.go
	w.draining.Store(false)
}

func TestRunTwiceAndBadAdminAddress(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.AdminListen = "256.0.0.1:1"
	w, err := New(cfg, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run with a bad admin address succeeded")
	}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

// TestForgottenLeaseIsRestored plays a failover that lost the lease's
// writes (the promoted replica never saw the acquisition): the lease and
// its fence counter vanish while the worker holds the session. The next
// renewal restores them with the same fence, and the session plays on.
func TestForgottenLeaseIsRestored(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("ria")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	l, _ := e.lease(u)
	tag := e.ns + ":{ug:" + u + ":demo}"
	if err := e.rdb.Del(e.ctx, tag+":lease").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(e.ctx, tag+":fence", 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "lease back", func() bool {
		cur, ok := e.lease(u)
		return ok && cur.Fence == l.Fence && cur.Owner == l.Owner && cur.Session == l.Session
	})
	// The event is written after the renewal's reply, so it may land a
	// moment after the lease is seen back.
	waitFor(t, 10*time.Second, "the lease restored event", func() bool {
		return countEvents(e.events(u), store.EvLeaseRestored) > 0
	})
	if n := countEvents(e.events(u), store.EvLeaseRestored); n != 1 {
		t.Errorf("%d lease restored events, want 1", n)
	}
	if n := countEvents(e.events(u), store.EvLeaseLost); n != 0 {
		t.Errorf("%d lease lost events, want 0", n)
	}
	if w.Sessions() != 1 || e.game.Conns() != 1 {
		t.Fatalf("after the restore: %d sessions, %d game connections, want 1 and 1", w.Sessions(), e.game.Conns())
	}
	e.waitText(u, "What is your name?")
	e.input(u, "Ria")
	e.waitText(u, "Password:")
}

// TestEndingSessionsAreNotReportedLost: sessions that end while a lease
// renewal round is in flight (their release reaches Redis before the
// round does) gave their lease up; the round must not report them as
// leases lost (a warning, an event and the TrellisLeasesLost alert for
// every player who left).
func TestEndingSessionsAreNotReportedLost(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.LeaseTTL = time.Second // a renewal round every 333 ms
	w := e.startWorker(cfg)
	const n = 200
	var users []string
	for i := range n {
		u := e.user(fmt.Sprint("end", i))
		users = append(users, u)
		e.attach(u, "v1", "", "")
	}
	for _, u := range users {
		e.waitState(u, store.StateConnected)
	}
	for round := range 3 {
		for _, u := range users {
			e.control(store.Command{Type: store.CmdStop, User: u, Game: "demo"})
		}
		waitFor(t, 60*time.Second, "sessions gone", func() bool { return w.Sessions() == 0 })
		if round < 2 {
			for _, u := range users {
				e.attach(u, "v1", "", "")
			}
			waitFor(t, 60*time.Second, "sessions back", func() bool { return w.Sessions() == n })
		}
	}
	lost := 0
	for _, u := range users {
		lost += countEvents(e.events(u), store.EvLeaseLost)
	}
	if lost > 0 {
		t.Fatalf("%d lease lost events for sessions that were stopped, not taken over", lost)
	}
}
