package demogame

import "bytes"

// Telnet bytes (RFC 854) and the option codes this server speaks. See
// shared/TELNET.md for the checklist these follow.
const (
	cmdSE   = 240
	cmdNOP  = 241
	cmdAYT  = 246
	cmdGA   = 249
	cmdSB   = 250
	cmdWILL = 251
	cmdWONT = 252
	cmdDO   = 253
	cmdDONT = 254
	cmdIAC  = 255
	cmdEOR  = 239

	optECHO       = 1
	optSGA        = 3
	optTTYPE      = 24
	optEOR        = 25
	optNAWS       = 31
	optNEWENVIRON = 39
	optCHARSET    = 42
	optMSDP       = 69
	optMSSP       = 70
	optMCCP2      = 86
	optGMCP       = 201

	// Subnegotiation verbs.
	ttypeIS   = 0
	ttypeSEND = 1

	charsetREQUEST  = 1
	charsetACCEPTED = 2
	charsetREJECTED = 3

	envIS      = 0
	envSEND    = 1
	envINFO    = 2
	envVAR     = 0
	envVALUE   = 1
	envESC     = 2
	envUSERVAR = 3

	msspVAR = 1
	msspVAL = 2
)

const (
	// maxLine caps one input line. The rest of an over-long line is dropped,
	// so a client that never sends a newline costs a bounded amount of memory.
	maxLine = 4096
	// maxSubneg caps one subnegotiation body, counted after unescaping. An
	// over-long block is dropped and the decoder resynchronises on IAC SE.
	maxSubneg = 64 << 10
)

// telnetHandler receives what the decoder finds in the client's byte stream.
// The slices passed in are only valid during the call.
type telnetHandler interface {
	line(text []byte)
	command(cmd byte)
	negotiate(verb, opt byte)
	subnegotiation(opt byte, body []byte)
}

type decoderState uint8

const (
	stData   decoderState = iota
	stIAC                 // after IAC
	stOption              // after IAC WILL/WONT/DO/DONT
	stSBOpt               // after IAC SB
	stSB                  // inside SB body
	stSBIAC               // IAC inside SB body
)

// decoder is the server side of the telnet byte stream: a streaming state
// machine that keeps its place across Read boundaries, so a command split
// over two TCP segments decodes the same as one that arrives whole.
//
// Line endings follow RFC 854 loosely, as real clients do: CR LF, CR NUL,
// a bare CR and a lone LF all end a line, and the LF or NUL after a CR is
// swallowed so no blank line is invented.
type decoder struct {
	state      decoderState
	verb       byte
	sbOpt      byte
	sb         []byte
	sbOverflow bool
	line       []byte
	afterCR    bool
}

// feed decodes p, calling h for each complete line, command and
// subnegotiation. Partial lines are kept for the next call.
func (d *decoder) feed(p []byte, h telnetHandler) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch d.state {
		case stData:
			if b == cmdIAC {
				d.state = stIAC
				continue
			}
			// Fast path: copy a run of ordinary bytes at once.
			j := i
			for j < len(p) && p[j] != cmdIAC && p[j] != '\r' && p[j] != '\n' && p[j] != 0 {
				j++
			}
			if j > i {
				d.afterCR = false
				d.appendLine(p[i:j])
				i = j - 1
				continue
			}
			d.dataByte(b, h)
		case stIAC:
			d.state = stData
			switch b {
			case cmdIAC:
				d.afterCR = false
				d.appendLine([]byte{cmdIAC})
			case cmdWILL, cmdWONT, cmdDO, cmdDONT:
				d.verb = b
				d.state = stOption
			case cmdSB:
				d.state = stSBOpt
			default:
				h.command(b)
			}
		case stOption:
			d.state = stData
			h.negotiate(d.verb, b)
		case stSBOpt:
			d.sbOpt = b
			d.sb = d.sb[:0]
			d.sbOverflow = false
			d.state = stSB
		case stSB:
			if b == cmdIAC {
				d.state = stSBIAC
				continue
			}
			d.appendSB(b)
		case stSBIAC:
			switch b {
			case cmdIAC:
				d.appendSB(cmdIAC)
				d.state = stSB
			case cmdSE:
				d.state = stData
				if !d.sbOverflow {
					h.subnegotiation(d.sbOpt, d.sb)
				}
				d.shrinkSB()
			default:
				// IAC followed by anything but IAC or SE inside a block
				// is malformed: the client most likely forgot the SE.
				// Drop the block and read the byte as a command, which
				// resynchronises faster than waiting for an SE that may
				// never come.
				d.shrinkSB()
				d.state = stIAC
				i--
			}
		}
	}
}

func (d *decoder) dataByte(b byte, h telnetHandler) {
	if d.afterCR {
		d.afterCR = false
		if b == '\n' || b == 0 {
			return
		}
	}
	switch b {
	case '\r':
		d.afterCR = true
		d.endLine(h)
	case '\n':
		d.endLine(h)
	case 0:
		// A NUL outside CR NUL carries nothing.
	default:
		d.appendLine([]byte{b})
	}
}

func (d *decoder) appendLine(p []byte) {
	if room := maxLine - len(d.line); room < len(p) {
		p = p[:max(room, 0)]
	}
	d.line = append(d.line, p...)
}

func (d *decoder) endLine(h telnetHandler) {
	h.line(d.line)
	d.line = d.line[:0]
	if cap(d.line) > 1024 {
		d.line = nil // do not keep a big buffer alive on an idle connection
	}
}

func (d *decoder) appendSB(b byte) {
	if len(d.sb) >= maxSubneg {
		d.sbOverflow = true
		return
	}
	d.sb = append(d.sb, b)
}

func (d *decoder) shrinkSB() {
	d.sb = d.sb[:0]
	if cap(d.sb) > 1024 {
		d.sb = nil
	}
}

// appendEscaped appends p to dst with every IAC doubled, as RFC 1123 §3.2.6
// requires for data and for subnegotiation bodies alike.
func appendEscaped(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, cmdIAC)
		if i < 0 {
			return append(dst, p...)
		}
		dst = append(dst, p[:i+1]...)
		dst = append(dst, cmdIAC)
		p = p[i+1:]
	}
}

// appendSubneg appends IAC SB opt body IAC SE with the body escaped.
func appendSubneg(dst []byte, opt byte, body ...[]byte) []byte {
	dst = append(dst, cmdIAC, cmdSB, opt)
	for _, p := range body {
		dst = appendEscaped(dst, p)
	}
	return append(dst, cmdIAC, cmdSE)
}
