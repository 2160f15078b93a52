package telnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EventKind says what an Event carries.
type EventKind uint8

const (
	// EventText: Text holds UTF-8 text with ANSI escapes kept and newlines
	// normalised to "\n".
	EventText EventKind = iota
	// EventPrompt: the game sent GA or EOR, so the text before it is a prompt.
	EventPrompt
	// EventEcho: Echo is true when the game starts echoing (WILL ECHO agreed:
	// mask the input field and keep the line out of history and logs), false
	// when it stops (WONT ECHO).
	EventEcho
	// EventGMCP: a GMCP message; Package names it and Data holds its JSON
	// body, or nil when the message had none.
	EventGMCP
	// EventMSSP: MSSP maps each server status variable to its values.
	EventMSSP
	// EventMSDP: one MSDP variable, sent over MSDP or as a member of a GMCP
	// "MSDP" message. Var names it and Data holds its value as JSON: a
	// string, an array or an object, nested (numbers, booleans and null
	// only come over GMCP). A block that sets several variables yields one
	// event each, in order.
	EventMSDP
	// EventMSDPDropped: the rest of an MSDP block was malformed or past a
	// bound and was dropped. Reason says why; Var names the variable that
	// was being read, or is empty. The variables before it were delivered.
	EventMSDPDropped
	// EventMXP: MXP (option 91) was agreed (MXP true) or ended (false).
	// Text after it in the same slice is MXP text; see package worker/mxp.
	EventMXP
)

var eventKindNames = [...]string{"text", "prompt", "echo", "gmcp", "mssp", "msdp", "msdp-dropped", "mxp"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// Event is one thing the game said. Only the fields of its Kind are set.
// Events own their data: nothing in them aliases the engine's buffers.
type Event struct {
	Kind    EventKind
	Text    string
	Echo    bool
	Package string
	// Data is the GMCP body or the MSDP value. It is always valid JSON: a
	// GMCP body that is not JSON is delivered as a JSON string holding the
	// body text.
	Data json.RawMessage
	MSSP map[string][]string
	// Var is the MSDP variable of EventMSDP and EventMSDPDropped.
	Var string
	// Reason says why EventMSDPDropped dropped what it did.
	Reason string
	// MXP is the new state of EventMXP.
	MXP bool
}

// ErrCompression is wrapped by the error DecodeSlice and Decode return when
// the game's MCCP2 stream is corrupt. See Engine.DecodeSlice.
var ErrCompression = errors.New("telnet: MCCP2 stream corrupt")

// parseState is where the parser stands in the telnet byte stream.
type parseState uint8

const (
	stData   parseState = iota // plain data
	stIAC                      // after IAC
	stVerb                     // after IAC WILL|WONT|DO|DONT, waiting for the option
	stSBOpt                    // after IAC SB, waiting for the option
	stSBData                   // inside a subnegotiation
	stSBIAC                    // after IAC inside a subnegotiation
)

// Engine is the client side of one telnet connection to a game: DecodeSlice
// turns the game's bytes into events and queues the replies owed to the game; Line,
// GMCP and Resize encode what the player sends.
//
// An Engine is not safe for concurrent use: the goroutine that reads the game
// should own it, or calls must be serialised by the caller. Call Close when
// the connection ends.
type Engine struct {
	opts    Options
	legacy  charset // the game's configured charset
	charset charset // the charset text is decoded with now

	// Parser state, kept between calls so any split is survived.
	state      parseState
	verb       byte   // WILL/WONT/DO/DONT waiting for its option
	sbOpt      byte   // option of the subnegotiation being read
	sb         []byte // unescaped subnegotiation payload
	sbRaw      int    // bytes received for it, escapes included
	sbOverflow bool   // the block passed MaxSubneg and is being dropped

	// Text decoding.
	text  strings.Builder // text not yet emitted
	pend  [utf8.UTFMax]byte
	npend int // bytes of an incomplete UTF-8 sequence held in pend
	// A CR waits for the next data byte (see text.go); midLine says the
	// text so far does not end at column 0, so a CR there would move.
	cr      bool
	midLine bool

	// Negotiation: RFC 1143 state of each option on our side and the game's.
	us, him [256]qstate

	evs     []Event // the slice DecodeSlice is appending to
	budget  int     // stream bytes the current slice may still parse; negative after an inflater overshoot
	replies []byte  // bytes owed to the game

	ttypeStep     int // position in the MTTS cycle
	width, height int
	z             *inflater // non-nil while an MCCP2 stream is open
	mccpRefused   bool      // refused by option, or the stream was corrupt once: never again
}

// New returns an engine for one game connection. It fails only for an
// unknown or unsupported Options.Charset.
func New(opts Options) (*Engine, error) {
	opts = opts.withDefaults()
	cs, err := lookupCharset(opts.Charset)
	if err != nil {
		return nil, fmt.Errorf("telnet: %w", err)
	}
	return &Engine{
		opts:    opts,
		legacy:  cs,
		charset: cs,
		width:   opts.Width,
		height:  opts.Height,

		mccpRefused: opts.NoCompression,
	}, nil
}

// Decode consumes all of p and appends the events it produces to evs. It is
// DecodeSlice called until p is used up, so the events of one call are not
// bounded: 100 KB of MCCP2 input can inflate to 100 MB of text.
// Code that reads an untrusted game (the worker) uses DecodeSlice; Decode
// is for tests, tools and trusted input. Text arrives as at least one event
// per slice.
//
// Replies owed to the game (negotiation answers, TTYPE, NAWS, GMCP hello...)
// are queued; send them after each call (see Replies). Errors are those of
// DecodeSlice; after an error the rest of p is dropped.
func (e *Engine) Decode(p []byte, evs []Event) ([]Event, error) {
	for {
		var (
			n   int
			err error
		)
		evs, n, err = e.DecodeSlice(p, evs)
		p = p[n:]
		if err != nil || len(p) == 0 {
			return evs, err
		}
	}
}

// maxInflateOvershoot is how far past Options.SliceBytes one DecodeSlice
// call can parse while an MCCP2 stream is open. The inflater can only be
// left where it asks for input (see inflate), and compress/flate asks only
// once it has handed out everything it decoded: each flush of its 32 KiB
// window in full, then what it decodes from the up to 32 bits it holds
// before it needs another byte: the rest of a back-reference (at most 257
// bytes) and at most 16 more back-references of 258 bytes (2 bits each).
// The slice can run out just after the first byte of a flush.
const maxInflateOvershoot = 32<<10 - 1 + 257 + 16*258 // 37,152

// MaxSliceText is the most text (in bytes, after charset decoding) one
// DecodeSlice call can return with Options.SliceBytes = sliceBytes: every
// byte parsed may become U+FFFD (3 bytes), and an open MCCP2 stream can
// overrun the slice by maxInflateOvershoot. Subnegotiation events come on
// top (one block of at most MaxSubneg). Callers size their buffers by it.
func MaxSliceText(sliceBytes int) int { return 3 * (sliceBytes + maxInflateOvershoot + 3) }

// DecodeSlice decodes a prefix p[:n] of p and appends the events it
// produced to evs. It stops once it has parsed Options.SliceBytes bytes of
// the telnet stream (plain bytes, or bytes that came out of the MCCP2
// inflater), so the caller can deliver the events and wait for room before
// it calls again with p[n:]. Replies are queued as by Decode; send them
// after each call.
//
// Guarantees, for callers that loop until p is used up:
//   - n > 0 whenever len(p) > 0, so the loop always advances;
//   - n == len(p) once all of p fit, and then nothing is held that a later
//     call would have to release: text decoded so far is in the events
//     (only an incomplete trailing UTF-8 sequence waits), and the inflater
//     holds only what needs more compressed input;
//   - p is not referenced after the call returns, so the caller may reuse
//     its read buffer; p[n:] is exactly the part not yet read, because
//     compress/flate reads through the engine's io.ByteReader and never
//     reads ahead.
//
// The bound, per call: at most SliceBytes bytes parsed from plain input. An
// MCCP2 stream can add up to 37,152 bytes to that (maxInflateOvershoot),
// because compress/flate releases its output in flushes of up to its 32 KiB
// window and asks for input only once a flush has been handed out: a call
// that stopped in between would either strand output in the inflater
// until the game sends more (when p was used up) or leave the next call
// output to parse before its first input byte (n == 0). Text events of one call total at
// most 3 bytes per byte parsed (an invalid byte becomes U+FFFD) plus 9 for
// an incomplete UTF-8 sequence held from the call before: 3*(SliceBytes+3)
// bytes, 49,161 with the default, or 3*(SliceBytes+37,155) with MCCP2. A
// GMCP or MSSP event carries one subnegotiation, at most MaxSubneg bytes as
// received (a non-JSON GMCP body is re-encoded as a JSON string, which can
// grow it up to sixfold); the MSDP events of one subnegotiation carry at
// most six times MaxSubneg bytes of JSON between them, and at most 4,097
// events (see parseMSDP).
//
// Text is flushed at the end of every call, so a prompt without a newline
// reaches the player at once, and any split of the stream into calls or
// slices decodes to the same events once adjacent text events are merged.
//
// DecodeSlice returns an error only when the game's MCCP2 (compressed)
// stream is corrupt; the error wraps ErrCompression and n is len(p). Events
// decoded before the corruption are still appended, the rest of p is
// dropped, DONT MCCP2 is queued and the engine goes back to plain telnet and
// never accepts MCCP2 again on this connection. Bytes the game compressed
// before it reads the DONT cannot be decoded, so closing the connection is
// the safe reaction; the engine stays usable for a caller that prefers to
// carry on.
func (e *Engine) DecodeSlice(p []byte, evs []Event) (out []Event, n int, err error) {
	e.evs = evs
	e.budget = e.opts.SliceBytes
	for n < len(p) && e.budget > 0 && err == nil {
		if e.z != nil {
			var k int
			k, err = e.inflate(p[n:])
			n += k
			if e.z != nil {
				break // waiting for input: p is used up or the slice is full
			}
			continue // the stream ended: the rest is plain telnet
		}
		// parse stops early only when a stream starts; the loop then
		// inflates the rest with what is left of the budget.
		k := e.parse(p[n : n+min(len(p)-n, e.budget)])
		n += k
		e.budget -= k
	}
	e.flushText()
	out, e.evs = e.evs, nil
	return out, n, err
}

// Replies appends the bytes owed to the game to dst and clears the queue.
func (e *Engine) Replies(dst []byte) []byte {
	dst = append(dst, e.replies...)
	e.replies = e.replies[:0]
	if cap(e.replies) > 4<<10 {
		e.replies = nil // a burst of replies should not pin memory on an idle session
	}
	return dst
}

// Line appends one input line encoded for the game to dst: in the game's
// charset (characters it cannot represent become '?'), with 255 bytes
// doubled and CR LF at the end. A "\n" inside line ends a line too, so a
// pasted block becomes several lines; "\r" is dropped.
//
// Control characters are dropped unless Options.KeepControls is set: C0
// (U+0000-U+001F) except TAB, and DEL (U+007F). A browser input field has
// no use for them, and on the wire they are commands to whatever reads the
// line: ESC sequences to a game's line editor or a staff member's terminal,
// BS and DEL as erase characters (many servers edit the line with them, so
// a paste could rewrite the command it is part of), ^C/^D/^Z as signals to
// a line discipline. NUL is dropped even with KeepControls: telnet uses it
// only after CR, and servers written in C read it as the end of the line.
// Line never emits a NUL or an undoubled IAC: UTF-8 encoding never yields
// byte 255 (U+00FF is C3 BF), and the single-byte charsets are ASCII on
// the low half, so only their own byte 255 can appear, and it is doubled.
func (e *Engine) Line(dst []byte, line string) []byte {
	cm := e.charset.cm
	keep := e.opts.KeepControls
	for _, r := range line {
		switch {
		case r == '\n':
			dst = append(dst, '\r', '\n')
		case r == '\r' || r == 0:
		case isControl(r) && !keep:
		case cm == nil:
			dst = utf8.AppendRune(dst, r) // invalid UTF-8 arrives as RuneError: U+FFFD
		default:
			b, ok := cm.EncodeRune(r)
			if !ok {
				b = '?'
			}
			dst = append(dst, b)
			if b == IAC {
				dst = append(dst, IAC)
			}
		}
	}
	return append(dst, '\r', '\n')
}

// isControl reports whether Line drops r by default.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7F
}

// GMCP appends the GMCP message "pkg data" (data is a JSON body and may be
// empty) to dst. It appends nothing and returns ok=false when the game has
// not agreed to GMCP.
func (e *Engine) GMCP(dst []byte, pkg string, data []byte) (out []byte, ok bool) {
	if !e.him[OptGMCP].enabled() {
		return dst, false
	}
	return appendGMCP(dst, pkg, data), true
}

// Resize records the player's window size and, when NAWS is agreed, appends
// the NAWS subnegotiation that tells the game. Sizes are clamped to 0..65535.
func (e *Engine) Resize(dst []byte, width, height int) []byte {
	e.width, e.height = clampSize(width), clampSize(height)
	if !e.us[OptNAWS].enabled() {
		return dst
	}
	return appendNAWS(dst, e.width, e.height)
}

// ServerEcho reports whether the game echoes the player's input now (WILL
// ECHO is agreed), so the input should be masked.
func (e *Engine) ServerEcho() bool { return e.him[OptEcho].enabled() }

// Compressing reports whether an MCCP2 stream is open.
func (e *Engine) Compressing() bool { return e.z != nil }

// Close releases the MCCP2 inflater, if a stream is open. The engine keeps
// its inflater parked on a coroutine between calls, so Close must be
// called when the connection ends or that coroutine is never freed. Close is
// idempotent and always returns nil.
func (e *Engine) Close() error {
	if e.z != nil {
		e.z.close()
		e.z = nil
	}
	return nil
}

// parse runs the telnet state machine over p and returns how many bytes it
// consumed: all of them, unless an MCCP2 stream starts, in which case it
// stops right after the IAC SE that starts it.
func (e *Engine) parse(p []byte) int {
	i := 0
	for i < len(p) {
		switch e.state {
		case stData:
			j := bytes.IndexByte(p[i:], IAC)
			if j < 0 {
				e.appendText(p[i:])
				return len(p)
			}
			e.appendText(p[i : i+j])
			i += j + 1
			e.state = stIAC
		case stIAC:
			e.command(p[i])
			i++
		case stVerb:
			e.state = stData
			e.negotiate(e.verb, p[i])
			i++
		case stSBOpt:
			e.sbOpt = p[i]
			e.sb = e.sb[:0]
			e.sbRaw, e.sbOverflow = 0, false
			e.state = stSBData
			i++
		case stSBData:
			j := bytes.IndexByte(p[i:], IAC)
			if j < 0 {
				e.subnegData(p[i:])
				return len(p)
			}
			e.subnegData(p[i : i+j])
			e.sbRaw++ // the IAC itself
			i += j + 1
			e.state = stSBIAC
		case stSBIAC:
			c := p[i]
			i++
			switch c {
			case IAC:
				e.subnegData([]byte{IAC}) // counts the second IAC
				e.state = stSBData
			case SE:
				e.state = stData
				if e.endSubneg() {
					return i
				}
			default:
				// A command inside a subnegotiation is malformed: the game
				// lost the IAC SE. Drop the block and obey the command, which
				// resynchronises with the stream.
				e.dropSubneg()
				e.command(c)
			}
		}
	}
	return i
}

// command handles the byte after an IAC outside a subnegotiation.
func (e *Engine) command(c byte) {
	e.state = stData
	switch c {
	case IAC:
		e.appendText([]byte{IAC})
	case GA, EOR:
		e.emit(Event{Kind: EventPrompt})
	case SB:
		e.state = stSBOpt
	case WILL, WONT, DO, DONT:
		e.verb = c
		e.state = stVerb
	default:
		// NOP, DM, BRK, IP, AO, AYT, EC, EL and undefined commands mean
		// nothing to a client that renders a transcript.
	}
}

// subnegData adds bytes (already unescaped) to the subnegotiation, dropping
// the block once it passes the cap.
func (e *Engine) subnegData(p []byte) {
	e.sbRaw += len(p)
	if e.sbOverflow {
		return
	}
	if e.sbRaw > e.opts.MaxSubneg {
		e.dropSubneg()
		return
	}
	e.sb = append(e.sb, p...)
}

// dropSubneg forgets the block being read; the parser skips to its IAC SE.
func (e *Engine) dropSubneg() {
	e.sbOverflow = true
	e.releaseSubneg()
}

// releaseSubneg empties the subnegotiation buffer, and frees it if a large
// block grew it, so an idle session holds no large buffer.
func (e *Engine) releaseSubneg() {
	if cap(e.sb) > 4<<10 {
		e.sb = nil
	} else {
		e.sb = e.sb[:0]
	}
}

// emit appends a non-text event, after any text before it.
func (e *Engine) emit(ev Event) {
	e.flushText()
	e.evs = append(e.evs, ev)
}

// flushText turns the text gathered so far into an event.
func (e *Engine) flushText() {
	if e.text.Len() == 0 {
		return
	}
	e.evs = append(e.evs, Event{Kind: EventText, Text: e.text.String()})
	e.text.Reset()
}
