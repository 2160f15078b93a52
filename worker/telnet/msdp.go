package telnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/internal/msdp"
)

// MSDP bounds. A block is already at most Options.MaxSubneg bytes; these
// bound what it may ask of the decoder and of the browser that renders it.
const (
	// msdpMaxDepth is how deeply tables and arrays may nest inside a value.
	// Real games nest two or three deep (ROOM > EXITS); the bound keeps the
	// parser's stack a fixed array and a browser's renderer shallow.
	msdpMaxDepth = msdp.MaxDepth
	// msdpMaxElements is how many names and values (VAR and VAL bytes, or
	// their JSON counterparts) one block may carry. The largest real
	// answers (REPORTABLE_VARIABLES) hold about a hundred.
	msdpMaxElements = msdp.MaxElements
)

// ErrMSDPValue is wrapped by the error MSDP and AppendMSDP return when a
// name or value cannot be sent as MSDP (it is msdp.ErrValue).
var ErrMSDPValue = msdp.ErrValue

// ErrMSDPNotAgreed is returned by Engine.MSDP when the game agreed to
// neither MSDP nor GMCP.
var ErrMSDPNotAgreed = errors.New("telnet: the game has not agreed to MSDP or GMCP")

// msdpFrame is one level of the value being decoded: the top level (the
// block's variables), a table, or an array.
type msdpFrame struct {
	array    bool
	members  int  // VARs seen in a table or at the top level, items in an array
	open     bool // a VAR is open: its name is written, its values may follow
	vals     int  // VALs read for the open VAR
	valStart int  // offset in out where the open VAR's first value starts
}

// msdpParser turns one MSDP block into events in one pass, writing JSON as
// it goes: no tree is built, and the stack is a fixed array, so input
// nested 10,000 deep costs no more than input nested 32 deep.
type msdpParser struct {
	stack  [msdpMaxDepth + 1]msdpFrame
	depth  int    // index of the innermost frame; 0 is the top level
	expect bool   // a VAL was read and its value has not started
	out    []byte // JSON of the top-level variable being read
	name   string // its name
	elems  int
	evs    []Event
}

// parseMSDP decodes the body of IAC SB MSDP ... IAC SE into one EventMSDP
// per top-level variable, in order, appended to evs:
//
//   - VAR name VAL value is a variable; a string value is the bytes up to
//     the next MSDP byte (1-6), TABLE_OPEN (VAR name VAL value)*
//     TABLE_CLOSE an object and ARRAY_OPEN (VAL value)* ARRAY_CLOSE an
//     array, nested;
//   - a VAR followed by several VALs is an array of them (the form of the
//     specification's command examples), and a VAR with none is the empty
//     string, as is a VAL with nothing after it;
//   - text is UTF-8, invalid bytes become U+FFFD (as for GMCP and MSSP).
//
// Anything else is malformed and cannot be resynchronised, because the
// nesting is no longer known: a VAL without a VAR, a VAR inside an array,
// a closer that closes nothing or the wrong thing, text outside a VAL, a
// table or array left open at the end, a top-level VAR without a name, more
// than msdpMaxDepth levels or msdpMaxElements names and values. Then the
// variable being read and the rest of the block are dropped, and one
// EventMSDPDropped says why: a half-read value could render as a wrong
// gauge, while the variables already read are whole and are delivered.
//
// Each input byte adds at most six bytes of JSON (a control byte becomes
// \u00XX; a VAR with no name and no value in a table becomes ,"":""), so
// the events of a block carry at most six times its size.
func parseMSDP(evs []Event, b []byte) []Event {
	// The JSON of one variable is usually about as long as its block.
	p := msdpParser{evs: evs, out: make([]byte, 0, len(b)+8)}
	for len(b) > 0 {
		c := b[0]
		if c < msdpVAR || c > msdpArrayClose {
			n := msdpRun(b)
			if reason := p.text(b[:n]); reason != "" {
				return p.drop(reason)
			}
			b = b[n:]
			continue
		}
		b = b[1:]
		var reason string
		if c == msdpVAR {
			n := msdpRun(b)
			reason = p.variable(b[:n])
			b = b[n:]
		} else {
			reason = p.token(c)
		}
		if reason != "" {
			return p.drop(reason)
		}
	}
	if reason := p.end(); reason != "" {
		return p.drop(reason)
	}
	return p.evs
}

// msdpRun is the length of the text at the start of b: up to the next
// MSDP byte.
func msdpRun(b []byte) int {
	for i, c := range b {
		if c >= msdpVAR && c <= msdpArrayClose {
			return i
		}
	}
	return len(b)
}

// count counts one name or value against the bound.
func (p *msdpParser) count() string {
	p.elems++
	if p.elems > msdpMaxElements {
		return fmt.Sprintf("more than %d names and values", msdpMaxElements)
	}
	return ""
}

// text is a run of data bytes: the value of the VAL just read, or garbage.
func (p *msdpParser) text(s []byte) string {
	if !p.expect {
		return "text outside a VAL"
	}
	p.expect = false
	p.out = appendJSONString(p.out, s)
	return ""
}

// value ends a VAL that has no text: the empty string.
func (p *msdpParser) value() {
	if p.expect {
		p.expect = false
		p.out = append(p.out, `""`...)
	}
}

// variable is VAR name.
func (p *msdpParser) variable(name []byte) string {
	p.value()
	f := &p.stack[p.depth]
	if f.array {
		return "VAR inside an array"
	}
	p.closeVar(f) // whole: delivered even if this VAR is past the bound
	if p.depth == 0 {
		if len(name) == 0 {
			return "VAR without a name"
		}
		p.name = validString(name)
		p.out = p.out[:0]
	} else {
		if f.members > 0 {
			p.out = append(p.out, ',')
		}
		p.out = appendJSONString(p.out, name)
		p.out = append(p.out, ':')
	}
	f.members++
	f.open, f.vals, f.valStart = true, 0, len(p.out)
	return p.count()
}

// closeVar finishes the open VAR of a table or the top level: the empty
// string if it had no VAL, the closing bracket if it had several, and at
// the top level the event.
func (p *msdpParser) closeVar(f *msdpFrame) {
	if !f.open {
		return
	}
	f.open = false
	switch {
	case f.vals == 0:
		p.out = append(p.out, `""`...)
	case f.vals > 1:
		p.out = append(p.out, ']')
	}
	if p.depth == 0 {
		p.evs = append(p.evs, Event{Kind: EventMSDP, Var: p.name, Data: json.RawMessage(bytes.Clone(p.out))})
		p.name = ""
	}
}

// token handles the MSDP bytes other than VAR.
func (p *msdpParser) token(c byte) string {
	switch c {
	case msdpTableOpen, msdpArrayOpen:
		if !p.expect {
			if c == msdpArrayOpen {
				return "ARRAY_OPEN without a VAL"
			}
			return "TABLE_OPEN without a VAL"
		}
		p.expect = false
		if p.depth == msdpMaxDepth {
			return fmt.Sprintf("nested deeper than %d", msdpMaxDepth)
		}
		p.depth++
		p.stack[p.depth] = msdpFrame{array: c == msdpArrayOpen}
		if c == msdpArrayOpen {
			p.out = append(p.out, '[')
		} else {
			p.out = append(p.out, '{')
		}
		return ""
	}
	p.value()
	f := &p.stack[p.depth]
	switch c {
	case msdpVAL:
		if reason := p.count(); reason != "" {
			return reason
		}
		if f.array {
			if f.members > 0 {
				p.out = append(p.out, ',')
			}
			f.members++
		} else {
			if !f.open {
				return "VAL without a VAR"
			}
			if f.vals == 1 { // a second VAL: the values are an array
				p.out = append(p.out, 0)
				copy(p.out[f.valStart+1:], p.out[f.valStart:])
				p.out[f.valStart] = '['
			}
			if f.vals > 0 {
				p.out = append(p.out, ',')
			}
			f.vals++
		}
		p.expect = true
	case msdpTableClose:
		if f.array || p.depth == 0 {
			return "TABLE_CLOSE outside a table"
		}
		p.closeVar(f)
		p.out = append(p.out, '}')
		p.depth--
	case msdpArrayClose:
		if !f.array {
			return "ARRAY_CLOSE outside an array"
		}
		p.out = append(p.out, ']')
		p.depth--
	}
	return ""
}

// end finishes the block.
func (p *msdpParser) end() string {
	p.value()
	if p.depth > 0 {
		if p.stack[p.depth].array {
			return "ARRAY_OPEN without ARRAY_CLOSE"
		}
		return "TABLE_OPEN without TABLE_CLOSE"
	}
	p.closeVar(&p.stack[0])
	return ""
}

// drop ends the block with the variables read so far and the reason the
// rest was dropped.
func (p *msdpParser) drop(reason string) []Event {
	name := ""
	if p.stack[0].open {
		name = p.name
	}
	return append(p.evs, Event{Kind: EventMSDPDropped, Var: name, Reason: reason})
}

// appendJSONString appends s, which need not be valid UTF-8, as a JSON
// string: invalid bytes become U+FFFD, control characters are escaped.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == 0x7F:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// isMSDPOverGMCP reports whether a GMCP message is MSDP carried over GMCP:
// package MSDP (GMCP package names are case-insensitive) with a JSON
// object mapping variables to values. Anything else stays a GMCP event.
func isMSDPOverGMCP(ev Event) bool {
	return strings.EqualFold(ev.Package, "MSDP") && len(ev.Data) > 0 && ev.Data[0] == '{'
}

// msdpFromJSON turns the body of a GMCP "MSDP" message, a JSON object,
// into one EventMSDP per member appended to evs, with the bounds and the dropping rule of
// parseMSDP: names and values are counted as their telnet form would be (a
// member is a VAR and a VAL, an array item a VAL), and a value nested
// deeper than msdpMaxDepth drops itself and the rest. Values are delivered
// compacted, numbers and booleans included.
//
// parseGMCP has checked that the body is valid JSON, so a byte scanner
// finds the members: json.Decoder's Token costs an allocation a token and
// made this ten times slower. The scanner still never runs past the input
// or loops on input that is not JSON, so the function is safe on its own.
func msdpFromJSON(evs []Event, data []byte) []Event {
	drop := func(name, reason string) []Event {
		return append(evs, Event{Kind: EventMSDPDropped, Var: name, Reason: reason})
	}
	const invalid = "GMCP MSDP body is not valid JSON"
	s := jsonScanner{data: data}
	if s.space(); !s.eat('{') {
		return drop("", "GMCP MSDP body is not an object")
	}
	if s.space(); s.eat('}') {
		return evs
	}
	elems := 0
	for {
		s.space()
		keyStart := s.i
		var name string
		if !s.str() || json.Unmarshal(data[keyStart:s.i], &name) != nil {
			return drop("", invalid)
		}
		if name == "" {
			return drop("", "VAR without a name")
		}
		if s.space(); !s.eat(':') {
			return drop(name, invalid)
		}
		s.space()
		start := s.i
		if elems += 2; elems > msdpMaxElements {
			return drop(name, fmt.Sprintf("more than %d names and values", msdpMaxElements))
		}
		if reason := s.value(&elems); reason != "" {
			return drop(name, reason)
		}
		var buf bytes.Buffer
		if json.Compact(&buf, data[start:s.i]) != nil {
			return drop(name, invalid)
		}
		evs = append(evs, Event{Kind: EventMSDP, Var: name, Data: json.RawMessage(buf.Bytes())})
		s.space()
		switch {
		case s.eat(','):
		case s.eat('}'):
			return evs
		default:
			return drop("", invalid)
		}
	}
}

// jsonScanner walks JSON that is expected to be valid, finding where values
// end; every step advances or fails, so it terminates on any input.
type jsonScanner struct {
	data []byte
	i    int
}

func (s *jsonScanner) space() {
	for s.i < len(s.data) && (s.data[s.i] == ' ' || s.data[s.i] == '\t' || s.data[s.i] == '\n' || s.data[s.i] == '\r') {
		s.i++
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str skips a string starting at s.i.
func (s *jsonScanner) str() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			s.i += 2 // an escaped byte; \uXXXX goes on with hex digits
		case '"':
			s.i++
			return true
		default:
			s.i++
		}
	}
	return false
}

// value skips one value, counting its names and values into elems and
// checking its depth, and says why it cannot be delivered, if it cannot.
func (s *jsonScanner) value(elems *int) string {
	const invalid = "GMCP MSDP body is not valid JSON"
	var obj, wantKey [msdpMaxDepth + 1]bool // per level: an object, and its next token is a key
	depth := 0
	count := func(n int) string {
		if *elems += n; *elems > msdpMaxElements {
			return fmt.Sprintf("more than %d names and values", msdpMaxElements)
		}
		return ""
	}
	for {
		s.space()
		if s.i >= len(s.data) {
			return invalid
		}
		c := s.data[s.i]
		if wantKey[depth] && c != '}' {
			if s.space(); !s.str() {
				return invalid
			}
			if s.space(); !s.eat(':') {
				return invalid
			}
			if reason := count(2); reason != "" {
				return reason
			}
			wantKey[depth] = false
			continue
		}
		item := depth > 0 && !obj[depth]
		switch c {
		case '{', '[':
			if item {
				if reason := count(1); reason != "" {
					return reason
				}
			}
			if depth == msdpMaxDepth {
				return fmt.Sprintf("nested deeper than %d", msdpMaxDepth)
			}
			s.i++
			depth++
			obj[depth] = c == '{'
			wantKey[depth] = obj[depth]
			continue
		case '}', ']':
			if depth == 0 {
				return invalid
			}
			s.i++
			depth--
		default:
			if item {
				if reason := count(1); reason != "" {
					return reason
				}
			}
			if c == '"' {
				if !s.str() {
					return invalid
				}
			} else if !s.scalar() {
				return invalid
			}
		}
		if depth == 0 {
			return ""
		}
		s.space()
		wantKey[depth] = s.eat(',') && obj[depth] // a value ended: after a comma an object's next token is a key
	}
}

// scalar skips a number, true, false or null.
func (s *jsonScanner) scalar() bool {
	start := s.i
	for ; s.i < len(s.data); s.i++ {
		switch s.data[s.i] {
		case ',', ':', '[', ']', '{', '}', '"', ' ', '\t', '\r', '\n':
			return s.i > start
		}
	}
	return s.i > start
}

// AppendMSDP appends IAC SB MSDP VAR name VAL value IAC SE to dst, value
// being JSON: a string, a number (sent as its text), an array or an
// object, nested at most 32 deep; true, false and null have no MSDP form.
// For the client commands LIST, REPORT, UNREPORT, RESET and SEND an array
// of names travels as one VAL per name, the form servers read; anything
// else is sent as nested tables and arrays, so setting a variable to
// {"a":["x"]} is VAR name VAL TABLE_OPEN VAR a VAL ARRAY_OPEN VAL x
// ARRAY_CLOSE TABLE_CLOSE.
//
// The name must not be empty, and no name or string may contain NUL or the
// MSDP bytes 1-6: they would end the string early (NUL, for servers written
// in C) or change the structure. Such input, invalid JSON or more than
// 4,096 names and values return an error wrapping ErrMSDPValue and leave
// dst as it was. IAC bytes are doubled.
func AppendMSDP(dst []byte, name string, value json.RawMessage) ([]byte, error) {
	body, err := msdp.Body(name, value)
	if err != nil {
		return dst, err
	}
	return AppendSubnegotiation(dst, OptMSDP, body), nil
}

// MSDP appends one MSDP message from the player to dst: VAR name VAL value
// (see AppendMSDP for the encoding and what is refused), which sets a
// variable or, with name LIST, REPORT, UNREPORT, RESET or SEND, is a
// command: MSDP(dst, "REPORT", `["HEALTH","MANA"]`).
//
// Over MSDP when the game agreed to it; else, when the game agreed to GMCP
// (and Options.NoMSDP is not set), as MSDP over GMCP: the GMCP message
// MSDP {"name":value}, which games that do not speak it ignore. With
// neither it returns ErrMSDPNotAgreed. A message longer than
// Options.MaxSubneg is refused: the engine would not accept one that long
// from the game either. On error dst is returned unchanged.
func (e *Engine) MSDP(dst []byte, name string, value json.RawMessage) ([]byte, error) {
	overMSDP := e.him[OptMSDP].enabled()
	if !overMSDP && (e.opts.NoMSDP || !e.him[OptGMCP].enabled()) {
		return dst, ErrMSDPNotAgreed
	}
	body, err := msdp.Body(name, value) // validates for GMCP too
	if err != nil {
		return dst, err
	}
	n := len(dst)
	if overMSDP {
		dst = AppendSubnegotiation(dst, OptMSDP, body)
	} else {
		key, _ := json.Marshal(name) // cannot fail for a string
		var obj bytes.Buffer
		obj.WriteByte('{')
		obj.Write(key)
		obj.WriteByte(':')
		json.Compact(&obj, value) // valid: msdpBody decoded it
		obj.WriteByte('}')
		dst = appendGMCP(dst, "MSDP", obj.Bytes())
	}
	if size := len(dst) - n - 5; size > e.opts.MaxSubneg {
		return dst[:n], fmt.Errorf("%w: %s: %d bytes, more than the %d a subnegotiation may hold", ErrMSDPValue, name, size, e.opts.MaxSubneg)
	}
	return dst, nil
}

// emitMSDP delivers the events of one MSDP block, after the text before
// it. The parsers append to the engine's events directly: a block's own
// slice, grown and copied, cost as much as the parsing.
func (e *Engine) emitMSDP(parse func([]Event, []byte) []Event, b []byte) {
	e.flushText()
	e.evs = parse(e.evs, b)
}
