package bench

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/internal/wire"
)

// decodeOutputFrame decodes the one frame shape a flood is made of, an
// output frame as the edge writes it (edge/protocol.go, appendOutputFrame):
//
//	{"type":"output","id":"<id>","text":<JSON string>,"prompt":<bool>}
//
// without encoding/json, and reports false for anything else (the caller
// then decodes it the general way). The bench's clients are not the system
// under test: decoding every frame with json.Unmarshal (its validation
// pass, then reflection) was about a third of the CPU of the in-process
// flood, a share the direct proxy's clients, which read raw bytes, never
// pay, and on a 2-core machine one the stack's processes lost.
func decodeOutputFrame(data []byte) (wire.Frame, bool) {
	const head, mid = `{"type":"` + wire.TypeOutput + `","id":"`, `","text":"`
	if !bytes.HasPrefix(data, []byte(head)) {
		return wire.Frame{}, false
	}
	rest := data[len(head):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 || bytes.IndexByte(rest[:q], '\\') >= 0 || !bytes.HasPrefix(rest[q:], []byte(mid)) {
		return wire.Frame{}, false
	}
	f := wire.Frame{Type: wire.TypeOutput, ID: string(rest[:q])}
	text, n, ok := unquoteJSON(rest[q+len(mid):])
	if !ok {
		return wire.Frame{}, false
	}
	switch string(rest[q+len(mid)+n:]) {
	case `,"prompt":true}`:
		f.Prompt = true
	case `,"prompt":false}`, `}`:
	default:
		return wire.Frame{}, false
	}
	f.Text = text
	return f, true
}

// unquoteJSON decodes the JSON string whose body (after the opening quote)
// starts b, as encoding/json would, and returns how many bytes of b it
// took, closing quote included. ok is false for what is not a valid JSON
// string.
func unquoteJSON(b []byte) (s string, n int, ok bool) {
	end := plainRun(b)
	if end < len(b) && b[end] == '"' {
		return string(b[:end]), end + 1, true // the common case: nothing to decode
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		run := plainRun(b[i:])
		out = append(out, b[i:i+run]...)
		i += run
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return string(out), i + 1, true
		case c < 0x20:
			return "", 0, false
		case c == '\\':
			if i+1 >= len(b) {
				return "", 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/':
				out = append(out, b[i+1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok {
					return "", 0, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok2 := hex4(b[min(i+2, len(b)):]); ok2 && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", 0, false
			}
			i += 2
		default: // not ASCII
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...) // as encoding/json does
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return "", 0, false
}

// plainRun is how many bytes at b's start a JSON string holds as they
// are: printable ASCII other than the quote and the backslash.
func plainRun(b []byte) int {
	for i, c := range b {
		if !plain[c] {
			return i
		}
	}
	return len(b)
}

var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(v), err == nil
}
