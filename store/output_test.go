package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestAppendOutputPublishesWhatItStores(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_000)
	s, rdb := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)
	// Channels are shared by all databases: a key no other test uses.
	key := SessionKey{User: "pub-" + t.Name(), Game: "g"}

	sub := testSubscribe(ctx, rdb, s.ks.OutputChannel(key))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	out := Output{Kind: OutText, Text: "You see a \x1b[1mdoor\x1b[0m.\n", Prompt: true, Seq: 1}
	id, err := s.AppendOutput(ctx, key, out)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live, err := ParseOutputMessage(msg.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := out
	want.ID, want.Time = id, at.UnixMilli()
	if !outputsEqual(live, want) {
		t.Errorf("published %+v, want %+v", live, want)
	}

	stored, gap, err := s.ReadOutput(ctx, key, "", 10)
	if err != nil || gap {
		t.Fatalf("ReadOutput: gap=%v err=%v", gap, err)
	}
	if len(stored) != 1 || !outputsEqual(stored[0], want) {
		t.Errorf("stored %+v, want [%+v]", stored, want)
	}
	if last, err := s.LastOutputID(ctx, key); err != nil || last != id {
		t.Errorf("LastOutputID = %q, %v; want %s", last, err, id)
	}
	if r, err := s.OutputRange(ctx, key, id, id, 10); err != nil || len(r) != 1 || r[0].ID != id {
		t.Errorf("OutputRange(%s, %s) = %+v, %v", id, id, r, err)
	}
	if last, err := s.LastOutputID(ctx, SessionKey{User: "nobody", Game: "g"}); err != nil || last != "" {
		t.Errorf("LastOutputID of an empty session = %q, %v", last, err)
	}
}

func outputsEqual(a, b Output) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return a.ID == b.ID && string(ja) == string(jb)
}

func TestParseOutputMessageRejects(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "1-0", "1-0 {", "1-0 []"} {
		if o, err := ParseOutputMessage(p); err == nil {
			t.Errorf("ParseOutputMessage(%q) = %+v, want an error", p, o)
		}
	}
}

func TestAppendOutputFences(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "fenced", Game: "g"}
	text := func(fence int64) Output { return Output{Kind: OutText, Text: "x", Fence: fence} }

	// Nobody holds the lease: only an unfenced write passes.
	if _, err := s.AppendOutput(ctx, key, text(0)); err != nil {
		t.Errorf("unfenced write without a lease: %v", err)
	}
	if _, err := s.AppendOutput(ctx, key, text(5)); !errors.Is(err, ErrStaleFence) {
		t.Errorf("fenced write without a lease: err=%v, want ErrStaleFence", err)
	}

	old, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, old); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, key, "w2", "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, text(l.Fence)); err != nil {
		t.Errorf("write with the live fence: %v", err)
	}
	for _, f := range []int64{0, old.Fence, l.Fence + 1} {
		if _, err := s.AppendOutput(ctx, key, text(f)); !errors.Is(err, ErrStaleFence) {
			t.Errorf("write with fence %d while %d is live: err=%v, want ErrStaleFence", f, l.Fence, err)
		}
	}
	if err := s.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, text(l.Fence)); !errors.Is(err, ErrStaleFence) {
		t.Errorf("write after release: err=%v, want ErrStaleFence", err)
	}
	got, _, err := s.ReadOutput(ctx, key, "0", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Fence != 0 || got[1].Fence != l.Fence {
		t.Errorf("stream holds %+v, want only the two accepted writes", got)
	}
}

func TestAppendOutputsBatchAcrossSessions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	k1, k2, k3 := SessionKey{User: "a", Game: "g"}, SessionKey{User: "b", Game: "g"}, SessionKey{User: "c", Game: "g"}
	l2, err := s.AcquireLease(ctx, k2, "w", "s", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.AppendOutputs(ctx, nil); err != nil || res != nil {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
	batch := []Append{
		{Key: k1, Out: Output{Kind: OutText, Text: "a1"}},
		{Key: k2, Out: Output{Kind: OutText, Text: "b1", Fence: l2.Fence, Seq: 1}},
		{Key: k3, Out: Output{Kind: OutText, Text: "c1", Fence: 99}},
		{Key: k1, Out: Output{Kind: OutText, Text: "a2"}},
		{Key: k2, Out: Output{Kind: OutStatus, State: StateConnected, Worker: "w", Fence: l2.Fence, Seq: 2}},
	}
	res, err := s.AppendOutputs(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i == 2 {
			if !errors.Is(r.Err, ErrStaleFence) || r.ID != "" {
				t.Errorf("entry 2: %+v, want ErrStaleFence", r)
			}
			continue
		}
		if r.Err != nil || r.ID == "" {
			t.Errorf("entry %d: %+v", i, r)
		}
	}
	check := func(k SessionKey, want ...string) {
		t.Helper()
		got, _, err := s.ReadOutput(ctx, k, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, o := range got {
			texts = append(texts, o.Text+o.State)
		}
		if fmt.Sprint(texts) != fmt.Sprint(want) {
			t.Errorf("%s holds %v, want %v", k, texts, want)
		}
	}
	check(k1, "a1", "a2")
	check(k2, "b1", StateConnected)
	check(k3)
	if CompareIDs(res[0].ID, res[3].ID) >= 0 {
		t.Errorf("ids %s, %s out of order", res[0].ID, res[3].ID)
	}
}

func TestGMCPStateKeepsTheLastPerPackage(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "gmcp", Game: "g"}
	gmcp := func(pkg, data string) Output {
		return Output{Kind: OutGMCP, Package: pkg, Data: json.RawMessage(data)}
	}
	var lastVitals, room string
	for i, o := range []Output{
		gmcp("Char.Vitals", `{"hp":1}`),
		gmcp("Room.Info", `{"num":7}`),
		gmcp("Char.Vitals", `{"hp":2}`),
		{Kind: OutText, Package: "Not.GMCP", Text: "text entries never enter the state"},
	} {
		id, err := s.AppendOutput(ctx, key, o)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			room = id
		case 2:
			lastVitals = id
		}
	}
	state, err := s.GMCPState(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range state {
		got[o.Package] = o.ID + " " + string(o.Data)
	}
	want := map[string]string{"Char.Vitals": lastVitals + ` {"hp":2}`, "Room.Info": room + ` {"num":7}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GMCP state %v, want %v", got, want)
	}
}

// MSDP variables are kept in a hash of their own: a GMCP package and an
// MSDP variable of the same name do not replace each other, and each state
// holds only its own kind.
func TestMSDPStateKeepsTheLastPerVariable(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "msdp", Game: "g"}
	msdp := func(name, val string) Output {
		return Output{Kind: OutMSDP, Package: name, Data: json.RawMessage(val)}
	}
	ids := map[int]string{}
	for i, o := range []Output{
		msdp("HEALTH", `"90"`),
		msdp("ROOM", `{"VNUM":"6008"}`),
		{Kind: OutGMCP, Package: "HEALTH", Data: json.RawMessage(`{"gmcp":1}`)},
		msdp("HEALTH", `"95"`),
		{Kind: OutText, Package: "HEALTH", Text: "text entries never enter the state"},
	} {
		id, err := s.AppendOutput(ctx, key, o)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	state, err := s.MSDPState(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range state {
		if o.Kind != OutMSDP {
			t.Errorf("MSDP state entry %s has kind %q", o.ID, o.Kind)
		}
		got[o.Package] = o.ID + " " + string(o.Data)
	}
	want := map[string]string{"HEALTH": ids[3] + ` "95"`, "ROOM": ids[1] + ` {"VNUM":"6008"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MSDP state %v, want %v", got, want)
	}
	gm, err := s.GMCPState(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(gm) != 1 || gm[0].ID != ids[2] || gm[0].Kind != OutGMCP {
		t.Errorf("GMCP state %+v, want only entry %s", gm, ids[2])
	}
}

func TestTranscriptExpiry(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "ended", Game: "g"}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutGMCP, Package: "Char", Data: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutMSDP, Package: "HEALTH", Data: json.RawMessage(`"1"`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepTranscript(ctx, key, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.ks.msdp(key)).Val(); ttl <= 47*time.Hour || ttl > 48*time.Hour {
		t.Errorf("msdp state ttl %v after KeepTranscript(48h)", ttl)
	}
	if err := s.ExpireTranscript(ctx, key, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.ks.out(key)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("transcript ttl %v after ExpireTranscript(1h)", ttl)
	}
	if st, err := s.GMCPState(ctx, key); err != nil || len(st) != 0 {
		t.Errorf("GMCP state of an ended session: %v, %v", st, err)
	}
	if st, err := s.MSDPState(ctx, key); err != nil || len(st) != 0 {
		t.Errorf("MSDP state of an ended session: %v, %v", st, err)
	}
	if err := s.KeepTranscript(ctx, key, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.ks.out(key)).Val(); ttl <= 47*time.Hour || ttl > 48*time.Hour {
		t.Errorf("transcript ttl %v after KeepTranscript(48h)", ttl)
	}
	// Both are harmless on a session that never wrote anything.
	none := SessionKey{User: "never", Game: "g"}
	if err := s.KeepTranscript(ctx, none, time.Hour); err != nil {
		t.Error(err)
	}
	if err := s.ExpireTranscript(ctx, none, time.Minute); err != nil {
		t.Error(err)
	}
}

func TestReadOutputTrimmingAndGaps(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithOutputMaxLen(10))
	ctx := testContext(t)
	key := SessionKey{User: "chatty", Game: "g"}

	// MAXLEN ~ trims only whole stream nodes (100 entries by default), so
	// write enough that several nodes fill up and go.
	const n = 600
	batch := make([]Append, n)
	for i := range batch {
		batch[i] = Append{Key: key, Out: Output{Kind: OutText, Text: fmt.Sprint("line ", i), Seq: uint64(i + 1)}}
	}
	res, err := s.AppendOutputs(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	length := rdb.XLen(ctx, s.ks.out(key)).Val()
	if length >= n || length < 10 {
		t.Fatalf("stream kept %d of %d entries with max length 10", length, n)
	}
	kept, gap, err := s.ReadOutput(ctx, key, "0", n)
	if err != nil || gap {
		t.Fatalf("read from the start: gap=%v err=%v", gap, err)
	}
	if int64(len(kept)) != length || kept[len(kept)-1].ID != res[n-1].ID {
		t.Fatalf("read %d entries ending %s, want %d ending %s", len(kept), kept[len(kept)-1].ID, length, res[n-1].ID)
	}

	// Resuming from an entry long trimmed: the reader must be told.
	got, gap, err := s.ReadOutput(ctx, key, res[0].ID, 5)
	if err != nil || !gap {
		t.Errorf("resume from a trimmed id: gap=%v err=%v, want a gap", gap, err)
	}
	if len(got) != 5 || got[0].ID != kept[0].ID {
		t.Errorf("resume from a trimmed id returned %d entries from %v, want 5 from %s", len(got), got, kept[0].ID)
	}
	// Resuming from a kept entry: no gap, exactly what followed it.
	got, gap, err = s.ReadOutput(ctx, key, kept[len(kept)-3].ID, 10)
	if err != nil || gap {
		t.Errorf("resume from a kept id: gap=%v err=%v", gap, err)
	}
	if len(got) != 2 || got[1].ID != res[n-1].ID || got[1].Seq != n {
		t.Errorf("resume from a kept id returned %+v, want the last 2", got)
	}
	if got, gap, err := s.ReadOutput(ctx, key, res[n-1].ID, 10); err != nil || gap || len(got) != 0 {
		t.Errorf("resume from the newest id: %v gap=%v err=%v", got, gap, err)
	}

	// A transcript that expired entirely is a gap too.
	if got, gap, err := s.ReadOutput(ctx, SessionKey{User: "gone", Game: "g"}, "1-0", 10); err != nil || !gap || len(got) != 0 {
		t.Errorf("resume on a vanished stream: %v gap=%v err=%v", got, gap, err)
	}
}

func TestReadOutputSkipsUndecodableEntries(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "bad", Game: "g"}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.out(key), Values: []string{"v", "{broken"}}).Err(); err != nil {
		t.Fatal(err)
	}
	id, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.ReadOutput(ctx, key, "", 10); err != nil || len(got) != 1 || got[0].ID != id {
		t.Errorf("ReadOutput = %+v, %v; want only %s", got, err, id)
	}
	if got, err := s.OutputRange(ctx, key, "-", "+", 10); err != nil || len(got) != 1 || got[0].ID != id {
		t.Errorf("OutputRange = %+v, %v; want only %s", got, err, id)
	}
}

func TestCompareIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"1-0", "1-1", -1},
		{"2-0", "1-9", 1},
		{"9-0", "10-0", -1}, // numeric, not lexical
		{"10-2", "10-10", -1},
		{"5", "5-0", 0},
		{"x-1", "0-0", 0}, // garbage orders as 0-0
	} {
		if got := CompareIDs(c.a, c.b); got != c.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func BenchmarkAppendOutputs64(b *testing.B) {
	s := New(redistestClient(b), WithOutputMaxLen(1000))
	ctx := b.Context()
	batch := make([]Append, 64)
	for i := range batch {
		batch[i] = Append{Key: SessionKey{User: fmt.Sprint("bench", i), Game: "g"}, Out: Output{Kind: OutText, Text: "0123456789abcdef 0123456789abcdef 0123456789abcdef"}}
	}
	for b.Loop() {
		if _, err := s.AppendOutputs(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendRefusesRepeatedSeq(t *testing.T) {
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "dup", Game: "demo"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	write := func(seq uint64, text string, retry bool) AppendResult {
		t.Helper()
		res, err := s.AppendOutputs(ctx, []Append{{Key: key, Out: Output{Kind: OutText, Text: text, Fence: l.Fence, Seq: seq}, Retry: retry}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	if r := write(1, "one", false); r.Err != nil || r.Duplicate || r.ID == "" {
		t.Fatalf("first write: %+v", r)
	}
	if r := write(2, "two", false); r.Err != nil || r.Duplicate {
		t.Fatalf("second write: %+v", r)
	}
	// A retry of a write whose reply was lost, and an older one.
	for _, seq := range []uint64{2, 1} {
		if r := write(seq, "again", true); r.Err != nil || !r.Duplicate || r.ID != "" {
			t.Fatalf("repeat of seq %d: %+v, want duplicate", seq, r)
		}
	}
	if r := write(3, "three", false); r.Err != nil || r.Duplicate {
		t.Fatalf("third write: %+v", r)
	}
	got, _, err := s.ReadOutput(ctx, key, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, o := range got {
		texts = append(texts, o.Text)
	}
	if strings.Join(texts, ",") != "one,two,three" {
		t.Fatalf("stream holds %q, want one,two,three", texts)
	}
	// A new holder (new fence) numbers from 1 again.
	if err := s.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if l, err = s.AcquireLease(ctx, key, "w2", "s2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := write(1, "new fence", true); r.Err != nil || r.Duplicate {
		t.Fatalf("first write of a new fence: %+v", r)
	}
}

// A run of one session's entries is one script call: one message on the
// channel, a line per entry, which RelayMessages takes apart in order
// (JSON the game sent with newlines in it included: the stored JSON is
// compact). A stale fence refuses the whole run, and a run stops at the
// next session's entries and at a change of fence.
func TestAppendRunIsOneMessage(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "run-" + t.Name(), Game: "g"}
	other := SessionKey{User: "run-other-" + t.Name(), Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sub := testSubscribe(ctx, rdb, s.ks.OutputChannel(key))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	batch := []Append{
		{Key: key, Out: Output{Kind: OutInput, Text: "look", Fence: l.Fence, Seq: 1, Viewer: "v", InputSeq: 3}},
		{Key: key, Out: Output{Kind: OutText, Text: "A room.\nExits: north\n", Fence: l.Fence, Seq: 2}},
		{Key: key, Out: Output{Kind: OutGMCP, Package: "Room.Info", Data: json.RawMessage("{\n  \"name\": \"A room\"\n}"), Fence: l.Fence, Seq: 3}},
		{Key: key, Out: Output{Kind: OutText, Text: "> ", Prompt: true, Fence: l.Fence, Seq: 4}},
		{Key: other, Out: Output{Kind: OutText, Text: "unfenced, nobody holds it"}},
		{Key: key, Out: Output{Kind: OutText, Text: "stale", Fence: l.Fence + 1, Seq: 1}},
		{Key: key, Out: Output{Kind: OutText, Text: "stale too", Fence: l.Fence + 1, Seq: 2}},
	}
	res, err := s.AppendOutputs(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:5] {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
	for i, r := range res[5:] {
		if !errors.Is(r.Err, ErrStaleFence) || r.ID != "" {
			t.Errorf("entry %d of a stale fence: %+v, want ErrStaleFence", 5+i, r)
		}
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []Output
	for o, err := range RelayMessages(msg.Payload) {
		if err != nil {
			t.Fatalf("%v in %q", err, msg.Payload)
		}
		got = append(got, o)
	}
	if len(got) != 4 {
		t.Fatalf("one message of %d entries, want 4: %q", len(got), msg.Payload)
	}
	for i, o := range got {
		if o.ID != res[i].ID || o.Kind != batch[i].Out.Kind || o.Seq != batch[i].Out.Seq {
			t.Errorf("entry %d relayed as %+v, want id %s kind %s seq %d", i, o, res[i].ID, batch[i].Out.Kind, batch[i].Out.Seq)
		}
	}
	if got[1].PlainText() != "A room.\nExits: north\n" || string(got[2].Data) != `{"name":"A room"}` {
		t.Errorf("relayed text %q, data %s", got[1].PlainText(), got[2].Data)
	}
	stored, _, err := s.ReadOutput(ctx, key, "", 100)
	if err != nil || len(stored) != 4 {
		t.Fatalf("stream holds %d entries (%v), want the 4 of the live fence", len(stored), err)
	}
	if st, err := s.GMCPState(ctx, key); err != nil || len(st) != 1 || st[0].ID != res[2].ID {
		t.Errorf("GMCP state %+v, %v; want Room.Info at %s", st, err, res[2].ID)
	}
	// Nothing else was published on the channel: the stale run wrote nothing.
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "last", Fence: l.Fence, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.ReceiveMessage(ctx); err != nil || strings.Count(msg.Payload, "\n") != 0 || !strings.Contains(msg.Payload, `"t":"last"`) {
		t.Errorf("next message %q, %v; want the one entry written after", msg.Payload, err)
	}
}

// RelayMessages yields every entry of a message, an undecodable one as an
// error, and stops when asked.
func TestRelayMessagesSplitsLines(t *testing.T) {
	t.Parallel()
	payload := `1-1 {"k":"text","t":"a"}` + "\n" + `oops` + "\n" + `1-2 {"k":"text","t":"b\nc"}` + "\n" + `1-3 {bad`
	var ids, errs []string
	for o, err := range RelayMessages(payload) {
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		ids = append(ids, o.ID+"="+o.PlainText())
	}
	if fmt.Sprint(ids) != "[1-1=a 1-2=b\nc]" || len(errs) != 2 {
		t.Errorf("decoded %q, errors %q", ids, errs)
	}
	n := 0
	for range RelayMessages(payload) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("went on after break: %d", n)
	}
}
