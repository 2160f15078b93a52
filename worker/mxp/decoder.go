package mxp

import (
	"bytes"
	"strconv"
	"strings"
)

const (
	esc = 0x1b
	bel = 0x07

	maxCSI     = 64      // a CSI longer than this is passed on as it is
	maxEntity  = 16      // bytes of an entity name between '&' and ';'
	maxReplies = 8 << 10 // reply bytes queued before more <SUPPORT>s are ignored

	// Markup the decoder adds (SGR, link openings) is paid for by the text
	// it comes from: each byte read earns markupPerByte bytes of credit, up
	// to markupBurst, and markup without credit is left out (the text still
	// shows). So output is at most 1+markupPerByte times the input plus
	// markupBurst, however a game nests elements that expand a three-byte
	// tag into a 4 KiB command link. Closings are never left out: each
	// follows an opening that was paid for.
	markupPerByte = 2
	markupBurst   = 8 << 10
)

// mode is a line mode: what MXP a line may carry.
type mode uint8

const (
	modeOpen   mode = iota // formatting tags only
	modeSecure             // every supported tag
	modeLocked             // no tags, no entities: the line is plain text
)

// state is where the parser stands in the text.
type state uint8

const (
	stText    state = iota
	stEsc           // after ESC
	stCSI           // inside ESC [ ...
	stOSC           // inside ESC ] ...
	stOSCEsc        // after an ESC inside an OSC: ST or the end of it
	stLT            // after '<': a tag or a literal '<'
	stTag           // inside a tag
	stTagSkip       // inside a tag past MaxTag: dropped up to its '>'
	stEntity        // after '&'
	stC2            // after byte C2: perhaps a C1 control (U+0080-U+009F)
)

// Decoder is the MXP state of one game connection. It is not safe for
// concurrent use; the goroutine that reads the game owns it.
type Decoder struct {
	cfg     Config
	enabled bool

	// Parser state, kept between calls so any split is survived.
	st      state
	esc     []byte // the escape sequence being held, from its ESC
	oscDrop bool   // the OSC being read is dropped (7701 or too long)
	tag     []byte // the tag being read, between '<' and '>'
	quote   byte   // the quote open inside the tag, or 0
	secure  bool   // the tag being read may be a secure one
	ent     []byte // the entity name being read

	// Line modes (ESC[<n>z).
	defMode    mode
	lineMode   mode
	tempSecure bool // ESC[4z: the next tag, if it comes at once, is secure

	// Open tags and what has been emitted for them.
	frames   []frame
	cur      style // the style the emitted SGR has set
	linkOpen bool  // a link (OSC 8 or 7701) is open
	capture  *capture

	elements  map[string]*element
	elemBytes int

	out     []byte // output of the current call
	pending []byte // output produced between calls (SetEnabled)
	replies []byte
	credit  int // markup bytes that may still be emitted
}

// New returns a Decoder with the bounds of cfg (zero fields: defaults).
// It starts disabled: only raw OSC 7701 is stripped until SetEnabled(true).
func New(cfg Config) *Decoder {
	return &Decoder{cfg: cfg.withDefaults(), credit: markupBurst}
}

// Enabled reports whether MXP is parsed.
func (d *Decoder) Enabled() bool { return d.enabled }

// SetEnabled turns MXP parsing on (the game agreed to MXP) or off. Either
// way the MXP state starts afresh: open mode, no tags open, no elements.
// Closing sequences owed for tags still open come out of the next Feed.
func (d *Decoder) SetEnabled(on bool) {
	if on == d.enabled {
		return
	}
	d.out = d.pending
	d.closeAll()
	d.pending, d.out = d.out, nil
	switch d.st {
	case stLT, stTag, stTagSkip, stEntity:
		d.st = stText // a half-read tag belongs to the old mode: dropped
	}
	d.enabled = on
	d.defMode, d.lineMode, d.tempSecure = modeOpen, modeOpen, false
	d.elements, d.elemBytes = nil, 0
}

// Feed decodes p and appends the text to dst. An incomplete escape, tag or
// entity at the end of p is held until the next call, and the text of a
// <send> whose command is its own text until its </send> (bounded by
// Config.MaxCapture and the end of the line); everything else is returned
// at once. Feeding a stream in any split gives the same concatenated text.
func (d *Decoder) Feed(dst, p []byte) []byte {
	d.out = append(dst, d.pending...)
	d.pending = d.pending[:0]
	for i := 0; i < len(p); {
		if d.st == stText {
			n := d.plainRun(p[i:])
			if n > 0 {
				d.earn(n)
				d.emitText(p[i : i+n])
				i += n
				continue
			}
		}
		d.earn(1)
		d.step(p[i])
		i++
	}
	out := d.out
	d.out = nil
	return out
}

// Passes reports whether Feed would return text unchanged, so a caller
// can skip the copy: MXP is off, nothing is held, and text holds no ESC
// and no byte that could start a C1 control.
func (d *Decoder) Passes(text string) bool {
	return !d.enabled && d.st == stText && len(d.pending) == 0 &&
		strings.IndexByte(text, esc) < 0 && strings.IndexByte(text, 0xc2) < 0
}

// Replies appends the bytes owed to the game (answers to <SUPPORT> and
// <VERSION>) to dst and clears the queue.
func (d *Decoder) Replies(dst []byte) []byte {
	dst = append(dst, d.replies...)
	d.replies = d.replies[:0]
	return dst
}

func (d *Decoder) earn(n int) { d.credit = min(markupBurst, d.credit+n*markupPerByte) }

// spend takes n bytes of markup credit, or reports false and takes none.
func (d *Decoder) spend(n int) bool {
	if d.credit < n {
		return false
	}
	d.credit -= n
	return true
}

// plainRun is the length of the leading run of p that is plain text in the
// current state: no byte the parser must look at.
func (d *Decoder) plainRun(p []byte) int {
	if !d.enabled {
		for i, c := range p {
			if c == esc || c == 0xc2 {
				return i
			}
		}
		return len(p)
	}
	if d.tempSecure {
		return 0
	}
	locked := d.lineMode == modeLocked
	for i, c := range p {
		switch c {
		case esc, '\n', 0xc2:
			return i
		case '<', '&':
			if !locked {
				return i
			}
		}
	}
	return len(p)
}

// step advances the parser by one byte.
func (d *Decoder) step(c byte) {
	switch d.st {
	case stText:
		d.text(c)
	case stEsc:
		switch c {
		case '[':
			d.esc = append(d.esc, c)
			d.st = stCSI
		case ']':
			d.esc = append(d.esc, c)
			d.st, d.oscDrop = stOSC, false
		case esc:
			// A lone ESC means nothing, and is dropped: an ESC only ever
			// leaves with the bytes of its sequence, so nothing dropped
			// later can splice a sequence together behind it.
		default:
			if c < 0x20 || c >= 0x80 {
				d.st = stText // likewise before a control or non-ASCII byte
				d.step(c)
				return
			}
			d.emit(append(d.esc, c))
			d.st = stText
		}
	case stCSI:
		switch {
		case c >= 0x40 && c <= 0x7e:
			d.esc = append(d.esc, c)
			d.st = stText
			d.csi(d.esc)
		case c >= 0x20 && c < 0x40 && len(d.esc) < maxCSI:
			d.esc = append(d.esc, c)
		default:
			// Not a CSI after all: pass on what was held and read c afresh.
			d.emit(d.esc)
			d.st = stText
			d.step(c)
		}
	case stOSC:
		switch c {
		case bel:
			d.endOSC([]byte{bel})
		case esc:
			d.st = stOSCEsc
		case '\n':
			// An OSC cannot hold a newline: the game lost its terminator.
			// Dropping it keeps the rest of the line from vanishing.
			d.st = stText
			d.step(c)
		default:
			if d.oscDrop {
				return
			}
			d.esc = append(d.esc, c)
			if len(d.esc) > d.cfg.MaxEscape || isForgedOSC(d.esc[2:], false) {
				d.oscDrop = true
				d.esc = d.esc[:2]
			}
		}
	case stOSCEsc:
		if c == '\\' {
			d.endOSC([]byte{esc, '\\'})
			return
		}
		// An unterminated OSC: dropped; the ESC starts something new.
		d.esc = append(d.esc[:0], esc)
		d.st = stEsc
		d.step(c)
	case stLT:
		if isLetter(c) || c == '/' || c == '!' {
			d.tag = append(d.tag[:0], c)
			d.quote = 0
			d.st = stTag
			return
		}
		d.emitText([]byte{'<'}) // "<3", "< 5": text
		d.st = stText
		d.step(c)
	case stTag, stTagSkip:
		d.tagByte(c)
	case stC2:
		d.st = stText
		switch {
		case c >= 0x80 && c <= 0x9f:
			// A C1 control: U+009D would open an OSC in some terminals.
		case c >= 0xa0 && c <= 0xbf:
			d.emitText([]byte{0xc2, c}) // U+00A0-U+00BF, whole
		default:
			// Invalid UTF-8 (the telnet engine never sends it): a lone C2
			// must not go out, or a C1 could be spliced together behind it.
			d.emitText([]byte("\uFFFD"))
			d.step(c)
		}
	case stEntity:
		switch {
		case c == ';':
			d.st = stText
			d.entity(string(d.ent))
		case (isLetter(c) || isDigit(c) || c == '#') && len(d.ent) < maxEntity:
			d.ent = append(d.ent, c)
		default:
			d.emitText([]byte{'&'})
			d.emitText(d.ent)
			d.st = stText
			d.step(c)
		}
	}
}

// text handles one byte of text that plainRun stopped at.
func (d *Decoder) text(c byte) {
	switch c {
	case esc:
		d.esc = append(d.esc[:0], esc)
		d.st = stEsc
		return
	case 0xc2:
		d.st = stC2
		return
	}
	if !d.enabled {
		d.emit([]byte{c})
		return
	}
	temp := d.tempSecure
	d.tempSecure = false // temp secure covers only a tag that follows at once
	switch {
	case c == '\n':
		d.newline()
	case c == '<' && (d.lineMode != modeLocked || temp):
		d.secure = d.lineMode == modeSecure || temp
		d.st = stLT
	case c == '&' && d.lineMode != modeLocked:
		d.ent = d.ent[:0]
		d.st = stEntity
	default:
		d.emitText([]byte{c})
	}
}

// tagByte reads one byte inside a tag, honouring quotes so a '>' inside an
// attribute value does not end it. A tag cannot span lines: a newline
// drops it.
func (d *Decoder) tagByte(c byte) {
	if c == '\n' {
		d.st = stText
		d.step(c)
		return
	}
	switch {
	case d.quote != 0:
		if c == d.quote {
			d.quote = 0
		}
	case c == '"' || c == '\'':
		d.quote = c
	case c == '>':
		if d.st == stTag && bytes.HasPrefix(d.tag, []byte("!--")) &&
			(len(d.tag) < 5 || !bytes.HasSuffix(d.tag, []byte("--"))) {
			break // inside a comment, '>' is text until "-->"
		}
		skip := d.st == stTagSkip
		d.st = stText
		if !skip {
			d.handleTag(string(d.tag))
		}
		return
	}
	if d.st == stTagSkip {
		return
	}
	d.tag = append(d.tag, c)
	if len(d.tag) > d.cfg.MaxTag {
		d.st = stTagSkip
		d.tag = d.tag[:0]
		if cap(d.tag) > 4<<10 {
			d.tag = nil
		}
	}
}

// newline ends the line: every tag closes (links end at the end of a
// line in the browser too), and the line mode returns to the default.
func (d *Decoder) newline() {
	d.closeAll()
	d.emitText([]byte{'\n'})
	d.lineMode = d.defMode
}

// csi handles a complete ESC [ ... final sequence: ESC[<n>z switches the
// line mode when MXP is on, anything else passes through.
func (d *Decoder) csi(seq []byte) {
	final := seq[len(seq)-1]
	if !d.enabled || final != 'z' {
		d.emit(seq)
		return
	}
	params := string(seq[2 : len(seq)-1])
	n := 0
	if params != "" {
		v, err := strconv.Atoi(params)
		if err != nil || v < 0 {
			return // not a mode we know; never shown
		}
		n = v
	}
	switch n {
	case 0:
		d.lineMode = modeOpen
	case 1:
		d.lineMode = modeSecure
	case 2:
		d.lineMode = modeLocked
	case 3:
		d.closeAll()
		d.defMode, d.lineMode = modeOpen, modeOpen
	case 4:
		d.tempSecure = true
	case 5:
		d.defMode, d.lineMode = modeOpen, modeOpen
	case 6:
		d.defMode, d.lineMode = modeSecure, modeSecure
	case 7:
		d.defMode, d.lineMode = modeLocked, modeLocked
	}
	// 10..99 select user-defined line tags, which are not supported: the
	// sequence is dropped and the line is shown as it is.
}

// endOSC finishes an OSC: passed through unless it was dropped.
func (d *Decoder) endOSC(term []byte) {
	d.st = stText
	if d.oscDrop || isForgedOSC(d.esc[2:], true) || badHyperlink(d.esc[2:]) || hasC1(d.esc) {
		return
	}
	d.emit(d.esc)
	d.emit(term)
}

// hasC1 reports whether p holds a C1 control in UTF-8 (C2 80 - C2 9F),
// which some terminals read as ST or another introducer.
func hasC1(p []byte) bool {
	for {
		i := bytes.IndexByte(p, 0xc2)
		if i < 0 || i+1 >= len(p) {
			return false
		}
		if p[i+1] >= 0x80 && p[i+1] <= 0x9f {
			return true
		}
		p = p[i+1:]
	}
}

// badHyperlink reports whether an OSC payload is an OSC 8 hyperlink to
// anything but http(s). The browser refuses those too; dropping them here
// as well means no client of the stream ever sees one.
func badHyperlink(payload []byte) bool {
	rest, ok := bytes.CutPrefix(payload, []byte("8;"))
	if !ok {
		return false
	}
	_, uri, _ := bytes.Cut(rest, []byte(";"))
	if len(uri) == 0 {
		return false // the closing form
	}
	_, ok = safeURL(string(uri))
	return !ok
}

// isForgedOSC reports whether an OSC payload (complete, or read so far) is
// the Trellis-private OSC 7701, which only this decoder may produce.
// Leading zeros are skipped, as a terminal reading the number would.
func isForgedOSC(payload []byte, complete bool) bool {
	p := bytes.TrimLeft(payload, "0")
	if !bytes.HasPrefix(p, []byte("7701")) {
		return false
	}
	if len(p) == 4 {
		return complete
	}
	return p[4] == ';'
}

// emit appends output: to the held <send> text while one is open.
func (d *Decoder) emit(b []byte) {
	if c := d.capture; c != nil {
		c.rendered = append(c.rendered, b...)
		if len(c.rendered) > d.cfg.MaxCapture {
			d.abandonCapture()
		}
		return
	}
	d.out = append(d.out, b...)
}

// emitText is emit for text the player reads (not escapes), which a held
// <send> also keeps as its command text.
func (d *Decoder) emitText(b []byte) {
	if c := d.capture; c != nil && len(c.plain)+len(b) <= d.cfg.MaxCapture {
		c.plain = append(c.plain, b...)
	}
	d.emit(b)
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
