package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostileIDs are user ids (they come from tokens) that try to break a key's
// structure or move it into another session's hash slot.
var hostileIDs = []string{
	"plain",
	"a:b",
	"{other}",
	"}{",
	"a}b{c",
	"100%",
	"%7B",
	"%",
	"with space",
	"tab\there",
	"new\nline",
	"ünïcödé ☃",
	"",
	"trailing%4",
}

// hashTag is the part of key Redis Cluster hashes: between the first '{'
// and the first '}' after it.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func TestKeysOfHostileUsersKeepTheirShape(t *testing.T) {
	t.Parallel()
	ks := newKeyspace(DefaultNamespace)
	seen := map[string]SessionKey{}
	for _, user := range hostileIDs {
		for _, game := range []string{"dune", "x:y"} {
			k := SessionKey{User: user, Game: game}
			tag := ks.tag(k)
			if strings.Count(tag, "{") != 1 || strings.Count(tag, "}") != 1 || !strings.HasSuffix(tag, "}") ||
				!strings.HasPrefix(tag, Prefix+"{ug:") {
				t.Errorf("tag of %q: %q has braces besides the outer ones", user, tag)
			}
			inner := hashTag(ks.lease(k))
			for _, key := range append([]string{ks.fence(k), ks.released(k), ks.OutputChannel(k)}, ks.transcript(k)...) {
				if hashTag(key) != inner {
					t.Errorf("%q: key %q hashes on %q, lease on %q", user, key, hashTag(key), inner)
				}
			}
			for _, key := range []string{ks.outMeta(k), ks.outMarks(k)} {
				if !strings.HasPrefix(key, tag+":") || strings.Count(key, "{") != 1 || strings.Count(key, "}") != 1 {
					t.Errorf("%q: key %q is not under the tag %q", user, key, tag)
				}
			}
			if strings.ContainsAny(inner, " \t\n{}") {
				t.Errorf("%q: hash tag %q carries raw separators", user, inner)
			}
			if prev, dup := seen[inner]; dup {
				t.Errorf("%v and %v share hash tag %q", prev, k, inner)
			}
			seen[inner] = k

			back, ok := parseIndexMember(k.indexMember())
			if !ok || back != k {
				t.Errorf("index member of %v reads back as %v ok=%v", k, back, ok)
			}
		}
	}
	// The classic collision: user "a:b" in game "c" against user "a" in game "b:c".
	if ks.tag((SessionKey{User: "a:b", Game: "c"})) == ks.tag((SessionKey{User: "a", Game: "b:c"})) {
		t.Error("user/game split is ambiguous")
	}
	for _, w := range []string{"w{1}", "w:1", "w 1"} {
		for _, key := range []string{ks.inbox(w), ks.InputChannel(w)} {
			if strings.Count(key, "{") != 1 || strings.Count(key, "}") != 1 {
				t.Errorf("worker %q: key %q", w, key)
			}
		}
	}
	if k := ks.mssp("a{b}"); strings.ContainsAny(k, "{}") {
		t.Errorf("mssp key %q", k)
	}
	if k := ks.edge("e:1{x}"); strings.ContainsAny(k[len(Prefix):], "{}") || strings.Count(k, ":") != 2 {
		t.Errorf("edge key %q", k)
	}
}

// Control shard n and its dead letters share a slot (DeadLetter is one
// MULTI); the shards and the index sets spread over slots; namespaces share
// no key.
func TestShardedKeysAndNamespaces(t *testing.T) {
	t.Parallel()
	ks := newKeyspace(DefaultNamespace)
	slots := map[int]bool{}
	for n := range DefaultClusterControlShards {
		if keySlot(ks.control(n)) != keySlot(ks.deadLetters(n)) {
			t.Errorf("shard %d: %s and %s hash to different slots", n, ks.control(n), ks.deadLetters(n))
		}
		slots[keySlot(ks.control(n))] = true
	}
	if len(slots) != DefaultClusterControlShards {
		t.Errorf("%d control shards use %d slots", DefaultClusterControlShards, len(slots))
	}
	idx := map[int]bool{}
	for n := range IndexShards {
		idx[keySlot(ks.sessions(n))] = true
	}
	if len(idx) != IndexShards {
		t.Errorf("%d index shards use %d slots", IndexShards, len(idx))
	}
	// Sessions spread over index shards and control shards alike.
	hits := map[int]int{}
	for i := range 1600 {
		hits[indexShard(SessionKey{User: fmt.Sprint("user-", i), Game: "dune"})]++
	}
	for n := range IndexShards {
		if hits[n] < 50 {
			t.Errorf("index shard %d got %d of 1600 sessions", n, hits[n])
		}
	}
	other := newKeyspace("staging")
	k := SessionKey{User: "u", Game: "g"}
	for _, pair := range [][2]string{
		{ks.lease(k), other.lease(k)}, {ks.control(0), other.control(0)}, {ks.games(), other.games()},
		{ks.events(), other.events()}, {ks.sessions(0), other.sessions(0)}, {ks.InputChannel("w"), other.InputChannel("w")},
	} {
		if pair[0] == pair[1] || !strings.HasPrefix(pair[1], "staging:") {
			t.Errorf("namespaces share %q / %q", pair[0], pair[1])
		}
	}
	for _, bad := range []string{"", "a:b", "x{y}", "sp ace", strings.Repeat("n", 65), "ü"} {
		if ValidNamespace(bad) == nil {
			t.Errorf("ValidNamespace(%q) = nil", bad)
		}
	}
	for _, good := range []string{"trellis", "staging-2", "t.est_1"} {
		if err := ValidNamespace(good); err != nil {
			t.Errorf("ValidNamespace(%q) = %v", good, err)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range append(hostileIDs, "\x00\x7f\xff", "%zz", "50%25") {
		e := escape(s)
		for i := 0; i < len(e); i++ {
			if needsEscape(e[i]) && e[i] != '%' {
				t.Errorf("escape(%q) = %q keeps byte %q", s, e, e[i])
			}
		}
		if got := unescape(e); got != s {
			t.Errorf("unescape(escape(%q)) = %q", s, got)
		}
	}
	if escape("plain-id_1.x") != "plain-id_1.x" {
		t.Error("a clean id was changed")
	}
	// Stray or short escapes are kept as they are.
	for _, s := range []string{"%zz", "%4", "%", "a%g1"} {
		if got := unescape(s); got != s {
			t.Errorf("unescape(%q) = %q", s, got)
		}
	}
	if _, ok := parseIndexMember("no-separator"); ok {
		t.Error("index member without ':' accepted")
	}
}

// TestHostileUsersThroughRedis runs hostile ids through the index, leases
// and output: what goes in comes out unchanged and separate.
func TestHostileUsersThroughRedis(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	for _, user := range hostileIDs {
		k := SessionKey{User: user, Game: "dune"}
		if err := s.PutSession(ctx, SessionInfo{Key: k, Worker: "w", Session: "s-" + user, State: StateConnected}); err != nil {
			t.Fatal(err)
		}
		l, err := s.AcquireLease(ctx, k, "w", "s-"+user, time.Minute)
		if err != nil {
			t.Fatalf("acquire for %q: %v", user, err)
		}
		if _, err := s.AppendOutput(ctx, k, Output{Kind: OutText, Text: user, Fence: l.Fence}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, si := range list {
		if si.Session != "s-"+si.Key.User || si.Key.Game != "dune" {
			t.Errorf("session %+v does not belong to its user", si)
		}
		got[si.Key.User] = true
	}
	for _, user := range hostileIDs {
		if !got[user] {
			t.Errorf("user %q missing from ListSessions", user)
		}
		k := SessionKey{User: user, Game: "dune"}
		l, ok, err := s.GetLease(ctx, k)
		if err != nil || !ok || l.Session != "s-"+user || l.Fence != 1 {
			t.Errorf("lease of %q: %+v ok=%v err=%v", user, l, ok, err)
		}
		out, _, err := s.ReadOutput(ctx, k, "", 10)
		if err != nil || len(out) != 1 || out[0].Text != user {
			t.Errorf("output of %q: %+v, %v", user, out, err)
		}
		if n, st := rdb.HGet(ctx, s.ks.outMeta(k), "bytes").Val(), streamStats(t, s, rdb, k); n != fmt.Sprint(st.counted) {
			t.Errorf("byte count of %q: %s, its stream counts %d", user, n, st.counted)
		}
	}
	if len(list) != len(hostileIDs) {
		t.Errorf("%d sessions listed, want %d", len(list), len(hostileIDs))
	}
}
