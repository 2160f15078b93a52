package store

import (
	"strconv"
	"strings"
)

// Prefix starts every key Trellis owns under the default namespace, so one
// Redis can be shared and ops can SCAN for exactly Trellis's keys.
const Prefix = DefaultNamespace + ":"

// DefaultNamespace is the first part of every key and channel name unless
// TRELLIS_REDIS_NAMESPACE says otherwise. Several Trellis installations
// (staging beside production on one managed cluster, or each test of a
// suite sharing one local cluster, where there is only database 0) keep
// apart by namespace.
const DefaultNamespace = "trellis"

// GroupWorkers is the consumer group of the control streams.
const GroupWorkers = "workers"

// SessionKey names one (user, game) pair. It is the unit of ownership: one
// lease, one game connection, one output stream.
type SessionKey struct {
	User string
	Game string
}

func (k SessionKey) String() string { return k.User + "/" + k.Game }

// indexMember is the member of the session index set for k.
func (k SessionKey) indexMember() string { return escape(k.User) + ":" + escape(k.Game) }

func parseIndexMember(m string) (SessionKey, bool) {
	u, g, ok := strings.Cut(m, ":")
	if !ok {
		return SessionKey{}, false
	}
	return SessionKey{User: unescape(u), Game: unescape(g)}, true
}

// keyspace names every key and channel of one namespace. It is the only
// place key names are spelled; docs/ARCHITECTURE.md's schema table lists
// them with their slots.
type keyspace struct {
	p string // namespace + ":"
}

func newKeyspace(ns string) keyspace { return keyspace{p: ns + ":"} }

// tag is the hash tag shared by all keys of a session, so that scripts may
// touch several of them on Redis Cluster.
func (ks keyspace) tag(k SessionKey) string {
	return ks.p + "{ug:" + escape(k.User) + ":" + escape(k.Game) + "}"
}

func (ks keyspace) lease(k SessionKey) string { return ks.tag(k) + ":lease" }
func (ks keyspace) fence(k SessionKey) string { return ks.tag(k) + ":fence" }

// released records the fence of the session's last lease release, so a
// renewal in flight cannot bring a released lease back (lua/renew.lua).
func (ks keyspace) released(k SessionKey) string { return ks.tag(k) + ":released" }

func (ks keyspace) out(k SessionKey) string     { return ks.tag(k) + ":out" }
func (ks keyspace) gmcp(k SessionKey) string    { return ks.tag(k) + ":gmcp" }
func (ks keyspace) msdp(k SessionKey) string    { return ks.tag(k) + ":msdp" }
func (ks keyspace) session(k SessionKey) string { return ks.tag(k) + ":session" }

// outMeta and outMarks hold the byte bound of the output stream (see
// lua/output_bound.lua); they live and expire with the stream.
func (ks keyspace) outMeta(k SessionKey) string  { return ks.tag(k) + ":outmeta" }
func (ks keyspace) outMarks(k SessionKey) string { return ks.tag(k) + ":outmarks" }

// transcript lists the keys of a session that a lease renewal keeps for
// the transcript TTL: the output stream with its byte count, the GMCP and
// MSDP state and the session record.
func (ks keyspace) transcript(k SessionKey) []string {
	return []string{ks.out(k), ks.outMeta(k), ks.outMarks(k), ks.gmcp(k), ks.msdp(k), ks.session(k)}
}

// OutputChannel is the pub/sub channel carrying the session's live output.
// It has the same name as the output stream (channels and keys do not share
// a namespace), so it hashes to the same slot for sharded pub/sub.
func (ks keyspace) OutputChannel(k SessionKey) string { return ks.out(k) }

// InputChannel is the pub/sub channel on which a worker receives player
// input, in the slot of the worker's inbox.
func (ks keyspace) InputChannel(worker string) string {
	return ks.p + "{w:" + escape(worker) + "}:input"
}

func (ks keyspace) inbox(worker string) string { return ks.p + "{w:" + escape(worker) + "}:inbox" }
func (ks keyspace) mssp(game string) string    { return ks.p + "game:" + escape(game) + ":mssp" }
func (ks keyspace) edge(edge string) string    { return ks.p + "edge:" + escape(edge) }
func (ks keyspace) games() string              { return ks.p + "games" }
func (ks keyspace) events() string             { return ks.p + "events" }

// userSettings holds one signed-in player's client settings (see
// settings.go): one key, so one slot.
func (ks keyspace) userSettings(user string) string {
	return ks.p + "user:" + escape(user) + ":settings"
}

// sessions is the session index. It is not one set but IndexShards sets
// with hash tags of their own, so the index of a large portal spreads over
// a cluster's primaries instead of making one node hot; a session's member
// lives in the shard its (user, game) hashes to.
func (ks keyspace) sessions(shard int) string {
	return ks.p + "{idx:" + strconv.Itoa(shard) + "}:sessions"
}

// IndexShards is the number of session index sets. Fixed: readers list
// every shard, so it can change only between releases that migrate it.
const IndexShards = 16

func indexShard(k SessionKey) int { return int(fnv32(k.indexMember()) % IndexShards) }

// control is control stream n of the namespace. The shard number is the
// hash tag, so each stream and its dead letters share a slot (the
// dead-letter write is one MULTI) while the streams spread over the
// cluster.
func (ks keyspace) control(shard int) string     { return ks.p + "ctl:{" + strconv.Itoa(shard) + "}" }
func (ks keyspace) deadLetters(shard int) string { return ks.control(shard) + ":dead" }

// controlShards holds the namespace's number of control shards, written
// once by the first component to start (SET NX) and read by every other,
// so edges and workers can never disagree about where an attach goes.
func (ks keyspace) controlShards() string { return ks.p + "ctl:shards" }

// fnv32 is FNV-1a, the hash that sends a (user, game) to its control and
// index shard: stable across releases and languages, unlike maphash.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// escape percent-encodes every byte that could break a key's structure: the
// separators ':' and '%', hash-tag braces, and anything that is not a plain
// printable ASCII character. User ids come from tokens and must not be able
// to steer a key into another session's slot.
func escape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == ':' || c == '%' || c == '{' || c == '}'
}

func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, ok := unhex(s[i+1], s[i+2]); ok {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// ControlStreamName is the name of control stream shard of namespace, for
// tools outside the store that watch it (KEDA's scaler in deploy/).
func ControlStreamName(namespace string, shard int) string {
	return newKeyspace(namespace).control(shard)
}
