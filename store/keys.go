package store

import (
	"strings"
)

// Prefix starts every key Trellis owns, so one Redis can be shared and ops
// can SCAN for exactly Trellis's keys.
const Prefix = "trellis:"

// Stream and key names that are not per session.
const (
	keyControl     = Prefix + "ctl"
	keyDeadLetters = Prefix + "ctl:dead"
	keySessions    = Prefix + "sessions"
	keyGames       = Prefix + "games"
	keyEvents      = Prefix + "events"

	// GroupWorkers is the consumer group of the control stream.
	GroupWorkers = "workers"
)

// SessionKey names one (user, game) pair. It is the unit of ownership: one
// lease, one game connection, one output stream.
type SessionKey struct {
	User string
	Game string
}

func (k SessionKey) String() string { return k.User + "/" + k.Game }

// tag is the hash tag shared by all keys of a session, so that scripts may
// touch several of them on Redis Cluster.
func (k SessionKey) tag() string {
	return Prefix + "{ug:" + escape(k.User) + ":" + escape(k.Game) + "}"
}

func (k SessionKey) leaseKey() string   { return k.tag() + ":lease" }
func (k SessionKey) fenceKey() string   { return k.tag() + ":fence" }
func (k SessionKey) outKey() string     { return k.tag() + ":out" }
func (k SessionKey) gmcpKey() string    { return k.tag() + ":gmcp" }
func (k SessionKey) sessionKey() string { return k.tag() + ":session" }

// outMetaKey and outMarksKey hold the byte bound of the output stream (see
// lua/output_bound.lua); they live and expire with the stream.
func (k SessionKey) outMetaKey() string  { return k.tag() + ":outmeta" }
func (k SessionKey) outMarksKey() string { return k.tag() + ":outmarks" }

// transcriptKeys are the keys of a session that a lease renewal keeps for
// the transcript TTL: the output stream with its byte count, the GMCP state
// and the session record.
func (k SessionKey) transcriptKeys() []string {
	return []string{k.outKey(), k.outMetaKey(), k.outMarksKey(), k.gmcpKey(), k.sessionKey()}
}

// OutputChannel is the pub/sub channel carrying the session's live output.
// It has the same name as the output stream (channels and keys do not share
// a namespace), so it hashes to the same slot for sharded pub/sub.
func (k SessionKey) OutputChannel() string { return k.outKey() }

// indexMember is the member of the session index set for k.
func (k SessionKey) indexMember() string { return escape(k.User) + ":" + escape(k.Game) }

func parseIndexMember(m string) (SessionKey, bool) {
	u, g, ok := strings.Cut(m, ":")
	if !ok {
		return SessionKey{}, false
	}
	return SessionKey{User: unescape(u), Game: unescape(g)}, true
}

func inboxKey(worker string) string { return Prefix + "{w:" + escape(worker) + "}:inbox" }
func msspKey(game string) string    { return Prefix + "game:" + escape(game) + ":mssp" }
func edgeKey(edge string) string    { return Prefix + "edge:" + escape(edge) }

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
