package store

import (
	"fmt"
	"testing"
	"time"
)

func TestSessionIndex(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_500)
	s, rdb := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)

	a := SessionInfo{
		Key: SessionKey{User: "zed", Game: "dune"}, Worker: "w1", Session: "s-a", Fence: 4,
		State: StateConnected, Started: time.UnixMilli(1_700_000_000_000), Viewers: 2,
	}
	b := SessionInfo{
		Key: SessionKey{User: "amy", Game: "moo"}, Worker: "w2", Session: "s-b", Fence: 1,
		State: StateConnecting, Started: time.UnixMilli(1_700_000_000_100), Updated: time.UnixMilli(1_700_000_000_200),
	}
	for _, si := range []SessionInfo{a, b} {
		if err := s.PutSession(ctx, si); err != nil {
			t.Fatal(err)
		}
	}
	a.Updated = at // filled in from the clock
	got, ok, err := s.GetSession(ctx, a.Key)
	if err != nil || !ok || !sessionsEqual(got, a) {
		t.Errorf("GetSession = %+v ok=%v err=%v; want %+v", got, ok, err, a)
	}
	if _, ok, err := s.GetSession(ctx, SessionKey{User: "nobody", Game: "g"}); err != nil || ok {
		t.Errorf("GetSession of nothing: ok=%v err=%v", ok, err)
	}
	list, err := s.ListSessions(ctx)
	if err != nil || len(list) != 2 || !sessionsEqual(list[0], b) || !sessionsEqual(list[1], a) {
		t.Errorf("ListSessions = %+v, %v; want amy then zed", list, err)
	}

	// An update replaces the record, and the index holds it once.
	a.State, a.Viewers = StateDraining, 0
	if err := s.PutSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetSession(ctx, a.Key); got.State != StateDraining || got.Viewers != 0 {
		t.Errorf("after update: %+v", got)
	}

	// A stale session id (an older owner cleaning up late) changes nothing.
	if err := s.DeleteSession(ctx, a.Key, "s-old"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetSession(ctx, a.Key); !ok {
		t.Fatal("delete with a stale session id removed the record")
	}
	if err := s.DeleteSession(ctx, a.Key, "s-a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetSession(ctx, a.Key); ok {
		t.Fatal("record still there after its session deleted it")
	}
	if member, _ := rdb.SIsMember(ctx, s.ks.sessions(0), a.Key.indexMember()).Result(); member {
		t.Error("deleted session still indexed")
	}

	// A worker died before cleaning up: its record expired or was removed
	// behind the index's back. Listing prunes the member.
	if err := rdb.Del(ctx, s.ks.session(b.Key)).Err(); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListSessions(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListSessions with a vanished record = %+v, %v", list, err)
	}
	if n := rdb.SCard(ctx, s.ks.sessions(0)).Val(); n != 0 {
		t.Errorf("index holds %d members after pruning", n)
	}
}

func sessionsEqual(a, b SessionInfo) bool {
	return a.Key == b.Key && a.Worker == b.Worker && a.Session == b.Session && a.Fence == b.Fence &&
		a.State == b.State && a.Started.Equal(b.Started) && a.Updated.Equal(b.Updated) && a.Viewers == b.Viewers
}

func TestListSessionsManyBatches(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	const n = 1100 // more than one pipeline batch of 500
	pipe := rdb.Pipeline()
	for i := range n {
		k := SessionKey{User: fmt.Sprintf("u%04d", i), Game: "g"}
		pipe.HSet(ctx, s.ks.session(k), "user", k.User, "game", k.Game, "worker", "w", "session", "s", "fence", 1)
		pipe.SAdd(ctx, s.ks.sessions(0), k.indexMember())
	}
	pipe.SAdd(ctx, s.ks.sessions(0), "member-without-separator")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSessions(ctx)
	if err != nil || len(list) != n {
		t.Fatalf("ListSessions: %d sessions, %v; want %d", len(list), err, n)
	}
	for i, si := range list {
		if si.Key.User != fmt.Sprintf("u%04d", i) {
			t.Fatalf("entry %d is %s: not ordered by user", i, si.Key)
		}
	}
}

func TestCountUserSessions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	for _, g := range []string{"g1", "g2"} {
		if _, err := s.AcquireLease(ctx, SessionKey{User: "u", Game: g}, "w", "s", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AcquireLease(ctx, SessionKey{User: "other", Game: "g3"}, "w", "s", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountUserSessions(ctx, "u", []string{"g1", "g2", "g3"}); err != nil || n != 2 {
		t.Errorf("CountUserSessions = %d, %v; want 2", n, err)
	}
	if n, err := s.CountUserSessions(ctx, "u", nil); err != nil || n != 0 {
		t.Errorf("CountUserSessions without games = %d, %v", n, err)
	}
}

func TestEdgeHeartbeats(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	if live, err := s.LiveEdges(ctx, nil); err != nil || len(live) != 0 {
		t.Errorf("LiveEdges(nil) = %v, %v", live, err)
	}
	for edge, ttl := range map[string]time.Duration{"e1": time.Minute, "e2": time.Minute, "e3": 30 * time.Millisecond} {
		if err := s.EdgeHeartbeat(ctx, edge, ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EdgeGone(ctx, "e2"); err != nil {
		t.Fatal(err)
	}
	edges := []string{"e1", "e2", "e3", "never"}
	eventually(t, "e3's heartbeat expires", func() bool {
		live, err := s.LiveEdges(ctx, edges)
		if err != nil {
			t.Fatal(err)
		}
		if !live["e1"] || live["e2"] || live["never"] || len(live) != 4 {
			t.Fatalf("LiveEdges = %v", live)
		}
		return !live["e3"]
	})
}

// The session record follows the session: status entries set its state,
// SetSessionViewers its viewer count, both only for the record's own fence.
func TestSessionRecordFollowsStatusAndViewers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "follow", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, SessionInfo{Key: key, Worker: "w1", Session: "s1", Fence: l.Fence,
		State: StateConnected, Viewers: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutStatus, State: StateDraining, Fence: l.Fence, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionViewers(ctx, key, l.Fence, 3); err != nil {
		t.Fatal(err)
	}
	si, ok, err := s.GetSession(ctx, key)
	if err != nil || !ok || si.State != StateDraining || si.Viewers != 3 {
		t.Fatalf("record %+v %v %v, want draining with 3 viewers", si, ok, err)
	}
	// Another fence's writes leave the record alone.
	if err := s.SetSessionViewers(ctx, key, l.Fence+1, 9); err != nil {
		t.Fatal(err)
	}
	if si, _, _ := s.GetSession(ctx, key); si.Viewers != 3 {
		t.Fatalf("a stale fence changed viewers to %d", si.Viewers)
	}
}
