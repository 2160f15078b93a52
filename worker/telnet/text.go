package telnet

import (
	"encoding/binary"
	"unicode/utf8"
)

// Text decoding. Line endings are handled on bytes, before the charset: NUL
// is dropped and LF is the newline; CR LF, LF CR and lone LF become "\n"
// without inventing blank lines. A bare carriage return (CR NUL, or CR
// before anything but LF) is kept as one "\r": games redraw a line with it
// ("50%\r60%", a prompt wiped and rewritten), and only the viewer can
// overwrite what it already drew. So that "\r" means exactly "back to
// column 0 of a line that has something on it", a CR is held until the next
// data byte shows whether an LF follows (CR LF is a newline, never "\r\n"),
// runs of CR collapse to one, and a CR at the start of a line is dropped
// (it moves nothing; LF CR line endings stay plain "\n"). This is only sound
// for ASCII-compatible charsets, which is why New refuses others.

// appendText decodes data bytes into the pending text.
func (e *Engine) appendText(p []byte) {
	if len(p) == 0 {
		return
	}
	if e.charset.cm != nil {
		e.appendLegacy(p)
		return
	}
	e.text.Grow(len(p))
	for len(p) > 0 {
		if e.cr {
			if p = e.resolveCR(p); len(p) == 0 {
				return
			}
		}
		if e.npend > 0 {
			p = e.completeRune(p)
			e.midLine = true
			continue
		}
		// Gather the longest span that passes through unchanged (ASCII
		// other than CR and NUL, and valid multi-byte sequences), and write
		// it at once.
		n := 0
		for n < len(p) {
			n += asciiPrefix(p[n:])
			if n == len(p) || p[n] < utf8.RuneSelf {
				break
			}
			r, size := utf8.DecodeRune(p[n:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			n += size
		}
		if n > 0 {
			e.text.Write(p[:n])
			e.midLine = p[n-1] != '\n'
		}
		p = p[n:]
		if len(p) == 0 {
			return
		}
		c := p[0]
		switch {
		case c < utf8.RuneSelf: // CR or NUL
			e.control(c)
			p = p[1:]
		case !utf8.FullRune(p):
			e.npend = copy(e.pend[:], p) // wait for the rest of the sequence
			return
		default: // invalid
			e.text.WriteString("\uFFFD")
			e.midLine = true
			p = p[1:]
		}
	}
}

// control takes a CR or NUL that the fast path stopped at. NUL is dropped
// (CR NUL is how RFC 854 spells a bare CR; elsewhere it is padding). A CR
// is held for resolveCR, unless the line is empty and it moves nothing.
func (e *Engine) control(c byte) {
	if c == '\r' && e.midLine {
		e.cr = true
	}
}

// resolveCR decides a held CR from the data byte after it and returns the
// rest of p: LF makes it part of the newline, NUL and more CRs keep it
// waiting, anything else makes it a bare "\r".
func (e *Engine) resolveCR(p []byte) []byte {
	for len(p) > 0 && (p[0] == '\r' || p[0] == 0) {
		p = p[1:]
	}
	if len(p) == 0 {
		return p
	}
	e.cr = false
	if p[0] != '\n' {
		e.text.WriteByte('\r')
		e.midLine = false
	}
	return p
}

// completeRune decodes the UTF-8 sequence held back from earlier data, using
// the first bytes of p, exactly as if the data had arrived in one piece. It
// returns the unconsumed rest of p.
func (e *Engine) completeRune(p []byte) []byte {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], e.pend[:e.npend])
	n += copy(buf[n:], p)
	if !utf8.FullRune(buf[:n]) {
		// Still short; FullRune is true for any 4 bytes, so all of p fit.
		e.npend += copy(e.pend[e.npend:], p)
		return nil
	}
	r, size := utf8.DecodeRune(buf[:n])
	if r == utf8.RuneError && size == 1 {
		e.text.WriteString("\uFFFD")
	} else {
		e.text.Write(buf[:size])
	}
	if size >= e.npend {
		p = p[size-e.npend:]
		e.npend = 0
		return p
	}
	// Only the first held byte was consumed (it was invalid); the others are
	// decoded again, as they would have been in one piece.
	e.npend = copy(e.pend[:], e.pend[size:e.npend])
	return p
}

// appendLegacy decodes data in a single-byte charset.
func (e *Engine) appendLegacy(p []byte) {
	e.text.Grow(len(p))
	cm := e.charset.cm
	for len(p) > 0 {
		if e.cr {
			if p = e.resolveCR(p); len(p) == 0 {
				return
			}
		}
		if n := asciiPrefix(p); n > 0 {
			e.text.Write(p[:n])
			e.midLine = p[n-1] != '\n'
			p = p[n:]
			continue
		}
		if c := p[0]; c >= utf8.RuneSelf {
			e.text.WriteRune(cm.DecodeByte(c))
			e.midLine = true
		} else {
			e.control(c)
		}
		p = p[1:]
	}
}

// switchCharset changes the charset text is decoded with. A UTF-8 sequence
// cut off by the switch is replaced by U+FFFD.
func (e *Engine) switchCharset(cs charset) {
	if e.npend > 0 {
		e.text.WriteString("\uFFFD")
		e.npend = 0
	}
	e.charset = cs
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
	cr8 = lo8 * '\r'
)

// asciiPrefix returns the length of the leading run of bytes that pass
// through unchanged: ASCII except NUL and CR. It checks eight bytes per step
// (SWAR), which keeps plain text near memcpy speed.
func asciiPrefix(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := binary.LittleEndian.Uint64(p[i:])
		cr := v ^ cr8
		// High bit set in any byte, or a zero byte in v (NUL) or in cr (CR).
		if (v|(v-lo8)&^v|(cr-lo8)&^cr)&hi8 != 0 {
			break
		}
	}
	for ; i < len(p); i++ {
		if c := p[i]; c >= utf8.RuneSelf || c == '\r' || c == 0 {
			break
		}
	}
	return i
}
