package store

import (
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
)

const maxStreamID = "18446744073709551615-18446744073709551615"

func TestValidStreamID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"0-0":                     true,
		"1-0":                     true,
		"1700000000000-42":        true,
		maxStreamID:               true,
		"0001-0002":               true,
		"18446744073709551616-0":  false, // ms overflows uint64
		"0-18446744073709551616":  false, // seq overflows uint64
		"":                        false,
		"0":                       false, // Redis would take it, but no stream id looks like this
		"5":                       false,
		"-":                       false,
		"1-":                      false,
		"-1":                      false,
		"1-2-3":                   false,
		"+1-0":                    false,
		"1-+0":                    false,
		" 1-0":                    false,
		"1-0 ":                    false,
		"1_0":                     false,
		"x-1":                     false,
		"+":                       false,
		"$":                       false,
		"(1-0":                    false,
		"1-0\x00":                 false,
		"١-٠":                     false, // non-ASCII digits
		"999999999999999999999-0": false,
	} {
		if got := ValidStreamID(id); got != want {
			t.Errorf("ValidStreamID(%q) = %v, want %v", id, got, want)
		}
	}
}

// backlogFixture is a stream of five entries with fixed ids, the first two
// trimmed away, so that the oldest kept entry is the third.
type backlogFixture struct {
	s    *Store
	rdb  redis.UniversalClient
	key  SessionKey
	ids  []string // all five, oldest first; ids[0] and ids[1] are gone
	kept []string
}

func newBacklogFixture(t *testing.T) backlogFixture {
	t.Helper()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "resume", Game: "g"}
	ids := []string{"1000-0", "1000-1", "2000-0", "2000-5", "3000-0"}
	for i, id := range ids {
		v := fmt.Sprintf(`{"k":"text","t":"line %d"}`, i)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.out(key), ID: id, Values: []string{"v", v}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XTrimMinID(ctx, s.ks.out(key), ids[2]).Err(); err != nil {
		t.Fatal(err)
	}
	return backlogFixture{s: s, rdb: rdb, key: key, ids: ids, kept: ids[2:]}
}

func pageIDs(p OutputPage) []string {
	var out []string
	for _, o := range p.Entries {
		out = append(out, o.ID)
	}
	return out
}

func TestReadBacklogPositions(t *testing.T) {
	t.Parallel()
	f := newBacklogFixture(t)
	ctx := testContext(t)
	newest := f.ids[4]
	for _, c := range []struct {
		name       string
		after      string
		want       []string
		gap, reset bool
	}{
		{"no position", "", f.kept, false, false},
		{"zero", "0", f.kept, false, false},
		{"zero-zero", "0-0", f.kept, false, false},
		{"a kept entry", f.ids[2], f.ids[3:], false, false},
		{"the newest entry", newest, nil, false, false},
		{"a trimmed entry", f.ids[0], f.kept, true, false},
		{"just before the oldest kept", f.ids[1], f.kept, true, false},
		{"older than anything", "0-1", f.kept, true, false},
		{"between two kept entries", "2000-1", f.ids[3:], false, false},
		{"newer than the newest", "99999999999999-0", f.kept, false, true},
		{"the largest id", maxStreamID, f.kept, false, true},
		{"largest seq of the newest ms", "3000-18446744073709551615", f.kept, false, true},
		{"just after the newest", "3000-1", f.kept, false, true},
		{"not an id", "hello", f.kept, false, true},
		{"ms overflows", "18446744073709551616-0", f.kept, false, true},
		{"no seq", "5", f.kept, false, true},
		{"negative", "-1-0", f.kept, false, true},
		{"Redis syntax", "(" + f.ids[2], f.kept, false, true},
	} {
		p, err := f.s.ReadBacklog(ctx, f.key, c.after, 100)
		if err != nil {
			t.Errorf("%s (%q): %v", c.name, c.after, err)
			continue
		}
		if fmt.Sprint(pageIDs(p)) != fmt.Sprint(c.want) || p.Gap != c.gap || p.Reset != c.reset {
			t.Errorf("%s (%q): entries %v gap=%v reset=%v; want %v gap=%v reset=%v",
				c.name, c.after, pageIDs(p), p.Gap, p.Reset, c.want, c.gap, c.reset)
		}
		// The entry at the position comes back as At exactly when the
		// stream still holds it.
		kept := slices.Contains(f.kept, c.after)
		if (p.At != nil) != kept || (p.At != nil && p.At.ID != c.after) {
			t.Errorf("%s (%q): At %+v, want the entry there: %v", c.name, c.after, p.At, kept)
		}
	}
	// count bounds the page after a kept position too (the read starts at
	// the position itself to return At).
	if p, err := f.s.ReadBacklog(ctx, f.key, f.kept[0], 1); err != nil || fmt.Sprint(pageIDs(p)) != fmt.Sprint(f.kept[1:2]) || p.At == nil {
		t.Errorf("count 1 after %q: %v At=%v, %v; want %v", f.kept[0], pageIDs(p), p.At, err, f.kept[1:2])
	}
	// count bounds the page in every case.
	for _, after := range []string{"", f.ids[0], "nonsense", maxStreamID} {
		if p, err := f.s.ReadBacklog(ctx, f.key, after, 2); err != nil || len(p.Entries) != 2 || p.Entries[0].ID != f.kept[0] {
			t.Errorf("count 2 after %q: %v, %v", after, pageIDs(p), err)
		}
	}
}

// TestReadOutputOddPositions is the bug as the edge met it, through the
// API it uses today: a resume position Redis rejects made ReadOutput fail
// (the browser got 1011 on every retry), and one newer than the stream
// returned nothing and no gap (the edge then dropped all live output as
// already sent). Both now come back as a gap with the kept backlog.
func TestReadOutputOddPositions(t *testing.T) {
	t.Parallel()
	f := newBacklogFixture(t)
	ctx := testContext(t)
	for _, after := range []string{maxStreamID, "99999999999999-0", "not-an-id", "18446744073709551616-0"} {
		got, gap, err := f.s.ReadOutput(ctx, f.key, after, 100)
		if err != nil {
			t.Errorf("ReadOutput after %q: %v", after, err)
			continue
		}
		if !gap || len(got) != len(f.kept) || got[0].ID != f.kept[0] {
			t.Errorf("ReadOutput after %q: %d entries gap=%v; want the %d kept entries and a gap", after, len(got), gap, len(f.kept))
		}
	}
}

func TestReadBacklogEmptyStream(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	gone := SessionKey{User: "expired", Game: "g"}
	for _, c := range []struct {
		after      string
		gap, reset bool
	}{
		{"", false, false},
		{"1-0", true, false},              // the transcript expired: a gap
		{"1700000000000-5", true, false},  // a position from the past
		{"99999999999999-0", false, true}, // ahead of Redis's clock: entries written from now on would sort before it
		{maxStreamID, false, true},
		{"garbage", false, true},
	} {
		p, err := s.ReadBacklog(ctx, gone, c.after, 10)
		if err != nil || len(p.Entries) != 0 || p.Gap != c.gap || p.Reset != c.reset {
			t.Errorf("empty stream after %q: %+v, %v; want gap=%v reset=%v", c.after, p, err, c.gap, c.reset)
		}
	}
}

// TestReadBacklogAtTheEndOfTheIDSpace uses explicit ids at the edges of the
// id space, where the exclusive start must be computed without overflow.
func TestReadBacklogAtTheEndOfTheIDSpace(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "edges", Game: "g"}
	ids := []string{"5-18446744073709551614", "5-18446744073709551615", "6-0", maxStreamID}
	for _, id := range ids {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.ks.out(key), ID: id, Values: []string{"v", `{"k":"text","t":"x"}`}}).Err(); err != nil {
			t.Fatalf("XADD %s: %v", id, err)
		}
	}
	for after, want := range map[string][]string{
		"5-18446744073709551614": ids[1:],
		"5-18446744073709551615": ids[2:], // seq at its largest: the next id is 6-0
		"6-0":                    ids[3:],
		maxStreamID:              nil, // the newest entry: nothing after it, and no reset
	} {
		p, err := s.ReadBacklog(ctx, key, after, 10)
		if err != nil || p.Gap || p.Reset || fmt.Sprint(pageIDs(p)) != fmt.Sprint(want) {
			t.Errorf("after %s: %v gap=%v reset=%v err=%v; want %v", after, pageIDs(p), p.Gap, p.Reset, err, want)
		}
	}
}
