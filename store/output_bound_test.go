package store

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// keptStats describes what an output stream holds.
type keptStats struct {
	entries int
	payload int64 // sum of the entries' JSON values
	counted int64 // what the byte bound counts: payload + overhead per entry
	first   string
}

func streamStats(t testing.TB, s *Store, rdb redis.UniversalClient, key SessionKey) keptStats {
	t.Helper()
	ctx := t.Context()
	var st keptStats
	start := "-"
	for {
		msgs, err := rdb.XRangeN(ctx, s.ks.out(key), start, "+", 10000).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if st.first == "" {
				st.first = m.ID
			}
			v, _ := m.Values["v"].(string)
			st.entries++
			st.payload += int64(len(v))
			st.counted += int64(len(v)) + OutputEntryOverhead
		}
		if len(msgs) < 10000 {
			return st
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// nodeSlack is how many entries with payloads of about payload bytes
// XTRIM MINID ~ may leave before its trim point: those sharing the trim
// point's stream node (stream-node-max-bytes 4096, -max-entries 100, the
// defaults).
func nodeSlack(payload int64) int64 { return min(100, 4096/payload+1) }

// writeText appends n text entries of the given text to key, batch at a
// time, and returns the id of the first.
func writeText(t testing.TB, s *Store, key SessionKey, text string, n, batch int) string {
	t.Helper()
	ctx := t.Context()
	first := ""
	for done := 0; done < n; {
		k := min(batch, n-done)
		b := make([]Append, k)
		for i := range b {
			b[i] = Append{Key: key, Out: Output{Kind: OutText, Text: text}}
		}
		res, err := s.AppendOutputs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		if first == "" {
			first = res[0].ID
		}
		done += k
	}
	return first
}

// TestOutputBoundedInBytes floods streams with large and with tiny entries:
// what is kept counts at most the bound (plus, for tiny entries, the one
// stream node XTRIM MINID ~ may leave), never much less than the bound
// minus two steps, the marks list stays short, and a resume from before the
// first kept entry is a gap.
func TestOutputBoundedInBytes(t *testing.T) {
	t.Parallel()
	const maxBytes = 64 << 10
	const step = maxBytes / 16
	for _, c := range []struct {
		name   string
		text   string
		n      int
		checks int
	}{
		{"4KiB entries", strings.Repeat("x", 4096), 600, 6},
		{"3-byte entries", "abc", 12000, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, rdb := newStore(t, WithOutputMaxBytes(maxBytes), WithOutputMaxLen(1_000_000),
				WithClock(newClock(time.UnixMilli(1_700_000_000_000)).Now))
			ctx := testContext(t)
			key := SessionKey{User: "flood", Game: "g"}
			first := ""
			for i := range c.checks {
				id := writeText(t, s, key, c.text, c.n/c.checks, 64)
				if i == 0 {
					first = id
				}
				st := streamStats(t, s, rdb, key)
				entry := st.counted / int64(st.entries) // all entries are about one size
				if hi := maxBytes + nodeSlack(entry-OutputEntryOverhead)*entry; st.counted > hi {
					t.Errorf("after %d entries: %d bytes counted in %d entries, want at most %d", (i+1)*c.n/c.checks, st.counted, st.entries, hi)
				}
				if lo := int64(maxBytes - 2*step - entry); (i+1)*c.n/c.checks*int(entry) > 2*maxBytes && st.counted < lo {
					t.Errorf("after %d entries: %d bytes counted, want at least %d", (i+1)*c.n/c.checks, st.counted, lo)
				}
				if n := rdb.LLen(ctx, s.ks.outMarks(key)).Val(); n > 18 {
					t.Errorf("%d marks kept, want at most 18", n)
				}
			}
			st := streamStats(t, s, rdb, key)
			total, _ := strconv.ParseInt(rdb.HGet(ctx, s.ks.outMeta(key), "bytes").Val(), 10, 64)
			head := strings.Fields(rdb.LIndex(ctx, s.ks.outMarks(key), 0).Val())
			if len(head) != 2 {
				t.Fatalf("oldest mark %q", head)
			}
			base, _ := strconv.ParseInt(head[1], 10, 64)
			if total-base > maxBytes || total-base > st.counted || CompareIDs(head[0], st.first) < 0 {
				t.Errorf("oldest mark %v, total %d: %d bytes past the trim point, stream counts %d from %s", head, total, total-base, st.counted, st.first)
			}
			page, err := s.ReadBacklog(ctx, key, first, 5)
			if err != nil || !page.Gap || page.Reset || len(page.Entries) != 5 || page.Entries[0].ID != st.first {
				t.Errorf("resume from the first, trimmed entry: %+v, %v; want a gap and 5 entries from %s", page, err, st.first)
			}
			if got, gap, err := s.ReadOutput(ctx, key, first, 1); err != nil || !gap || len(got) != 1 || got[0].ID != st.first {
				t.Errorf("ReadOutput from the first, trimmed entry: %v gap=%v err=%v", got, gap, err)
			}
		})
	}
}

// TestOutputBoundKeepsATricklingGame: a game that writes little keeps its
// whole transcript (up to MAXLEN): the byte bound trims nothing until it is
// reached.
func TestOutputBoundKeepsATricklingGame(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithOutputMaxBytes(64<<10))
	key := SessionKey{User: "trickle", Game: "g"}
	writeText(t, s, key, "a short line\n", 300, 50)
	if st := streamStats(t, s, rdb, key); st.entries != 300 {
		t.Errorf("kept %d of 300 small entries (%d bytes counted) under a 64 KiB bound", st.entries, st.counted)
	}
}

// TestLostGapAppliesTheByteBound: gap entries count and trim like others.
func TestLostGapAppliesTheByteBound(t *testing.T) {
	t.Parallel()
	const maxBytes = 16 << 10
	s, rdb := newStore(t, WithOutputMaxBytes(maxBytes))
	ctx := testContext(t)
	key := SessionKey{User: "gaps", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "x", Fence: l.Fence, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := s.AppendLostGap(ctx, key, l.Fence, "w1", int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	st := streamStats(t, s, rdb, key)
	entry := st.counted / int64(st.entries)
	if st.counted > maxBytes+nodeSlack(entry-OutputEntryOverhead)*entry || st.entries >= 200 {
		t.Errorf("200 gap entries under a %d-byte bound: kept %d entries, %d bytes counted", maxBytes, st.entries, st.counted)
	}
	if meta := rdb.HGet(ctx, s.ks.outMeta(key), "bytes").Val(); meta == "" || meta == "0" {
		t.Errorf("gap entries were not counted: bytes=%q", meta)
	}
}

// The byte count's keys expire exactly as the stream does: KeepTranscript,
// ExpireTranscript and RenewLeases move all of them, and a key the append
// script creates under a stream with an expiry takes the stream's.
func TestOutputBoundKeysExpireWithTheStream(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, WithOutputMaxBytes(1024)) // a mark every 64 bytes: every entry
	ctx := testContext(t)
	key := SessionKey{User: "expiry", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	write := func(seq uint64) {
		t.Helper()
		if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "some text", Fence: l.Fence, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		write(uint64(i + 1))
	}
	keys := []string{s.ks.out(key), s.ks.outMeta(key), s.ks.outMarks(key)}
	for _, k := range keys {
		if n := rdb.Exists(ctx, k).Val(); n != 1 {
			t.Fatalf("%s does not exist after 5 appends", k)
		}
	}
	ttls := func(lo, hi time.Duration, after string) {
		t.Helper()
		for _, k := range keys {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= lo || ttl > hi {
				t.Errorf("%s ttl %v after %s, want (%v, %v]", k, ttl, after, lo, hi)
			}
		}
	}
	if err := s.KeepTranscript(ctx, key, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	ttls(time.Hour, 2*time.Hour, "KeepTranscript(2h)")
	if r, err := s.RenewLeases(ctx, []Lease{l}, time.Minute, 5*time.Hour); err != nil || len(r.Lost) != 0 {
		t.Fatalf("renew: %v, %v", r, err)
	}
	ttls(4*time.Hour, 5*time.Hour, "RenewLeases(keep 5h)")
	if err := s.ExpireTranscript(ctx, key, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	ttls(20*time.Minute, 30*time.Minute, "ExpireTranscript(30m)")

	// Keys the script creates (a list emptied by trimming and pushed to
	// again, or a stream written before the byte bound existed) take the
	// stream's expiry rather than none.
	rdb.Del(ctx, s.ks.outMeta(key), s.ks.outMarks(key))
	write(6)
	write(7)
	ttls(20*time.Minute, 30*time.Minute, "re-creating the byte count under an expiring stream")
}

// TestMeasureOutputBound reports what a 1 MiB stream holds after a flood of
// 4 KiB entries and of 3-byte entries. It takes a while, so it runs only
// when TRELLIS_MEASURE_OUTPUT is set (TRELLIS_MEASURE_MINID="=" measures
// exact trimming instead of "~"):
//
//	TRELLIS_MEASURE_OUTPUT=1 go test -run TestMeasureOutputBound -v ./store/
func TestMeasureOutputBound(t *testing.T) {
	if os.Getenv("TRELLIS_MEASURE_OUTPUT") == "" {
		t.Skip("set TRELLIS_MEASURE_OUTPUT=1 to measure")
	}
	if os.Getenv("TRELLIS_MEASURE_MINID") == "=" {
		// Not parallel: no other test runs while the script is swapped.
		saved := appendScript
		appendScript = redis.NewScript(strings.Replace(outputBoundLua, "'MINID', '~'", "'MINID', '='", 1) + appendLua)
		t.Cleanup(func() { appendScript = saved })
	}
	for _, c := range []struct {
		name  string
		text  string
		bytes int
	}{
		{"100 MB of 4 KiB entries", strings.Repeat("x", 4096), 100 << 20},
		{"5 MB of 3-byte entries", "abc", 5 << 20},
		{"10 MB of 100-byte entries", strings.Repeat("x", 100), 10 << 20},
		{"10 MB of 1000-byte entries", strings.Repeat("x", 1000), 10 << 20},
		{"10 MB of 2000-byte entries", strings.Repeat("x", 2000), 10 << 20},
		{"10 MB of 3900-byte entries", strings.Repeat("x", 3900), 10 << 20},
		{"10 MB of 8 KiB entries", strings.Repeat("x", 8192), 10 << 20},
		{"10 MB of 16 KiB entries", strings.Repeat("x", 16384), 10 << 20},
	} {
		s, rdb := newStore(t)
		key := SessionKey{User: "measure", Game: "g"}
		n := c.bytes / len(c.text)
		start := time.Now()
		writeText(t, s, key, c.text, n, 1000)
		st := streamStats(t, s, rdb, key)
		mem := rdb.MemoryUsage(t.Context(), s.ks.out(key), 0).Val()
		meta := rdb.MemoryUsage(t.Context(), s.ks.outMeta(key), 0).Val() + rdb.MemoryUsage(t.Context(), s.ks.outMarks(key), 0).Val()
		text := int64(st.entries * len(c.text))
		t.Logf("%s (%d appends, %v): %d entries kept, %d payload bytes (JSON; %d of text), %d counted; MEMORY USAGE of the stream %d bytes, of outmeta+outmarks %d",
			c.name, n, time.Since(start).Round(time.Millisecond), st.entries, st.payload, text, st.counted, mem, meta)
		fmt.Fprintf(os.Stderr, "%s: entries=%d payload=%d text=%d counted=%d memory=%d meta=%d\n", c.name, st.entries, st.payload, text, st.counted, mem, meta)
	}
}
