package worker

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

func TestOutboxCoalescesTextAndMarksPrompts(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutText, Text: "a"}, 100, 1000)
	b.push(store.Output{Kind: store.OutText, Text: "b"}, 100, 1000)
	b.markPrompt(100, 1000)
	b.push(store.Output{Kind: store.OutText, Text: "c"}, 100, 1000)
	b.push(store.Output{Kind: store.OutEcho, Echo: true}, 100, 1000)
	out, gap, more := b.take(7, "w", 100, 1<<30, nil)
	if gap != 0 || more || len(out) != 3 {
		t.Fatalf("take = %d entries, gap %d, more %v", len(out), gap, more)
	}
	if out[0].Text != "ab" || !out[0].Prompt || out[1].Text != "c" || out[1].Prompt || out[2].Kind != store.OutEcho {
		t.Fatalf("entries %+v", out)
	}
	for i, o := range out {
		if o.Seq != uint64(i+1) || o.Fence != 7 {
			t.Fatalf("entry %d seq %d fence %d", i, o.Seq, o.Fence)
		}
	}
	// A prompt mark after the text was taken becomes an empty prompt entry.
	b.written()
	b.markPrompt(100, 1000)
	out, _, _ = b.take(7, "w", 100, 1<<30, nil)
	if len(out) != 1 || !out[0].Prompt || out[0].Text != "" || out[0].Seq != 4 {
		t.Fatalf("late prompt %+v", out)
	}
}

func TestOutboxBoundedWhileRedisAwayThenGap(t *testing.T) {
	var b outbox
	const limit = 4096
	for range 100 {
		b.push(store.Output{Kind: store.OutText, Text: strings.Repeat("x", 100)}, 100, limit)
	}
	b.push(store.Output{Kind: store.OutStatus, State: "connected"}, 100, limit)
	if b.bytes > limit {
		t.Fatalf("outbox holds %d bytes, limit %d", b.bytes, limit)
	}
	// A write fails: entries come back and keep their numbers, so a retry
	// of a write Redis did apply is refused as a duplicate, not doubled.
	taken, gap, _ := b.take(1, "w", 10, 1<<30, nil)
	if gap == 0 || taken[0].Kind != store.OutGap || !strings.Contains(taken[0].Text, "bytes of output were lost") {
		t.Fatalf("first entry after loss %+v", taken[0])
	}
	firstTry := append([]store.Output(nil), taken...)
	b.giveBack(taken, limit)
	if b.seq != uint64(len(taken)) {
		t.Fatalf("seq %d after a failed write, want %d (numbers kept)", b.seq, len(taken))
	}
	// Redis is back: the gap comes first, numbers have no hole, and the
	// status survived the text being dropped.
	var all []store.Output
	for {
		out, _, more := b.take(1, "w", 10, 1<<30, nil)
		all = append(all, out...)
		b.written()
		if !more {
			break
		}
	}
	if all[0].Kind != store.OutGap {
		t.Fatalf("first entry %s, want gap", all[0].Kind)
	}
	// Entries that survived the trim keep the number of their first try.
	firstSeq := map[uint64]store.Output{}
	for _, o := range firstTry {
		firstSeq[o.Seq] = o
	}
	kept := 0
	for _, o := range all {
		if f, ok := firstSeq[o.Seq]; ok {
			kept++
			if f.Text != o.Text || f.Kind != o.Kind {
				t.Fatalf("seq %d reused for another entry: %q then %q", o.Seq, f.Text, o.Text)
			}
		}
	}
	if kept == 0 {
		t.Fatal("no retried entry kept its number")
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("entry %d has seq %d after %d: numbers must increase", i, all[i].Seq, all[i-1].Seq)
		}
	}
	if last := all[len(all)-1]; last.Kind != store.OutStatus {
		t.Fatalf("last entry %s, want the status", last.Kind)
	}
	if ch := b.drained(); ch != nil {
		t.Fatal("drained outbox still waits")
	}
}

func TestOutboxCloseWakesWaiters(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutText, Text: "x"}, 100, 1000)
	ch := b.drained()
	if ch == nil {
		t.Fatal("pending outbox reported drained")
	}
	b.close()
	<-ch
	if q, _, _ := b.push(store.Output{Kind: store.OutText, Text: "y"}, 100, 1000); q {
		t.Fatal("closed outbox accepted output")
	}
}

// Redis goes away: renewals fail, and before the TTL is out the worker
// stops its sessions itself, so a new owner can never talk to the game
// alongside it.
func TestSelfFenceWhenRedisIsAway(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	rdb := redis.NewClient(mustParseURL(srv.URL(0)))
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	st := store.New(rdb)
	game, addr, stop, err := demogame.Start(ctx, demogame.Config{Logger: slog.New(slog.DiscardHandler)}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	e := &env{t: t, ctx: ctx, rdb: rdb, st: st, game: game, logs: &lockedBuffer{}, prefix: "fence"}
	e.addGame("demo", addr)
	w := e.startWorker(testConfig())
	u := e.user("sf")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "sessions self-fenced", func() bool { return w.Sessions() == 0 && game.Conns() == 0 })
	if !w.fenced.Load() || w.Accepting() {
		t.Fatal("a fenced worker still accepts sessions")
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxRoomBackpressure(t *testing.T) {
	var b outbox
	const high = 1000
	if b.room(high) != nil {
		t.Fatal("empty outbox has no room")
	}
	for range 20 {
		b.push(store.Output{Kind: store.OutText, Text: strings.Repeat("y", 100)}, 100, 1<<20)
	}
	ch := b.room(high)
	if ch == nil {
		t.Fatal("outbox over the mark reports room")
	}
	if again := b.room(high); again != ch {
		t.Fatal("a second wait made a second channel")
	}
	// Taking a little is not enough: room comes back at half the mark.
	b.take(1, "w", 3, 1<<30, nil)
	select {
	case <-ch:
		t.Fatalf("room signalled with %d bytes pending", b.bytes)
	default:
	}
	b.take(1, "w", 100, 1<<30, nil)
	select {
	case <-ch:
	default:
		t.Fatalf("no room signalled with %d bytes pending", b.bytes)
	}
	// Closing wakes a waiting reader too.
	for range 20 {
		b.push(store.Output{Kind: store.OutText, Text: strings.Repeat("z", 100)}, 100, 1<<20)
	}
	ch = b.room(high)
	b.close()
	<-ch
}

// Text arriving after a failed write must not be merged into an entry
// that already has a number: Redis may have applied that entry, and its
// retry is then refused as a duplicate, which would lose the merged text.
func TestOutboxDoesNotCoalesceIntoNumberedEntries(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutText, Text: "one "}, 1000, 1<<20)
	taken, _, _ := b.take(1, "w", 10, 1<<30, nil)
	b.giveBack(taken, 1<<20) // the write failed, maybe after Redis applied it
	b.push(store.Output{Kind: store.OutText, Text: "two"}, 1000, 1<<20)
	b.markPrompt(1000, 1<<20)
	out, _, _ := b.take(1, "w", 10, 1<<30, nil)
	if len(out) != 2 {
		t.Fatalf("took %d entries %+v, want the retried one and a new one", len(out), out)
	}
	if out[0].Text != "one " || out[0].Seq != taken[0].Seq || out[0].Prompt {
		t.Fatalf("retried entry changed: %+v (first try %+v)", out[0], taken[0])
	}
	if out[1].Text != "two" || !out[1].Prompt || out[1].Seq <= out[0].Seq {
		t.Fatalf("new entry %+v", out[1])
	}
}

// A gap entry is numbered when it is taken. Taken while entries given back
// by a failed write still wait (the round's byte share was used up), it
// would carry a higher number than theirs, and their retry would then be
// refused as already written: lost, with no gap of their own.
func TestOutboxGapWaitsForGivenBackEntries(t *testing.T) {
	var b outbox
	for _, s := range []string{"aaaa", "bbbb", "cccc"} {
		b.push(store.Output{Kind: store.OutText, Text: s, Prompt: true}, 1000, 1<<20)
	}
	first, _, _ := b.take(1, "w", 10, 1<<30, nil)
	if len(first) != 3 {
		t.Fatalf("first take: %+v", first)
	}
	b.giveBack(first, 1<<20)
	b.lost = 100 // and some output was dropped meanwhile
	var all []store.Output
	for round := 0; round < 10 && (len(b.pending) > 0 || b.lost > 0); round++ {
		// A byte share that fits one entry a round.
		out, _, _ := b.take(1, "w", 10, entrySize(&first[0]), nil)
		b.written()
		all = append(all, out...)
	}
	var last uint64
	for i, o := range all {
		if o.Seq <= last {
			t.Fatalf("entry %d (%s %q) numbered %d after %d: its retry would be taken for a duplicate; took %+v", i, o.Kind, o.Text, o.Seq, last, all)
		}
		last = o.Seq
	}
	if len(all) != 4 || all[3].Kind != store.OutGap {
		t.Fatalf("took %+v; want the three given-back entries, then the gap", all)
	}
}

// A burst of entries that cannot coalesce (each ends at a prompt: a room
// announcing twenty arrivals) must not leave its array pinned to the session
// once written, however it was taken; the next output grows a new one.
func TestOutboxReleasesBurstArrayWhenDrained(t *testing.T) {
	var b outbox
	burst := func() {
		for range 20 {
			b.push(store.Output{Kind: store.OutText, Text: "\nSomeone arrives.\n> ", Prompt: true}, 16384, 1<<20)
		}
	}
	burst()
	// Taken in two rounds, as the flusher's share among many sessions does.
	out, _, more := b.take(1, "w", 12, 1<<30, nil)
	if len(out) != 12 || !more {
		t.Fatalf("first take: %d entries, more %v", len(out), more)
	}
	b.written()
	out, _, more = b.take(1, "w", 12, 1<<30, nil)
	if len(out) != 8 || more {
		t.Fatalf("second take: %d entries, more %v", len(out), more)
	}
	b.written()
	if c := cap(b.pending); c > idlePendingCap {
		t.Fatalf("drained outbox keeps room for %d entries (at most %d)", c, idlePendingCap)
	}
	// Drained by a take that found nothing new (queued twice).
	burst()
	out, _, _ = b.take(1, "w", 100, 1<<30, nil)
	b.written()
	if len(out) != 20 {
		t.Fatalf("third take: %d entries", len(out))
	}
	if out, _, _ = b.take(1, "w", 100, 1<<30, nil); len(out) != 0 || cap(b.pending) > idlePendingCap {
		t.Fatalf("empty take: %d entries, room for %d", len(out), cap(b.pending))
	}
	// The next output after idling is kept and numbered on.
	b.push(store.Output{Kind: store.OutText, Text: "hello"}, 16384, 1<<20)
	if out, _, _ = b.take(1, "w", 100, 1<<30, nil); len(out) != 1 || out[0].Text != "hello" || out[0].Seq != 41 {
		t.Fatalf("after idle: %+v", out)
	}
}
