package store

import (
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Relaying output. An edge sends every text and input entry it reads to
// browsers, and their text is nearly all of an entry's bytes; decoding it
// from the stored JSON only for the edge to encode it again for the browser
// was a tenth of an echo's CPU and more of a flood's. The relay readers
// (ParseRelayMessage, RelayBacklog) decode the few fields an edge routes by
// and keep the text as the stored JSON string (Output.RawText) when it is
// exactly what encoding/json writes for that text, escape for escape. The
// worker writes entries with encoding/json, so it always is, except for the
// U+FFFD encoding/json writes for invalid UTF-8 as `\ufffd`, which it would
// write again as the character itself. Spliced into JSON that encoding/json
// would write, such a string gives the same bytes as decoding and encoding
// again.
//
// Redis is not trusted with that: anything else (another layout, a field
// the fast path does not know, a number out of range, a string encoding/json
// would not have written, bytes that are not UTF-8) is decoded in full with
// encoding/json, as every entry was before, so a malformed entry fails, and
// an odd one decodes, exactly as it always did.

// jsonEscapes is what encoding/json writes for each ASCII character inside
// a string (taken from it, so the two cannot disagree), and jsonRaw whether
// that is the character itself.
var (
	jsonEscapes [utf8.RuneSelf]string
	jsonRaw     [256]bool
)

func init() {
	for c := range utf8.RuneSelf {
		b, err := json.Marshal(string(rune(c)))
		if err != nil {
			panic("store: encode a character: " + err.Error())
		}
		jsonEscapes[c] = string(b[1 : len(b)-1])
		jsonRaw[c] = jsonEscapes[c] == string(rune(c))
	}
}

// jsonEscapesRune reports whether encoding/json writes the valid non-ASCII
// rune r escaped (as `\u2028`, lower-case hex) rather than as itself.
func jsonEscapesRune(r rune) bool { return r == '\u2028' || r == '\u2029' }

// scanString checks the JSON string starting at s[i] (a quote) and returns
// the index just after its closing quote. ok is false unless every
// character in it is written the way encoding/json writes that character;
// escaped says whether it holds any escape.
func scanString(s string, i int) (end int, escaped, ok bool) {
	i++
	for i < len(s) {
		c := s[i]
		if jsonRaw[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			n := canonicalEscape(s[i:])
			if n == 0 {
				return 0, false, false
			}
			escaped = true
			i += n
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || jsonEscapesRune(r) {
				return 0, false, false
			}
			i += size
		default:
			// A control character, or one encoding/json escapes for HTML
			// ('<', '>', '&'), written as itself.
			return 0, false, false
		}
	}
	return 0, false, false
}

// canonicalEscape returns the length of the escape at the start of s (a
// backslash) if it is how encoding/json writes the character it stands
// for, else 0.
func canonicalEscape(s string) int {
	if len(s) < 2 {
		return 0
	}
	if s[1] != 'u' {
		var c byte
		switch s[1] {
		case '"', '\\', '/':
			c = s[1]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default:
			return 0
		}
		if jsonEscapes[c] == s[:2] {
			return 2
		}
		return 0
	}
	if len(s) < 6 {
		return 0
	}
	// encoding/json writes lower-case hex: anything else is not its.
	var r rune
	for _, h := range []byte(s[2:6]) {
		switch {
		case '0' <= h && h <= '9':
			r = r<<4 | rune(h-'0')
		case 'a' <= h && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		default:
			return 0
		}
	}
	switch {
	case r < utf8.RuneSelf:
		if jsonEscapes[r] == s[:6] {
			return 6
		}
	case jsonEscapesRune(r):
		return 6
	}
	return 0
}

// relayFields are the keys of the fields parseRelay reads, each a bit.
var relayFields = map[string]uint32{"k": 1, "f": 2, "n": 4, "t": 8, "p": 16, "r": 32, "s": 64, "w": 128, "ts": 256, "v": 512, "i": 1024}

// parseRelay is the fast path of decodeRelay: an object of the fields a
// text or input entry has, without spaces, each once, as encoding/json
// writes store.Output. ok is false for anything else, and the caller
// decodes in full.
func parseRelay(v string) (o Output, ok bool) {
	if len(v) < 2 || v[0] != '{' {
		return o, false
	}
	i := 1
	var seen uint32
	for {
		if i >= len(v) || v[i] != '"' {
			return o, false
		}
		end, esc, ok := scanString(v, i)
		if !ok || esc {
			return o, false
		}
		key := v[i+1 : end-1]
		i = end
		if i >= len(v) || v[i] != ':' {
			return o, false
		}
		i++
		bit := relayFields[key]
		if bit == 0 {
			return o, false // "d", "g", "e" (other kinds' fields) and anything unknown
		}
		if seen&bit != 0 {
			return o, false // encoding/json takes the last; so does the full decode
		}
		seen |= bit
		switch key {
		case "k", "t", "s", "w", "v":
			if i >= len(v) || v[i] != '"' {
				return o, false
			}
			end, esc, ok := scanString(v, i)
			if !ok || esc && key != "t" {
				return o, false
			}
			str := v[i:end]
			i = end
			switch key {
			case "k":
				o.Kind = OutputKind(str[1 : len(str)-1])
			case "t":
				if str != `""` {
					o.RawText = str
				}
			case "s":
				o.State = str[1 : len(str)-1]
			case "w":
				o.Worker = str[1 : len(str)-1]
			case "v":
				o.Viewer = str[1 : len(str)-1]
			}
		case "f", "ts":
			j := scanInt(v, i, true)
			n, err := strconv.ParseInt(v[i:j], 10, 64)
			if j == i || err != nil {
				return o, false
			}
			i = j
			if key == "f" {
				o.Fence = n
			} else {
				o.Time = n
			}
		case "n", "i":
			j := scanInt(v, i, false)
			n, err := strconv.ParseUint(v[i:j], 10, 64)
			if j == i || err != nil {
				return o, false
			}
			i = j
			if key == "n" {
				o.Seq = n
			} else {
				o.InputSeq = n
			}
		case "p", "r":
			var b bool
			switch {
			case strings.HasPrefix(v[i:], "true"):
				b, i = true, i+4
			case strings.HasPrefix(v[i:], "false"):
				i += 5
			default:
				return o, false
			}
			if key == "p" {
				o.Prompt = b
			} else {
				o.Redacted = b
			}
		}
		if i >= len(v) {
			return o, false
		}
		if v[i] == ',' {
			i++
			continue
		}
		if v[i] != '}' || i+1 != len(v) {
			return o, false
		}
		break
	}
	if o.Kind != OutText && o.Kind != OutInput {
		return Output{}, false
	}
	return o, true
}

// scanInt returns the end of the JSON integer at v[i] (i if there is none):
// no leading zeros, a minus sign only when signed.
func scanInt(v string, i int, signed bool) int {
	j := i
	if signed && j < len(v) && v[j] == '-' {
		j++
	}
	start := j
	for j < len(v) && v[j] >= '0' && v[j] <= '9' {
		j++
	}
	if j == start || v[start] == '0' && j-start > 1 {
		return i
	}
	return j
}

// decodeRelay decodes an entry's JSON for relaying: text and input entries
// in the form encoding/json writes get RawText instead of Text; everything
// else is decoded in full (see the top of the file).
func decodeRelay(v string) (Output, error) {
	if o, ok := parseRelay(v); ok {
		return o, nil
	}
	var o Output
	err := json.Unmarshal([]byte(v), &o)
	return o, err
}

// PlainText returns the entry's text, decoding RawText if that is where it
// is.
func (o *Output) PlainText() string {
	if o.RawText == "" {
		return o.Text
	}
	var t string
	_ = json.Unmarshal([]byte(o.RawText), &t) // checked by the relay reader
	return t
}

// RelayMessages decodes a message received on a session's output channel:
// the entries of one append, a line "<id> <json>" each, joined by "\n"
// (lua/append.lua), in stream order, each as ParseRelayMessage decodes it.
// An entry that cannot be decoded is yielded as an error and the rest are
// still decoded.
func RelayMessages(payload string) iter.Seq2[Output, error] {
	return func(yield func(Output, error) bool) {
		for line := range strings.SplitSeq(payload, "\n") {
			if !yield(ParseRelayMessage(line)) {
				return
			}
		}
	}
}

// ParseRelayMessage decodes one entry of a message received on a session's
// output channel ("<id> <json>") as ParseOutputMessage does, but for
// relaying: the text of text and input entries stays JSON, in RawText.
func ParseRelayMessage(payload string) (Output, error) {
	id, body, ok := strings.Cut(payload, " ")
	if !ok {
		return Output{}, fmt.Errorf("output message without id: %.40q", payload)
	}
	o, err := decodeRelay(body)
	if err != nil {
		return Output{}, fmt.Errorf("output message %s: %w", id, err)
	}
	o.ID = id
	return o, nil
}

func decodeRelayEntry(m redis.XMessage) (Output, error) {
	v, _ := m.Values["v"].(string)
	o, err := decodeRelay(v)
	if err != nil {
		return Output{}, fmt.Errorf("output entry %s: %w", m.ID, err)
	}
	o.ID = m.ID
	return o, nil
}
