package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

func TestEventEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 6, 1, 10, 0, 0, 123_000_000, time.UTC)
	s, _ := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)

	if _, err := s.AppendEvent(ctx, Event{Source: "worker/w1"}); err == nil {
		t.Error("event without a type accepted")
	}
	if _, err := s.AppendEvent(ctx, Event{Type: EvWorkerStarted}); err == nil {
		t.Error("event without a source accepted")
	}

	key := SessionKey{User: "u", Game: "dune"}
	e := NewEvent(EvSessionStarted, "worker/w1", key, "attach-1", map[string]any{"fence": 3, "addr": "h:1"})
	e.ID, e.Version = "ignored", 99
	id, err := s.AppendEvent(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadEvents(ctx, "-", "+", 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadEvents = %+v, %v", got, err)
	}
	ev := got[0]
	if ev.ID != id || ev.Type != EvSessionStarted || ev.Source != "worker/w1" || ev.Subject != "u/dune" ||
		ev.Correlation != "attach-1" || ev.Version != EventVersion || !ev.Time.Equal(at) {
		t.Errorf("read back %+v", ev)
	}
	var data struct {
		Fence int
		Addr  string
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.Fence != 3 || data.Addr != "h:1" {
		t.Errorf("data %s: %+v %v", ev.Data, data, err)
	}

	// No subject and no data when there is none; unmarshalable data is dropped.
	plain := NewEvent(EvWorkerStopped, "worker/w1", SessionKey{}, "", nil)
	if plain.Subject != "" || plain.Data != nil {
		t.Errorf("NewEvent without key and data: %+v", plain)
	}
	if e := NewEvent(EvWorkerStopped, "w", SessionKey{}, "", func() {}); e.Data != nil {
		t.Errorf("unmarshalable data kept: %s", e.Data)
	}
}

func TestEventsReadByRangeAndFollow(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	var evIDs []string
	for i := range 5 {
		id, err := s.AppendEvent(ctx, NewEvent(EvSessionDetached, "edge/e1", SessionKey{User: fmt.Sprint("u", i), Game: "g"}, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		evIDs = append(evIDs, id)
	}
	mid, err := s.ReadEvents(ctx, evIDs[1], evIDs[3], 10)
	if err != nil || len(mid) != 3 || mid[0].ID != evIDs[1] || mid[2].ID != evIDs[3] {
		t.Errorf("ReadEvents(%s, %s) = %+v, %v", evIDs[1], evIDs[3], mid, err)
	}
	if two, err := s.ReadEvents(ctx, "-", "+", 2); err != nil || len(two) != 2 {
		t.Errorf("count 2: %d events, %v", len(two), err)
	}
	ms, _ := splitID(evIDs[0])
	if got, err := s.ReadEvents(ctx, TimeID(time.UnixMilli(int64(ms))), "+", 10); err != nil || len(got) != 5 {
		t.Errorf("from TimeID of the first: %d events, %v", len(got), err)
	}
	if got, err := s.ReadEvents(ctx, TimeID(time.Now().Add(time.Hour)), "+", 10); err != nil || len(got) != 0 {
		t.Errorf("from the future: %d events, %v", len(got), err)
	}
	if TimeID(time.UnixMilli(1234)) != "1234-0" {
		t.Errorf("TimeID = %q", TimeID(time.UnixMilli(1234)))
	}

	// Nothing new: a follower times out empty.
	if got, err := s.FollowEvents(ctx, evIDs[4], 10, 20*time.Millisecond); err != nil || len(got) != 0 {
		t.Errorf("follow with nothing new: %v, %v", got, err)
	}

	// A follower waiting on "$" is blocked in Redis, then receives.
	type result struct {
		events []Event
		err    error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := s.FollowEvents(ctx, "$", 10, 0) // 0: until ctx is done
		done <- result{ev, err}
	}()
	// On a single node the follower is told apart by its database; on the
	// cluster, by being blocked in XREAD on the node of this namespace's
	// event stream (no other test of the package follows events).
	node, db := rdb, 0
	if single, ok := rdb.(*redis.Client); ok {
		db = single.Options().DB
	} else {
		master, err := rdb.(*redis.ClusterClient).MasterForKey(ctx, s.ks.events())
		if err != nil {
			t.Fatal(err)
		}
		node = master
	}
	eventually(t, "follower blocked in XREAD", func() bool {
		list, err := node.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, fmt.Sprintf(" db=%d ", db)) && strings.Contains(line, " cmd=xread ") && strings.Contains(line, "flags=b") {
				return true
			}
		}
		return false
	})
	id, err := s.AppendEvent(ctx, NewEvent(EvEdgeStopped, "edge/e1", SessionKey{}, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.events) != 1 || r.events[0].ID != id || r.events[0].Type != EvEdgeStopped {
		t.Errorf("follower got %+v, %v; want only %s", r.events, r.err, id)
	}

	// An undecodable entry is skipped by readers.
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.events(), Values: []string{"v", "{"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadEvents(ctx, "("+id, "+", 10); err != nil || len(got) != 0 {
		t.Errorf("undecodable event returned: %+v, %v", got, err)
	}

	// A follower whose context ends gets the context's error.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.FollowEvents(short, "$", 10, 0); err == nil {
		t.Error("FollowEvents past its context's deadline returned no error")
	}
}

func TestEventsRetention(t *testing.T) {
	t.Parallel()
	// Retention trims with MINID ~, which drops only whole stream nodes; a
	// server of our own with one entry per node makes trimming exact
	// without changing the shared server for other tests.
	srv := redistest.New(t, redistest.Options{})
	rdb := srv.Client(t)
	ctx := testContext(t)
	if err := rdb.ConfigSet(ctx, "stream-node-max-entries", "1").Err(); err != nil {
		t.Fatal(err)
	}
	clk := newClock(time.Now())
	s := New(rdb, WithEventsMaxAge(time.Hour), WithClock(clk.Now))

	var old []string
	for i := range 5 {
		id, err := s.AppendEvent(ctx, Event{Type: EvWorkerStarted, Source: fmt.Sprint("worker/", i)})
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, id)
	}
	// Let Redis's clock pass the newest old id, then pretend an hour and a
	// bit went by since: everything up to that id is past retention.
	lastMs, _ := splitID(old[len(old)-1])
	eventually(t, "redis clock moves on", func() bool {
		now, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return uint64(now.UnixMilli()) > lastMs+1
	})
	clk.Set(time.UnixMilli(int64(lastMs) + 1).Add(time.Hour))
	id, err := s.AppendEvent(ctx, Event{Type: EvWorkerStopped, Source: "worker/x"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadEvents(ctx, "-", "+", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id {
		var left []string
		for _, e := range got {
			left = append(left, e.ID)
		}
		t.Errorf("after retention: %v, want only %s (old %v)", left, id, old)
	}
}
