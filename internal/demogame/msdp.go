package demogame

import (
	"bytes"
	"strconv"
)

// The game side of MSDP (option 69), cut down to what a gauge needs: the
// client may LIST, REPORT, UNREPORT, SEND and RESET the vitals below, and
// the game sends each reported variable when it changes. Values are flat
// strings (MSDP has no numbers). It is written here from the byte rules in
// shared/TELNET.md, not with worker/telnet's encoder, so that each side can
// catch the other's mistakes.

const (
	msdpVAR         = 1
	msdpVAL         = 2
	msdpTABLEOPEN   = 3
	msdpTABLECLOSE  = 4
	msdpARRAYOPEN   = 5
	msdpARRAYCLOSE  = 6
	msdpMaxRequests = 64 // names one client command may list; the rest are ignored
)

// msdpVariables are the variables the game reports, in LIST order.
var msdpVariables = []string{"HEALTH", "HEALTH_MAX", "MANA", "MANA_MAX", "MOVEMENT", "MOVEMENT_MAX"}

// msdpValue is the current value of one of msdpVariables ("" when unknown).
func (s *session) msdpValue(name string) (string, bool) {
	v := s.vitals
	var n int
	switch name {
	case "HEALTH":
		n = v.HP
	case "HEALTH_MAX":
		n = v.MaxHP
	case "MANA":
		n = v.MP
	case "MANA_MAX":
		n = v.MaxMP
	case "MOVEMENT":
		n = v.MV
	case "MOVEMENT_MAX":
		n = v.MaxMV
	default:
		return "", false
	}
	return strconv.Itoa(n), true
}

// gotMSDP handles one client block: VAR <command> VAL <name> (VAL <name>)*,
// or with the names in an array. Anything else is ignored, as the client's
// mistakes are not the game's to report. The reported set holds only known
// variables, so it stays as small as msdpVariables.
func (s *session) gotMSDP(body []byte) {
	for len(body) > 0 {
		if body[0] != msdpVAR {
			return
		}
		cmd, rest := msdpToken(body[1:])
		var names []string
		for len(rest) > 0 && rest[0] == msdpVAL {
			var v []byte
			v, rest = msdpToken(rest[1:])
			if len(v) == 0 && len(rest) > 0 && rest[0] == msdpARRAYOPEN {
				rest = rest[1:]
				for len(rest) > 0 && rest[0] == msdpVAL {
					v, rest = msdpToken(rest[1:])
					names = append(names, string(v))
				}
				if len(rest) == 0 || rest[0] != msdpARRAYCLOSE {
					return
				}
				rest = rest[1:]
				continue
			}
			names = append(names, string(v))
		}
		if len(names) > msdpMaxRequests {
			names = names[:msdpMaxRequests]
		}
		s.msdpCommand(string(cmd), names)
		body = rest
	}
}

// msdpToken splits off the text up to the next MSDP control byte.
func msdpToken(b []byte) (tok, rest []byte) {
	i := bytes.IndexFunc(b, func(r rune) bool { return r >= msdpVAR && r <= msdpARRAYCLOSE })
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

func (s *session) msdpCommand(cmd string, names []string) {
	switch cmd {
	case "LIST":
		for _, n := range names {
			switch n {
			case "COMMANDS":
				s.sendMSDPArray("COMMANDS", []string{"LIST", "REPORT", "RESET", "SEND", "UNREPORT"})
			case "REPORTABLE_VARIABLES", "SENDABLE_VARIABLES":
				s.sendMSDPArray(n, msdpVariables)
			case "REPORTED_VARIABLES":
				var r []string
				for _, v := range msdpVariables {
					if _, ok := s.msdpReported[v]; ok {
						r = append(r, v)
					}
				}
				s.sendMSDPArray(n, r)
			}
		}
	case "REPORT":
		for _, n := range names {
			if val, ok := s.msdpValue(n); ok {
				if s.msdpReported == nil {
					s.msdpReported = make(map[string]string, len(msdpVariables))
				}
				// A REPORT sends the value at once, then on every change.
				s.msdpReported[n] = val
				s.sendMSDP(n, val)
			}
		}
	case "UNREPORT":
		for _, n := range names {
			delete(s.msdpReported, n)
		}
	case "RESET":
		clear(s.msdpReported)
	case "SEND":
		for _, n := range names {
			if val, ok := s.msdpValue(n); ok {
				s.sendMSDP(n, val)
			}
		}
	}
}

// reportMSDP sends the reported variables whose value changed since they
// were last sent, in one block.
func (s *session) reportMSDP() {
	if !s.opts.usOn(optMSDP) || len(s.msdpReported) == 0 {
		return
	}
	var body []byte
	for _, n := range msdpVariables {
		last, ok := s.msdpReported[n]
		if !ok {
			continue
		}
		if val, _ := s.msdpValue(n); val != last {
			s.msdpReported[n] = val
			body = appendMSDPVar(body, n, val)
		}
	}
	if len(body) > 0 {
		s.buf = appendSubneg(s.buf, optMSDP, body)
	}
}

func (s *session) sendMSDP(name, val string) {
	s.buf = appendSubneg(s.buf, optMSDP, appendMSDPVar(nil, name, val))
}

func (s *session) sendMSDPArray(name string, vals []string) {
	b := append([]byte{msdpVAR}, name...)
	b = append(b, msdpVAL, msdpARRAYOPEN)
	for _, v := range vals {
		b = append(b, msdpVAL)
		b = append(b, v...)
	}
	b = append(b, msdpARRAYCLOSE)
	s.buf = appendSubneg(s.buf, optMSDP, b)
}

func appendMSDPVar(b []byte, name, val string) []byte {
	b = append(b, msdpVAR)
	b = append(b, name...)
	b = append(b, msdpVAL)
	return append(b, val...)
}
