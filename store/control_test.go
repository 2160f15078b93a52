package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func attach(user, game string) Command {
	return Command{Type: CmdAttach, User: user, Game: game, Viewer: "v-" + user, Cols: 80, Rows: 24}
}

func ids(msgs []ControlMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func publishAll(t *testing.T, ctx context.Context, s *Store, cmds ...Command) []string {
	t.Helper()
	var out []string
	for _, c := range cmds {
		id, err := s.PublishControl(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func TestControlReadOwnPendingFirst(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s, _ := newStore(t, WithControlShards(1), WithClock(newClock(at).Now))
	ctx := testContext(t)
	for range 2 { // idempotent
		if err := s.EnsureControlGroup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := publishAll(t, ctx, s, attach("u1", "g"), attach("u2", "g"), attach("u3", "g"))

	c1 := s.ControlConsumer("worker-1")
	if c1.Name() != "worker-1" {
		t.Errorf("Name() = %q", c1.Name())
	}
	msgs, err := c1.Read(ctx, 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(msgs)) != fmt.Sprint(first) {
		t.Fatalf("first read got %v, want %v", ids(msgs), first)
	}
	for i, m := range msgs {
		if m.Err != nil || m.Deliveries != 1 {
			t.Errorf("entry %d: err=%v deliveries=%d", i, m.Err, m.Deliveries)
		}
		want := attach(fmt.Sprint("u", i+1), "g")
		want.Time = at
		if !commandsEqual(m.Command, want) {
			t.Errorf("entry %d: command %+v, want %+v", i, m.Command, want)
		}
	}

	// The worker "crashes" without acking; more work arrives meanwhile.
	later := publishAll(t, ctx, s, attach("u4", "g"), attach("u5", "g"))

	// Restarted under the same name: its own pending entries come first,
	// in order, even when they take several reads, and only then new ones.
	c1 = s.ControlConsumer("worker-1")
	var got []ControlMessage
	for range 2 {
		m, err := c1.Read(ctx, 2, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m...)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(first) {
		t.Fatalf("after restart got %v, want the pending %v first", ids(got), first)
	}
	for _, m := range got {
		if m.Deliveries < 2 {
			t.Errorf("re-delivered %s: deliveries %d, want at least 2", m.ID, m.Deliveries)
		}
	}
	fresh, err := c1.Read(ctx, 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(fresh)) != fmt.Sprint(later) {
		t.Fatalf("then got %v, want the new %v", ids(fresh), later)
	}

	if err := s.AckControl(ctx, append(got, fresh...)...); err != nil {
		t.Fatal(err)
	}
	if err := s.AckControl(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 5 || st.Pending != 0 || st.Lag != 0 || st.DeadLetters != 0 || len(st.Consumers) != 1 {
		t.Errorf("status %+v: want 5 entries, nothing pending or lagging, one consumer", st)
	}

	// Nothing left: a read times out empty, without error.
	if m, err := s.ControlConsumer("worker-1").Read(ctx, 10, 20*time.Millisecond); err != nil || len(m) != 0 {
		t.Errorf("read of an idle stream: %v, %v", m, err)
	}
}

func commandsEqual(a, b Command) bool {
	a.Time, b.Time = a.Time.UTC(), b.Time.UTC()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestControlClaimDeliveriesAndDeadLetter(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, WithControlShards(1))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	published := publishAll(t, ctx, s, attach("p1", "g"), attach("p2", "g"))

	dead := s.ControlConsumer("dead-worker")
	if m, err := dead.Read(ctx, 10, 100*time.Millisecond); err != nil || len(m) != 2 {
		t.Fatalf("read: %v, %v", m, err)
	}
	live := s.ControlConsumer("live-worker")
	var claimed []ControlMessage
	eventually(t, "entries idle long enough to claim", func() bool {
		m, err := live.Claim(ctx, time.Millisecond, 10)
		if err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, m...)
		return len(claimed) >= 2
	})
	if fmt.Sprint(ids(claimed)) != fmt.Sprint(published) {
		t.Fatalf("claimed %v, want %v", ids(claimed), published)
	}
	for _, m := range claimed {
		if m.Err != nil || m.Deliveries != 2 || m.Command.Type != CmdAttach {
			t.Errorf("claimed %s: %+v, want a decoded attach delivered twice", m.ID, m)
		}
	}
	st, err := s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]int64{}
	for _, c := range st.Consumers {
		pending[c.Name] = c.Pending
	}
	if pending["dead-worker"] != 0 || pending["live-worker"] != 2 {
		t.Errorf("pending per consumer %v, want all moved to live-worker", pending)
	}

	// p1 keeps failing: each claim counts one more delivery, and after a few
	// the worker gives up on it.
	poison := claimed[0]
	claimers := []*ControlConsumer{dead, live}
	for i := 0; poison.Deliveries < 4; i++ {
		if i > 200 {
			t.Fatalf("deliveries stuck at %d", poison.Deliveries)
		}
		m, err := claimers[i%2].Claim(ctx, time.Millisecond, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range m {
			if x.ID == poison.ID {
				poison = x
			}
		}
		if len(m) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := s.DeadLetter(ctx, poison, "handler panicked"); err != nil {
		t.Fatal(err)
	}
	letters, err := s.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("dead letters %+v, want one", letters)
	}
	dl := letters[0]
	if dl.ControlID != poison.ID || dl.Reason != "handler panicked" || dl.Deliveries != fmt.Sprint(poison.Deliveries) ||
		dl.Command.User != "p1" || dl.Command.Type != CmdAttach || dl.ID == "" {
		t.Errorf("dead letter %+v, want %s of p1 after %d deliveries", dl, poison.ID, poison.Deliveries)
	}
	st, err = s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters != 1 || st.Pending != 1 {
		t.Errorf("status %+v: want 1 dead letter and only p2 pending", st)
	}

	// The dead letter is acknowledged: nobody is handed it again.
	eventually(t, "p2 claimable", func() bool {
		m, err := live.Claim(ctx, time.Millisecond, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range m {
			if x.ID == poison.ID {
				t.Fatalf("dead-lettered %s handed out again", x.ID)
			}
		}
		return len(m) == 1 && m[0].ID == published[1]
	})
	if err := s.AckControl(ctx, ControlMessage{ID: published[1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveConsumer(ctx, "dead-worker"); err != nil {
		t.Fatal(err)
	}
	st, err = s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || len(st.Consumers) != 1 || st.Consumers[0].Name != "live-worker" {
		t.Errorf("status %+v: want nothing pending and only live-worker", st)
	}
}

func TestControlUndecodableEntriesSurface(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithControlShards(1))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	raw := []map[string]any{
		{"v": "{not json"},
		{"other": "field"},
		{"v": `{"type":"explode","user":"u","game":"g"}`},
		{"v": `{"type":"attach","user":"","game":"g"}`},
	}
	for _, v := range raw {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.control(0), Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good := publishAll(t, ctx, s, attach("ok", "g"))[0]

	msgs, err := s.ControlConsumer("w").Read(ctx, 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("got %d entries, want all 5 (bad ones included)", len(msgs))
	}
	for i, m := range msgs[:4] {
		if m.Err == nil {
			t.Errorf("bad entry %d decoded without error: %+v", i, m.Command)
		}
		if err := s.DeadLetter(ctx, m, "undecodable"); err != nil {
			t.Fatal(err)
		}
	}
	if msgs[4].Err != nil || msgs[4].ID != good {
		t.Errorf("good entry: %+v", msgs[4])
	}
	all, err := s.ControlEntries(ctx, "-", "+", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[4].Err != nil || all[0].Err == nil {
		t.Errorf("ControlEntries: %+v", all)
	}
	if one, err := s.ControlEntries(ctx, good, good, 10); err != nil || len(one) != 1 || one[0].Command.User != "ok" {
		t.Errorf("ControlEntries(%s, %s) = %+v, %v", good, good, one, err)
	}
	st, err := s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters != 4 || st.Pending != 1 {
		t.Errorf("status %+v: want 4 dead letters, 1 pending", st)
	}
	// A dead letter keeps the entry as it was stored, even when nothing
	// could decode it.
	letters, err := s.DeadLetters(ctx, 10)
	if err != nil || len(letters) != 4 {
		t.Fatalf("dead letters %+v %v", letters, err)
	}
	if got := letters[2].Raw; got != `{"type":"explode","user":"u","game":"g"}` {
		t.Errorf("dead letter raw %q, want the stored entry", got)
	}
}

func TestControlWithoutGroup(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithControlShards(1))
	ctx := testContext(t)

	// Nothing exists yet: ops views must still work.
	st, err := s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 0 || st.Lag != -1 || len(st.Consumers) != 0 {
		t.Errorf("status of a missing stream: %+v", st)
	}

	// A worker reading before anyone made the group (or after Redis lost
	// it) recreates it from the start and misses nothing.
	id := publishAll(t, ctx, s, attach("early", "g"))[0]
	msgs, err := s.ControlConsumer("w").Read(ctx, 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("read %v, want the attach published before the group existed", ids(msgs))
	}

	// Redis loses the group under a running consumer.
	c := s.ControlConsumer("w2")
	if _, err := c.Read(ctx, 10, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XGroupDestroy(ctx, s.ks.control(0), GroupWorkers).Err(); err != nil {
		t.Fatal(err)
	}
	var again []ControlMessage
	for i := 0; i < 3 && len(again) == 0; i++ {
		if again, err = c.Read(ctx, 10, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if len(again) != 1 || again[0].ID != id {
		t.Fatalf("after losing the group: %v, want %s again", ids(again), id)
	}
}

func TestControlReadBlocksUntilContextDone(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, WithControlShards(1))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.ControlConsumer("w")
	if _, err := c.Read(ctx, 1, 10*time.Millisecond); err != nil { // past the pending phase
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	msgs, err := c.Read(short, 1, 0)
	if err == nil || len(msgs) != 0 {
		t.Fatalf("block 0 with an ending context: %v, %v; want an error", msgs, err)
	}
}

func TestPublishControlValidates(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	for _, c := range []Command{
		{Type: "bogus", User: "u", Game: "g"},
		{Type: CmdAttach, Game: "g"},
		{Type: CmdDetach, User: "u"},
	} {
		if _, err := s.PublishControl(ctx, c); err == nil {
			t.Errorf("PublishControl(%+v) accepted", c)
		}
	}
	if n, _ := rdb.Exists(ctx, s.ks.control(0)).Result(); n != 0 {
		t.Error("an invalid command reached the control stream")
	}
}

func TestCommandKeyAndValidate(t *testing.T) {
	t.Parallel()
	c := Command{Type: CmdResize, User: "u", Game: "g"}
	if c.Key() != (SessionKey{User: "u", Game: "g"}) || c.Key().String() != "u/g" {
		t.Errorf("Key() = %v", c.Key())
	}
	for _, typ := range []CommandType{CmdAttach, CmdDetach, CmdStop, CmdResize, CmdInput, CmdGMCP, CmdMSDP} {
		if err := (Command{Type: typ, User: "u", Game: "g"}).Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	err := Command{Type: "nope", User: "u", Game: "g"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := decodeCommand(42); err == nil {
		t.Error("decodeCommand(42) accepted")
	}
}

// Inbox.

func TestInboxSendReadDeletes(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	const worker = "w:1{x}"

	sent := []Command{
		{Type: CmdAttach, User: "u", Game: "g", Viewer: "v1", Fence: 3},
		{Type: CmdResize, User: "u", Game: "g", Cols: 120, Rows: 40, Fence: 3},
		{Type: CmdStop, User: "u", Game: "g", Reason: "operator"},
	}
	for _, c := range sent {
		if _, err := s.SendInbox(ctx, worker, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SendInbox(ctx, worker, Command{Type: CmdStop}); err == nil {
		t.Error("invalid command accepted into an inbox")
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.inbox(worker), Values: []string{"v", "garbage"}}).Err(); err != nil {
		t.Fatal(err)
	}

	got, err := s.ReadInbox(ctx, worker, "0", 10, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("read %d entries, want 4", len(got))
	}
	for i, c := range sent {
		if got[i].Err != nil || got[i].Command.Time.IsZero() {
			t.Errorf("entry %d: %+v", i, got[i])
		}
		c.Time = got[i].Command.Time
		if !commandsEqual(got[i].Command, c) {
			t.Errorf("entry %d: %+v, want %+v", i, got[i].Command, c)
		}
	}
	if got[3].Err == nil {
		t.Error("garbage entry decoded without error")
	}
	if n, err := rdb.XLen(ctx, s.ks.inbox(worker)).Result(); err != nil || n != 0 {
		t.Errorf("inbox holds %d entries after read (err %v), want 0", n, err)
	}
	if again, err := s.ReadInbox(ctx, worker, "0", 10, 20*time.Millisecond); err != nil || len(again) != 0 {
		t.Errorf("second read: %+v, %v", again, err)
	}

	// A blocked reader gets what arrives while it waits.
	done := make(chan []InboxMessage, 1)
	go func() {
		m, err := s.ReadInbox(ctx, worker, "0", 10, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	if _, err := s.SendInbox(ctx, worker, Command{Type: CmdDetach, User: "u", Game: "g"}); err != nil {
		t.Fatal(err)
	}
	if m := <-done; len(m) != 1 || m[0].Command.Type != CmdDetach {
		t.Errorf("blocked read got %+v", m)
	}

	if _, err := s.SendInbox(ctx, worker, sent[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInbox(ctx, worker); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, s.ks.inbox(worker)).Result(); n != 0 {
		t.Error("inbox still exists after DeleteInbox")
	}
}

func TestSendInput(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	// Channels are shared by all databases: a name no other test uses.
	worker := "input-" + t.Name()
	line := Command{Type: CmdInput, User: "u", Game: "g", Fence: 7, Text: "look"}

	if err := s.SendInput(ctx, worker, line); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("nobody listening: err=%v, want ErrNoReceiver", err)
	}
	if err := s.SendInput(ctx, worker, Command{Type: CmdAttach, User: "u", Game: "g"}); err == nil || errors.Is(err, ErrNoReceiver) {
		t.Errorf("attach as input: err=%v, want a type error", err)
	}
	if err := s.SendInput(ctx, worker, Command{Type: CmdInput, Game: "g"}); err == nil || errors.Is(err, ErrNoReceiver) {
		t.Errorf("input without user: err=%v, want a validation error", err)
	}

	sub := testSubscribe(ctx, rdb, s.InputChannel(worker))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription is live
		t.Fatal(err)
	}
	gmcp := Command{Type: CmdGMCP, User: "u", Game: "g", Fence: 7, Package: "Core.Ping", Data: json.RawMessage(`{"a":1}`)}
	msdp := Command{Type: CmdMSDP, User: "u", Game: "g", Fence: 7, Package: "REPORT", Data: json.RawMessage(`["HEALTH","HEALTH_MAX"]`)}
	for _, c := range []Command{line, gmcp, msdp} {
		if err := s.SendInput(ctx, worker, c); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseInput(msg.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !commandsEqual(got, c) {
			t.Errorf("received %+v, want %+v", got, c)
		}
	}
	// Input is never stored.
	if keys := namespaceKeys(t, s, rdb); len(keys) != 0 {
		t.Errorf("input left keys behind: %v", keys)
	}
}

func TestParseInputRejects(t *testing.T) {
	t.Parallel()
	for _, p := range []string{
		"",
		"{",
		`{"type":"attach","user":"u","game":"g"}`,
		`{"type":"input","user":"","game":"g"}`,
	} {
		if c, err := ParseInput(p); err == nil {
			t.Errorf("ParseInput(%q) = %+v, want an error", p, c)
		}
	}
}

// Several control streams: each (user, game) keeps to its shard, so one
// session's commands stay in order; a consumer reads, claims and
// dead-letters across every shard; the shard count is the namespace's.
func TestControlShards(t *testing.T) {
	t.Parallel()
	const shards = 4
	s, rdb := newStore(t, WithControlShards(shards))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		user := fmt.Sprint("s", i)
		publishAll(t, ctx, s, attach(user, "g"), Command{Type: CmdDetach, User: user, Game: "g", Viewer: "v-" + user})
	}
	used := map[int]bool{}
	for shard := range shards {
		if n := rdb.XLen(ctx, s.ks.control(shard)).Val(); n > 0 {
			used[shard] = true
		}
	}
	if len(used) < 3 {
		t.Errorf("20 sessions used %d of %d shards", len(used), shards)
	}

	dead := s.ControlConsumer("dead-worker")
	defer dead.Close()
	var got []ControlMessage
	for range 40 {
		if len(got) == 40 {
			break
		}
		m, err := dead.Read(ctx, 100, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m...)
	}
	if len(got) != 40 {
		t.Fatalf("read %d of 40 entries", len(got))
	}
	seen := map[string]CommandType{}
	for _, m := range got {
		if m.Shard != controlShard(m.Command.Key(), shards) {
			t.Errorf("%s came from shard %d, its key hashes to %d", m.Command.Key(), m.Shard, controlShard(m.Command.Key(), shards))
		}
		if m.Deliveries != 1 {
			t.Errorf("%s: deliveries %d, want 1", m.ID, m.Deliveries)
		}
		prev := seen[m.Command.User]
		if m.Command.Type == CmdDetach && prev != CmdAttach {
			t.Errorf("%s: detach before its attach", m.Command.User)
		}
		seen[m.Command.User] = m.Command.Type
	}
	dead.Close()

	st, err := s.ControlStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Shards) != shards || st.Pending != 40 || st.Length != 40 || st.Lag != 0 {
		t.Errorf("status: %d shards, pending %d, length %d, lag %d; want %d, 40, 40, 0", len(st.Shards), st.Pending, st.Length, st.Lag, shards)
	}
	if len(st.Consumers) != 1 || st.Consumers[0].Name != "dead-worker" || st.Consumers[0].Pending != 40 {
		t.Errorf("consumers %+v, want dead-worker once with 40 pending", st.Consumers)
	}

	// Another worker claims everything, from every shard.
	live := s.ControlConsumer("live-worker")
	defer live.Close()
	claimed, err := live.Claim(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 40 {
		t.Fatalf("claimed %d of 40", len(claimed))
	}
	for _, m := range claimed {
		if m.Deliveries != 2 {
			t.Errorf("claimed %s: deliveries %d, want 2", m.ID, m.Deliveries)
		}
	}
	poison := claimed[len(claimed)-1]
	if err := s.DeadLetter(ctx, poison, "poison"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, s.ks.deadLetters(poison.Shard)).Val(); n != 1 {
		t.Errorf("dead letters of shard %d: %d, want 1", poison.Shard, n)
	}
	letters, err := s.DeadLetters(ctx, 10)
	if err != nil || len(letters) != 1 || letters[0].ControlID != poison.ID || letters[0].Shard != poison.Shard {
		t.Errorf("DeadLetters = %+v, %v; want the poison entry of shard %d", letters, err, poison.Shard)
	}
	if err := s.AckControl(ctx, claimed[:len(claimed)-1]...); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.ControlStatus(ctx); st.Pending != 0 || st.DeadLetters != 1 {
		t.Errorf("after acks: pending %d, dead letters %d; want 0, 1", st.Pending, st.DeadLetters)
	}
	all, err := s.ControlEntriesAll(ctx, "-", "+", 1000)
	if err != nil || len(all) != 40 {
		t.Fatalf("ControlEntriesAll: %d entries, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if compareIDs(all[i-1].ID, all[i].ID) > 0 {
			t.Fatalf("entries out of order at %d: %s after %s", i, all[i].ID, all[i-1].ID)
		}
	}
	if err := s.RemoveConsumer(ctx, "dead-worker"); err != nil {
		t.Fatal(err)
	}

	// The namespace keeps its count: a component configured otherwise is
	// refused with the setting's name; one that leaves it to Trellis
	// follows the namespace.
	other := New(rdb, WithNamespace(s.Namespace()), WithControlShards(shards*2))
	_, err = other.PublishControl(ctx, attach("late", "g"))
	if !errors.Is(err, ErrControlShards) || !strings.Contains(err.Error(), "TRELLIS_REDIS_CONTROL_SHARDS=8") {
		t.Errorf("a different count: %v, want ErrControlShards naming the setting", err)
	}
	if n, err := New(rdb, WithNamespace(s.Namespace())).ControlShards(ctx); n != shards || err != nil {
		t.Errorf("default count on an existing namespace: %d, %v; want %d", n, err, shards)
	}
}

// A consumer of several shards, blocked in Read, gets an entry published
// to any shard, and its readers stop with Close.
func TestControlShardsReadBlocks(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, WithControlShards(3))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.ControlConsumer("w")
	defer c.Close()
	if m, err := c.Read(ctx, 10, 50*time.Millisecond); err != nil || len(m) != 0 {
		t.Fatalf("empty read: %v, %v", m, err)
	}
	for i := range 6 {
		user := fmt.Sprint("b", i)
		done := make(chan []ControlMessage, 1)
		go func() {
			m, _ := c.Read(ctx, 10, 0)
			done <- m
		}()
		publishAll(t, ctx, s, attach(user, "g"))
		m := <-done
		if len(m) != 1 || m[0].Command.User != user {
			t.Fatalf("round %d: read %v, want the attach of %s", i, m, user)
		}
	}
}

// ops lag -dead N shows the newest N dead letters, oldest of them first.
// (Across shards "newest" is by stream id, which ties within a millisecond:
// one shard here.)
func TestDeadLettersNewestFirstCut(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, WithControlShards(1))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 4 {
		c := attach(fmt.Sprint("dl", i), "g")
		id, err := s.PublishControl(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := s.ControlShards(ctx)
		if err := s.DeadLetter(ctx, ControlMessage{ID: id, Command: c, Shard: controlShard(c.Key(), n)}, fmt.Sprint("reason ", i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("reason ", i))
	}
	got, err := s.DeadLetters(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, l := range got {
		reasons = append(reasons, l.Reason)
	}
	if fmt.Sprint(reasons) != fmt.Sprint(want[2:]) {
		t.Errorf("DeadLetters(2) = %v, want the newest two, oldest first: %v", reasons, want[2:])
	}
}
