package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// De-duplication is paid by retries only (see output.go). These tests make
// the rounds whose outcome is unknown for real: a proxy between the store
// and Redis lets the commands through and loses the replies.

// streamTexts is the text of every entry of key's stream, oldest first.
func streamTexts(t *testing.T, s *Store, key SessionKey) []string {
	t.Helper()
	got, err := s.OutputRange(testContext(t), key, "-", "+", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, o := range got {
		texts = append(texts, o.Text)
	}
	return texts
}

func textBatch(key SessionKey, fence int64, retry bool, seqs ...uint64) []Append {
	var b []Append
	for _, n := range seqs {
		b = append(b, Append{Key: key, Out: Output{Kind: OutText, Text: fmt.Sprintf("line %d", n), Fence: fence, Seq: n}, Retry: retry})
	}
	return b
}

// A round trip whose replies are lost after Redis applied it, then the
// caller's retry (Append.Retry, as the worker's flusher sends it), with
// new entries behind the retried ones: every entry is in the stream once.
func TestRetryAfterLostReplyIsNotWrittenTwice(t *testing.T) {
	// The proxied store's client is on database 0 of the shared server:
	// it is also the one that reads back.
	st, proxy, _ := proxiedStore(t)
	ctx := testContext(t)
	admin := st
	keyA := SessionKey{User: "lostreply-a", Game: "g"}
	keyB := SessionKey{User: "lostreply-b", Game: "g"}
	la, err := admin.AcquireLease(ctx, keyA, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := admin.AcquireLease(ctx, keyB, "w1", "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Warm the pool and the script cache, then lose the replies of the
	// connection: the next round reaches Redis and nothing comes back.
	if _, err := st.AppendOutputs(ctx, textBatch(keyA, la.Fence, false, 1)); err != nil {
		t.Fatal(err)
	}
	proxy.hold(false, true)
	lost, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	first := append(textBatch(keyA, la.Fence, false, 2, 3), textBatch(keyB, lb.Fence, false, 1, 2)...)
	if _, err := st.AppendOutputs(lost, first); err == nil {
		t.Fatal("the round with its replies held came back without an error")
	}
	cancel()
	proxy.hold(false, false)
	eventually(t, "the round reached Redis", func() bool {
		return len(streamTexts(t, admin, keyB)) == 2
	})

	// The retry: what was sent goes again, marked, and entries numbered
	// since go behind it unmarked.
	retry := append(textBatch(keyA, la.Fence, true, 2, 3), textBatch(keyA, la.Fence, false, 4)...)
	retry = append(retry, textBatch(keyB, lb.Fence, true, 1, 2)...)
	res, err := st.AppendOutputs(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		wantDup := retry[i].Retry
		if r.Err != nil || r.Duplicate != wantDup || (r.ID == "") != wantDup {
			t.Errorf("retry item %d (%s seq %d): %+v, want duplicate %v", i, retry[i].Key.User, retry[i].Out.Seq, r, wantDup)
		}
	}
	if got := strings.Join(streamTexts(t, admin, keyA), ","); got != "line 1,line 2,line 3,line 4" {
		t.Errorf("stream A holds %s, want each line once", got)
	}
	if got := strings.Join(streamTexts(t, admin, keyB), ","); got != "line 1,line 2" {
		t.Errorf("stream B holds %s, want each line once", got)
	}
}

// go-redis sends a pipeline again on its own when the connection breaks
// with the replies unread (MaxRetries): the store marks that second send a
// retry, so it is acknowledged as written instead of being written twice.
func TestClientResendIsARetry(t *testing.T) {
	// The proxied store's client is on database 0 of the shared server:
	// it is also the one that reads back.
	st, proxy, _ := proxiedStore(t)
	ctx := testContext(t)
	admin := st
	key := SessionKey{User: "resend", Game: "g"}
	l, err := admin.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendOutputs(ctx, textBatch(key, l.Fence, false, 1)); err != nil {
		t.Fatal(err)
	}
	before := proxy.accepted.Load()
	proxy.cutReplies()
	res, err := st.AppendOutputs(ctx, textBatch(key, l.Fence, false, 2, 3))
	if err != nil {
		t.Fatalf("the round was not sent again: %v", err)
	}
	if proxy.accepted.Load() == before {
		t.Fatal("no second connection: the client did not send the round again")
	}
	for i, r := range res {
		if r.Err != nil || !r.Duplicate {
			t.Errorf("item %d after the client's own re-send: %+v, want duplicate (written by the first send)", i, r)
		}
	}
	if got := strings.Join(streamTexts(t, admin, key), ","); got != "line 1,line 2,line 3" {
		t.Errorf("stream holds %s, want each line once", got)
	}
}

// What a retry finds in the stream's tail between its first attempt and
// itself: unnumbered entries of other writers, trimming, and a lease Redis
// forgot and the owner restored.
func TestRetryReadsTheStreamTail(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithOutputMaxBytes(minOutputMaxBytes))
	ctx := testContext(t)
	key := SessionKey{User: "tail", Game: "g"}
	old, err := s.AcquireLease(ctx, key, "w0", "s0", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// An older fence numbered higher than anything the live one will.
	if _, err := s.AppendOutputs(ctx, textBatch(key, old.Fence, false, 50, 51)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, s.ks.lease(key)).Err(); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	write := func(what string, a Append, wantDup bool) {
		t.Helper()
		res, err := s.AppendOutputs(ctx, []Append{a})
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; r.Err != nil || r.Duplicate != wantDup {
			t.Fatalf("%s: %+v, want duplicate %v", what, r, wantDup)
		}
	}
	// Nothing of this fence yet: the older fence's entries say nothing.
	write("retry of a number never written", textBatch(key, l.Fence, true, 1)[0], false)
	write("retry of the same number", textBatch(key, l.Fence, true, 1)[0], true)

	// Gap entries of writers that lost the lease come after, unnumbered.
	for range 20 {
		if _, err := s.AppendLostGap(ctx, key, old.Fence, "w0", 10); err != nil {
			t.Fatal(err)
		}
	}
	write("retry behind 20 gap entries", textBatch(key, l.Fence, true, 1)[0], true)
	write("next number, first attempt", textBatch(key, l.Fence, false, 2)[0], false)

	// The byte bound trims the oldest entries away: a retry of one of them
	// is still known written, by the newer numbers kept.
	big := strings.Repeat("x", 4000)
	for n := uint64(3); n < 40; n++ {
		write("filler", Append{Key: key, Out: Output{Kind: OutText, Text: big, Fence: l.Fence, Seq: n}}, false)
	}
	oldest, err := s.OutputRange(ctx, key, "-", "+", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(oldest) == 0 || oldest[0].Seq <= 2 {
		t.Fatalf("oldest entry kept %+v: the byte bound did not trim seq 1 and 2", oldest)
	}
	write("retry of a trimmed entry", textBatch(key, l.Fence, true, 2)[0], true)

	// Redis forgets the lease (a failover that lost writes); the owner's
	// renewal restores it. The numbers written are in the stream, not in
	// the lease, so a retry across the restore is still a duplicate.
	if err := rdb.Del(ctx, s.ks.lease(key)).Err(); err != nil {
		t.Fatal(err)
	}
	if restored, err := s.RenewLease(ctx, l, time.Minute); err != nil || !restored {
		t.Fatalf("restore: %v, %v", restored, err)
	}
	write("retry across a lease restore", textBatch(key, l.Fence, true, 39)[0], true)
	write("first attempt after the restore", textBatch(key, l.Fence, false, 40)[0], false)
}

// The script finds a stored entry's fence and number at the start of its
// JSON; this pins the order encoding/json writes them in.
func TestOutputPayloadStartsWithFenceAndSeq(t *testing.T) {
	for _, k := range []OutputKind{OutText, OutInput, OutGMCP, OutMSDP, OutEcho, OutStatus, OutGap} {
		b, err := json.Marshal(Output{Kind: k, Fence: 12, Seq: 345, Text: `"f":1,"n":999`, State: "x", Time: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"k":"` + string(k) + `","f":12,"n":345,`
		if !strings.HasPrefix(string(b), want) {
			t.Errorf("%s entry encodes as %s, want it to start %s", k, b, want)
		}
		if strings.Trim(string(k), "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("kind %q: the script matches letters only", k)
		}
	}
}

// commandStats is INFO commandstats: calls by command name.
func commandStats(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(testContext(t), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "config|resetstat" {
			continue // the measurement's own
		}
		out[name] = n
	}
	return out
}

// The commands appends cost, counted by Redis itself (commands a script
// runs count): a first attempt reads the fence and nothing else of
// de-duplication; only a retry reads the stream's tail; a run of one
// session's entries reads the fence, adds to the byte count and publishes
// once, and every entry costs one XADD more.
func TestAppendCommandCost(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	s := New(srv.Client(t))
	admin := srv.Client(t)
	ctx := testContext(t)
	key := SessionKey{User: "cost", Game: "g"}
	other := SessionKey{User: "cost-other", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := s.AcquireLease(ctx, other, "w1", "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The first entries load the script and start the byte bound's marks.
	if _, err := s.AppendOutputs(ctx, append(textBatch(key, l.Fence, false, 1), textBatch(other, lo.Fence, false, 1)...)); err != nil {
		t.Fatal(err)
	}
	measure := func(what string, batch []Append, want map[string]int) {
		t.Helper()
		if err := admin.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		res, err := s.AppendOutputs(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("%s: entry %d: %v", what, i, r.Err)
			}
		}
		got := commandStats(t, admin)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s ran %v, want %v", what, got, want)
		}
	}
	measure("a first attempt", textBatch(key, l.Fence, false, 2),
		map[string]int{"evalsha": 1, "hget": 1, "xadd": 1, "hincrby": 1, "publish": 1})
	measure("a retry of a written entry", textBatch(key, l.Fence, true, 2),
		map[string]int{"evalsha": 1, "hget": 1, "xrevrange": 1})
	measure("a retry of an entry not written", textBatch(key, l.Fence, true, 3),
		map[string]int{"evalsha": 1, "hget": 1, "xrevrange": 1, "xadd": 1, "hincrby": 1, "publish": 1})
	// A typed line's record and the game's answer, and a neighbour's line,
	// in one flush: one call per session.
	record := Append{Key: key, Out: Output{Kind: OutInput, Text: "look", Fence: l.Fence, Seq: 4, Viewer: "v1", InputSeq: 9}}
	measure("two sessions' runs", append(append([]Append{record}, textBatch(key, l.Fence, false, 5, 6)...), textBatch(other, lo.Fence, false, 2)...),
		map[string]int{"evalsha": 2, "hget": 2, "xadd": 4, "hincrby": 2, "publish": 2})
	measure("a retried run, half of it written", textBatch(key, l.Fence, true, 5, 6, 7, 8),
		map[string]int{"evalsha": 1, "hget": 1, "xrevrange": 1, "xadd": 2, "hincrby": 1, "publish": 1})
	if got, want := strings.Join(streamTexts(t, s, key), ","), "line 1,line 2,line 3,look,line 5,line 6,line 7,line 8"; got != want {
		t.Errorf("stream holds %s, want %s", got, want)
	}
}
