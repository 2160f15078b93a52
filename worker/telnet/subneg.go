package telnet

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// endSubneg handles a complete IAC SB ... IAC SE block. Blocks for options
// that are not agreed are ignored quietly: some games send them anyway. It
// reports whether an MCCP2 stream starts right after the block.
func (e *Engine) endSubneg() (compress bool) {
	defer e.releaseSubneg()
	if e.sbOverflow {
		return false
	}
	b := e.sb
	switch e.sbOpt {
	case OptMCCP2:
		if e.him[OptMCCP2].enabled() && e.z == nil {
			e.z = newInflater()
			return true
		}
	case OptTTYPE:
		if e.us[OptTTYPE].enabled() && len(b) > 0 && b[0] == ttypeSEND {
			e.replies = appendSubnegString(e.replies, OptTTYPE, ttypeIS, e.nextTerminalType())
		}
	case OptNAWS:
		// The game has no business sending NAWS to a client.
	case OptCharset:
		if e.us[OptCharset].enabled() || e.him[OptCharset].enabled() {
			e.charsetSubneg(b)
		}
	case OptNewEnviron:
		if e.us[OptNewEnviron].enabled() && len(b) > 0 && b[0] == envSEND {
			e.replies = e.appendEnviron(e.replies, b[1:])
		}
	case OptGMCP:
		if e.him[OptGMCP].enabled() {
			ev := parseGMCP(b)
			if !e.opts.NoMSDP && isMSDPOverGMCP(ev) {
				e.emitMSDP(msdpFromJSON, ev.Data)
			} else {
				e.emit(ev)
			}
		}
	case OptMSDP:
		if e.him[OptMSDP].enabled() {
			e.emitMSDP(parseMSDP, b)
		}
	case OptMSSP:
		if e.him[OptMSSP].enabled() {
			if vars := parseMSSP(b); len(vars) > 0 {
				e.emit(Event{Kind: EventMSSP, MSSP: vars})
			}
		}
	}
	return false
}

// MTTS bits (https://tintin.mudhalla.net/protocols/mtts/).
const (
	mttsANSI         = 1
	mttsUTF8         = 4
	mtts256Colors    = 8
	mttsScreenReader = 64
	mttsProxy        = 128
	mttsTrueColor    = 256
	mttsMNES         = 512
	mttsSSL          = 2048
)

// mtts is the MTTS bit set describing Trellis right now: the UTF-8 bit
// follows the charset in use, so it appears once CHARSET agrees on UTF-8.
func (e *Engine) mtts() int {
	bits := mttsANSI | mtts256Colors | mttsProxy | mttsTrueColor
	if e.charset.cm == nil {
		bits |= mttsUTF8
	}
	if e.opts.MNES {
		bits |= mttsMNES
	}
	if e.opts.TLS {
		bits |= mttsSSL
	}
	if e.opts.ScreenReader {
		bits |= mttsScreenReader
	}
	return bits
}

// nextTerminalType walks the MTTS cycle: client name, terminal type,
// "MTTS n", "MTTS n" again (the repeat tells the game the list ended), and
// then from the start.
func (e *Engine) nextTerminalType() string {
	step := e.ttypeStep
	e.ttypeStep = (step + 1) % 4
	switch step {
	case 0:
		return strings.ToUpper(e.opts.ClientName)
	case 1:
		return strings.ToUpper(e.opts.TerminalType)
	default:
		return "MTTS " + strconv.Itoa(e.mtts())
	}
}

// appendNAWS appends the NAWS subnegotiation for a window size.
func appendNAWS(dst []byte, width, height int) []byte {
	size := [4]byte{byte(width >> 8), byte(width), byte(height >> 8), byte(height)}
	return AppendSubnegotiation(dst, OptNAWS, size[:])
}

var ttablePrefix = []byte("[TTABLE]")

// charsetSubneg answers a CHARSET REQUEST (RFC 2066): UTF-8 if the game
// offers it, else the game's configured legacy charset if offered, else
// REJECTED. Translation tables are not supported.
func (e *Engine) charsetSubneg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case charsetREQUEST:
		name, cs, ok := e.chooseCharset(b[1:])
		if !ok {
			e.replies = append(e.replies, IAC, SB, OptCharset, charsetREJECTED, IAC, SE)
			return
		}
		e.replies = appendSubnegString(e.replies, OptCharset, charsetACCEPTED, name)
		e.switchCharset(cs)
	case charsetTTABLEIS:
		e.replies = append(e.replies, IAC, SB, OptCharset, charsetTTABLEREJECTED, IAC, SE)
	}
}

// chooseCharset picks a charset from a REQUEST body:
// ["[TTABLE]" version] sep name (sep name)*. The separator is its first byte.
func (e *Engine) chooseCharset(req []byte) (name string, cs charset, ok bool) {
	if bytes.HasPrefix(req, ttablePrefix) {
		req = req[len(ttablePrefix):]
		if len(req) > 0 {
			req = req[1:] // the table version byte
		}
	}
	if len(req) < 2 {
		return "", charset{}, false
	}
	names := bytes.Split(req[1:], req[:1])
	for _, n := range names {
		if isUTF8Name(string(n)) {
			return string(n), utf8Charset, true
		}
	}
	if e.legacy.cm == nil {
		return "", charset{}, false
	}
	for _, n := range names {
		if len(n) == 0 || !utf8.Valid(n) {
			continue
		}
		if cs, err := lookupCharset(string(n)); err == nil && cs.cm == e.legacy.cm {
			return string(n), cs, true
		}
	}
	return "", charset{}, false
}

// appendEnviron answers a NEW-ENVIRON SEND (RFC 1572) with the MNES
// variables: the ones asked for, or all of them when the request names none.
// A variable we do not know is sent without a value, which means undefined.
func (e *Engine) appendEnviron(dst, req []byte) []byte {
	vars := e.mnesVars()
	var body []byte
	body = append(body, envIS)
	all := func(kind byte) {
		if kind != envVAR {
			return // MNES variables are all VARs: we have no USERVARs
		}
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			body = appendEnvVar(body, envVAR, name, vars[name], true)
		}
	}
	reqs := parseEnvRequest(req)
	if len(reqs) == 0 {
		all(envVAR)
	}
	for _, r := range reqs {
		if r.name == "" {
			all(r.kind)
			continue
		}
		v, ok := vars[r.name]
		body = appendEnvVar(body, r.kind, r.name, v, ok)
	}
	return AppendSubnegotiation(dst, OptNewEnviron, body)
}

// mnesVars is the MNES variable set: the automatic ones, overridden and
// extended by Options.Env.
func (e *Engine) mnesVars() map[string]string {
	vars := map[string]string{
		"CLIENT_NAME":    e.opts.ClientName,
		"CLIENT_VERSION": e.opts.ClientVersion,
		"MTTS":           strconv.Itoa(e.mtts()),
		"CHARSET":        e.charset.name,
	}
	for k, v := range e.opts.Env {
		vars[k] = v
	}
	return vars
}

type envRequest struct {
	kind byte // envVAR or envUSERVAR
	name string
}

// parseEnvRequest splits the body of a SEND into (type, name) pairs,
// undoing ESC escapes inside names.
func parseEnvRequest(b []byte) []envRequest {
	var reqs []envRequest
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if kind != envVAR && kind != envUSERVAR {
			continue // garbage before the first type byte
		}
		var name []byte
		for len(b) > 0 && b[0] != envVAR && b[0] != envUSERVAR {
			if b[0] == envESC && len(b) > 1 {
				b = b[1:]
			}
			name = append(name, b[0])
			b = b[1:]
		}
		reqs = append(reqs, envRequest{kind: kind, name: string(name)})
	}
	return reqs
}

// appendEnvVar appends kind name [VALUE value], escaping the RFC 1572 type
// bytes inside name and value.
func appendEnvVar(dst []byte, kind byte, name, value string, defined bool) []byte {
	dst = append(dst, kind)
	dst = appendEnvString(dst, name)
	if defined {
		dst = append(dst, envVALUE)
		dst = appendEnvString(dst, value)
	}
	return dst
}

func appendEnvString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] <= envUSERVAR {
			dst = append(dst, envESC)
		}
		dst = append(dst, s[i])
	}
	return dst
}

// parseGMCP splits "Package.Message [JSON]". Data is nil without a body and
// is always valid JSON otherwise: a body that does not parse is delivered as
// a JSON string, so it can be embedded in the browser protocol as is.
func parseGMCP(b []byte) Event {
	pkg, body := b, []byte(nil)
	if i := bytes.IndexAny(b, " \t\r\n"); i >= 0 {
		pkg, body = b[:i], bytes.TrimSpace(b[i+1:])
	}
	ev := Event{Kind: EventGMCP, Package: validString(pkg)}
	switch {
	case len(body) == 0:
	case utf8.Valid(body) && json.Valid(body):
		ev.Data = json.RawMessage(bytes.Clone(body))
	default:
		ev.Data, _ = json.Marshal(validString(body)) // cannot fail for a string
	}
	return ev
}

// appendGMCP appends IAC SB GMCP pkg [SP data] IAC SE.
func appendGMCP(dst []byte, pkg string, data []byte) []byte {
	dst = append(dst, IAC, SB, OptGMCP)
	dst = AppendEscaped(dst, []byte(pkg))
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = AppendEscaped(dst, data)
	}
	return append(dst, IAC, SE)
}

func (e *Engine) gmcpHello() []byte {
	hello, _ := json.Marshal(struct {
		Client  string `json:"client"`
		Version string `json:"version"`
	}{e.opts.ClientName, e.opts.ClientVersion})
	return hello
}

func (e *Engine) gmcpSupports() []byte {
	list, _ := json.Marshal(e.opts.GMCPSupports)
	return list
}

// parseMSSP reads (VAR name (VAL value)+)+. A variable may carry several
// values; a VAR without VAL maps to an empty list.
func parseMSSP(b []byte) map[string][]string {
	var vars map[string][]string
	var name string
	haveName := false
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		end := bytes.IndexAny(b, "\x01\x02")
		if end < 0 {
			end = len(b)
		}
		field := validString(b[:end])
		b = b[end:]
		switch kind {
		case msspVAR:
			if vars == nil {
				vars = make(map[string][]string)
			}
			name, haveName = field, true
			if _, ok := vars[name]; !ok {
				vars[name] = []string{}
			}
		case msspVAL:
			if haveName {
				vars[name] = append(vars[name], field)
			}
		}
	}
	return vars
}

func validString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
