package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestAppendLostGap(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_000)
	s, rdb := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)
	key := SessionKey{User: "lost-" + t.Name(), Game: "g"} // channels are shared by all databases

	// Never owned: no fence counter yet.
	for _, f := range []int64{-1, 0, 1} {
		if _, err := s.AppendLostGap(ctx, key, f, "w1", 10); !errors.Is(err, ErrFenceNotIssued) {
			t.Errorf("fence %d before any lease: %v, want ErrFenceNotIssued", f, err)
		}
	}
	old, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "before", Fence: old.Fence, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// w1 loses the lease; w2 takes over and writes.
	if err := rdb.Del(ctx, s.ks.lease(key)).Err(); err != nil {
		t.Fatal(err)
	}
	cur, err := s.AcquireLease(ctx, key, "w2", "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "new owner", Fence: cur.Fence, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []int64{0, -5, cur.Fence + 1} {
		_, err := s.AppendLostGap(ctx, key, f, "w1", 10)
		if !errors.Is(err, ErrFenceNotIssued) || !strings.Contains(err.Error(), "never issued") {
			t.Errorf("fence %d with the counter at %d: %v, want ErrFenceNotIssued", f, cur.Fence, err)
		}
	}

	sub := testSubscribe(ctx, rdb, s.ks.OutputChannel(key))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := s.AppendLostGap(ctx, key, old.Fence, "w1", 12345)
	if err != nil || id == "" {
		t.Fatalf("AppendLostGap with a fence once held: %q, %v", id, err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live, err := ParseOutputMessage(msg.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := Output{ID: id, Kind: OutGap, Fence: old.Fence, Worker: "w1", Time: at.UnixMilli(),
		Text: "12345 bytes of output were lost when the server holding this game lost its connection to Redis"}
	if !outputsEqual(live, want) {
		t.Errorf("published %+v, want %+v", live, want)
	}
	raw := rdb.XRange(ctx, s.ks.out(key), id, id).Val()
	if len(raw) != 1 {
		t.Fatalf("stream holds %v at %s", raw, id)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw[0].Values["v"].(string)), &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["n"]; ok {
		t.Errorf("gap entry carries a seq: %v", fields)
	}

	// The live owner's sequence is untouched: its next seq is written, its
	// repeat is still a duplicate.
	if r, _ := s.AppendOutputs(ctx, []Append{{Key: key, Out: Output{Kind: OutText, Text: "again", Fence: cur.Fence, Seq: 1}, Retry: true}}); !r[0].Duplicate {
		t.Errorf("repeat of the owner's seq 1 after a lost gap: %+v", r[0])
	}
	if r, _ := s.AppendOutputs(ctx, []Append{{Key: key, Out: Output{Kind: OutText, Text: "next", Fence: cur.Fence, Seq: 2}}}); r[0].Err != nil || r[0].Duplicate {
		t.Errorf("owner's seq 2 after a lost gap: %+v", r[0])
	}
	// The current fence may report a loss too (a worker that fenced itself
	// while still the holder on record).
	if _, err := s.AppendLostGap(ctx, key, cur.Fence, "w2", 1); err != nil {
		t.Errorf("lost gap with the current fence: %v", err)
	}
	// A retry writes a second marker: documented, and harmless.
	if _, err := s.AppendLostGap(ctx, key, old.Fence, "w1", 12345); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	got, _, err := s.ReadOutput(ctx, key, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		kinds = append(kinds, fmt.Sprintf("%s/%d", o.Kind, o.Fence))
	}
	if w := fmt.Sprintf("text/%d text/%d gap/%d text/%d gap/%d gap/%d", old.Fence, cur.Fence, old.Fence, cur.Fence, cur.Fence, old.Fence); strings.Join(kinds, " ") != w {
		t.Errorf("stream holds %v, want %s", kinds, w)
	}
	if _, err := s.AppendLostGap(ctx, key, old.Fence, "w1", -1); err == nil {
		t.Error("a negative byte count was accepted")
	}
}

// A lost gap for a transcript that no longer exists writes nothing: there is
// nothing to mark, and the stream it would create would never expire.
func TestAppendLostGapOnAnExpiredTranscript(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "gone", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.AppendLostGap(ctx, key, l.Fence, "w1", 10)
	if err != nil || id != "" {
		t.Errorf("lost gap without a stream: %q, %v", id, err)
	}
	for _, k := range []string{s.ks.out(key), s.ks.outMeta(key), s.ks.outMarks(key)} {
		if rdb.Exists(ctx, k).Val() != 0 {
			t.Errorf("%s was created", k)
		}
	}
}

func TestAppendDropsGMCPPackages(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "dropper", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	write := func(o Output) AppendResult {
		t.Helper()
		retry := o.Seq != 0 // a number given: the entry is sent again
		if o.Seq == 0 {
			seq++
			o.Seq = seq
		}
		o.Fence = l.Fence
		res, err := s.AppendOutputs(ctx, []Append{{Key: key, Out: o, Retry: retry}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		return res[0]
	}
	gmcp := func(pkg string, drop ...string) Output {
		return Output{Kind: OutGMCP, Package: pkg, Data: json.RawMessage(`{}`), DropGMCP: drop}
	}
	state := func() string {
		t.Helper()
		st, err := s.GMCPState(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var pkgs []string
		for _, o := range st {
			pkgs = append(pkgs, o.Package)
		}
		sort.Strings(pkgs)
		return strings.Join(pkgs, ",")
	}
	for _, p := range []string{"A", "B", "C", "D"} {
		write(gmcp(p))
	}
	// Any entry may carry drops; unknown packages are ignored.
	write(Output{Kind: OutText, Text: "x", DropGMCP: []string{"A", "C", "Nope"}})
	if got := state(); got != "B,D" {
		t.Errorf("after dropping A and C: %s", got)
	}
	// A duplicate (a retry of an entry already written) drops nothing.
	if r := write(Output{Kind: OutText, Text: "dup", Seq: seq, DropGMCP: []string{"B"}}); !r.Duplicate {
		t.Fatalf("repeat not a duplicate: %+v", r)
	}
	if got := state(); got != "B,D" {
		t.Errorf("after a duplicate with drops: %s", got)
	}
	// A package set and dropped by one entry is not kept; others are set
	// while others go.
	write(gmcp("E", "E", "D"))
	if got := state(); got != "B" {
		t.Errorf("after setting and dropping E, dropping D: %s", got)
	}
	// Many drops at once (the script deletes them in chunks).
	var many []string
	for i := range 250 {
		p := fmt.Sprint("P", i)
		many = append(many, p)
		write(gmcp(p))
	}
	write(Output{Kind: OutText, Text: "y", DropGMCP: many})
	if got := state(); got != "B" {
		t.Errorf("after dropping 250 packages: %s", got)
	}
	// Drops are not part of the entry.
	got, _, err := s.ReadOutput(ctx, key, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		if o.DropGMCP != nil {
			t.Errorf("entry %s carries drops %v", o.ID, o.DropGMCP)
		}
	}
}

// DropMSDP forgets MSDP variables as DropGMCP forgets GMCP packages, each
// from its own hash: one entry may carry both lists.
func TestAppendDropsMSDPVariables(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "msdpdropper", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	write := func(o Output) AppendResult {
		t.Helper()
		retry := o.Seq != 0 // a number given: the entry is sent again
		if o.Seq == 0 {
			seq++
			o.Seq = seq
		}
		o.Fence = l.Fence
		res, err := s.AppendOutputs(ctx, []Append{{Key: key, Out: o, Retry: retry}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		return res[0]
	}
	msdp := func(name string, drop ...string) Output {
		return Output{Kind: OutMSDP, Package: name, Data: json.RawMessage(`"1"`), DropMSDP: drop}
	}
	names := func(st []Output, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, o := range st {
			n = append(n, o.Package)
		}
		sort.Strings(n)
		return strings.Join(n, ",")
	}
	for _, v := range []string{"A", "B", "C", "D"} {
		write(msdp(v))
		write(Output{Kind: OutGMCP, Package: v, Data: json.RawMessage(`{}`)})
	}
	// Any entry may carry drops; each list touches only its own state.
	write(Output{Kind: OutText, Text: "x", DropGMCP: []string{"A"}, DropMSDP: []string{"B", "C", "Nope"}})
	if got := names(s.MSDPState(ctx, key)); got != "A,D" {
		t.Errorf("MSDP state after dropping B and C: %s", got)
	}
	if got := names(s.GMCPState(ctx, key)); got != "B,C,D" {
		t.Errorf("GMCP state after dropping A: %s", got)
	}
	// A duplicate drops nothing.
	if r := write(Output{Kind: OutText, Text: "dup", Seq: seq, DropMSDP: []string{"A"}}); !r.Duplicate {
		t.Fatalf("repeat not a duplicate: %+v", r)
	}
	if got := names(s.MSDPState(ctx, key)); got != "A,D" {
		t.Errorf("after a duplicate with drops: %s", got)
	}
	// A variable set and dropped by one entry is not kept.
	write(msdp("E", "E", "D"))
	if got := names(s.MSDPState(ctx, key)); got != "A" {
		t.Errorf("after setting and dropping E, dropping D: %s", got)
	}
	// Many drops of both kinds at once (deleted in chunks).
	var many, manyG []string
	for i := range 250 {
		v := fmt.Sprint("V", i)
		many = append(many, v)
		write(msdp(v))
		manyG = append(manyG, fmt.Sprint("G", i))
		write(Output{Kind: OutGMCP, Package: manyG[i], Data: json.RawMessage(`{}`)})
	}
	write(Output{Kind: OutText, Text: "y", DropGMCP: manyG, DropMSDP: many})
	if got := names(s.MSDPState(ctx, key)); got != "A" {
		t.Errorf("MSDP state after dropping 250 variables: %s", got)
	}
	if got := names(s.GMCPState(ctx, key)); got != "B,C,D" {
		t.Errorf("GMCP state after dropping 250 packages: %s", got)
	}
}
