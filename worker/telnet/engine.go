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
)

var eventKindNames = [...]string{"text", "prompt", "echo", "gmcp", "mssp"}

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
	// Data is the GMCP body. It is always valid JSON: a body that is not
	// JSON is delivered as a JSON string holding the body text.
	Data json.RawMessage
	MSSP map[string][]string
}

// ErrCompression is wrapped by the error Decode returns when the game's MCCP2
// stream is corrupt. See Engine.Decode.
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

// Engine is the client side of one telnet connection to a game: Decode turns
// the game's bytes into events and queues the replies owed to the game; Line,
// GMCP and Resize encode what the player sends.
//
// An Engine is not safe for concurrent use: the goroutine that reads the game
// should own it, or calls must be serialised by the caller. Call Close when
// the connection ends.
type Engine struct {
	opts    Options
	legacy  charset // the game's configured charset
	charset charset // the charset text is decoded with now

	// Parser state, kept between Decode calls so any split is survived.
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

	// Negotiation: RFC 1143 state of each option on our side and the game's.
	us, him [256]qstate

	evs     []Event // the slice Decode is appending to
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

// Decode consumes bytes read from the game and appends the events they
// produce to evs. Replies owed to the game (negotiation answers, TTYPE,
// NAWS, GMCP hello...) are queued; send them after each call (see Replies).
//
// Any split of the byte stream decodes the same, except that text is emitted
// at the end of every call, so a prompt without a newline reaches the player
// at once. Only an incomplete trailing UTF-8 sequence is held back for the
// next call.
//
// Decode returns an error only when the game's MCCP2 (compressed) stream is
// corrupt; the error wraps ErrCompression. Events decoded before the
// corruption are still appended, the rest of p is dropped, DONT MCCP2 is
// queued and the engine goes back to plain telnet and never accepts MCCP2
// again on this connection. Bytes the game compressed before it reads the
// DONT cannot be decoded, so closing the connection is the safe reaction;
// the engine stays usable for a caller that prefers to carry on.
func (e *Engine) Decode(p []byte, evs []Event) ([]Event, error) {
	e.evs = evs
	var err error
	for len(p) > 0 && err == nil {
		if e.z != nil {
			p, err = e.inflate(p)
			continue
		}
		p = p[e.parse(p):]
	}
	e.flushText()
	evs, e.evs = e.evs, nil
	return evs, err
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
func (e *Engine) Line(dst []byte, line string) []byte {
	cm := e.charset.cm
	for _, r := range line {
		switch {
		case r == '\r':
			continue
		case r == '\n':
			dst = append(dst, '\r', '\n')
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
// its inflater parked on a coroutine between Decode calls, so Close must be
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
