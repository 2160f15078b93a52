package demogame

// optionState is one side of one option in the RFC 1143 "Q method", cut down
// to what a server that only ever asks once needs: no queue bit, because this
// server never changes its mind about an option while a request is in flight.
type optionState uint8

const (
	optNo optionState = iota
	optWantYes
	optYes
	optWantNo
)

// options tracks both sides of every option: "us" is what the server does
// (WILL/WONT), "him" is what the client does (DO/DONT asks us; WILL/WONT is
// the client's answer to our DO).
type options struct {
	us, him [256]optionState
}

// negotiation is what the session decides after a verb arrives: the bytes to
// send back (if any) and the change of state the session should react to.
type negotiation struct {
	reply   []byte // IAC verb opt to send, or nil
	enabled bool   // the option just became active
	refused bool   // our own request was turned down
	ended   bool   // an active option was switched off by the client
}

// receive applies one WILL/WONT/DO/DONT from the client. allowed reports
// whether the server agrees to an unsolicited request for that side.
func (o *options) receive(verb, opt byte, allowUs, allowHim func(byte) bool) negotiation {
	switch verb {
	case cmdDO:
		return step(&o.us[opt], true, opt, cmdWILL, cmdWONT, allowUs)
	case cmdDONT:
		return step(&o.us[opt], false, opt, cmdWILL, cmdWONT, allowUs)
	case cmdWILL:
		return step(&o.him[opt], true, opt, cmdDO, cmdDONT, allowHim)
	case cmdWONT:
		return step(&o.him[opt], false, opt, cmdDO, cmdDONT, allowHim)
	}
	return negotiation{}
}

// step is RFC 1143 §7 for one side. yes is the direction the peer asks for;
// agree and refuse are our verbs for that side.
func step(s *optionState, yes bool, opt, agree, refuse byte, allowed func(byte) bool) negotiation {
	switch {
	case yes && *s == optNo:
		if allowed(opt) {
			*s = optYes
			return negotiation{reply: []byte{cmdIAC, agree, opt}, enabled: true}
		}
		return negotiation{reply: []byte{cmdIAC, refuse, opt}}
	case yes && *s == optWantYes:
		*s = optYes
		return negotiation{enabled: true}
	case yes && *s == optWantNo:
		// The peer answered our WONT/DONT with the opposite: RFC 1143
		// calls this an error; settle on "no" and say nothing more.
		*s = optNo
	case !yes && *s == optYes:
		*s = optNo
		return negotiation{reply: []byte{cmdIAC, refuse, opt}, ended: true}
	case !yes && *s == optWantYes:
		*s = optNo
		return negotiation{refused: true}
	case !yes && *s == optWantNo:
		*s = optNo
	}
	// Requests for the state we are already in are not answered: that is
	// what keeps two telnet implementations out of a negotiation loop.
	return negotiation{}
}

// ask starts enabling (on=true) or disabling an option on one side and
// returns the bytes to send, or nil when nothing needs saying.
func ask(s *optionState, on bool, opt, yesVerb, noVerb byte) []byte {
	switch {
	case on && (*s == optNo):
		*s = optWantYes
		return []byte{cmdIAC, yesVerb, opt}
	case !on && (*s == optYes || *s == optWantYes):
		*s = optWantNo
		return []byte{cmdIAC, noVerb, opt}
	}
	return nil
}

func (o *options) askUs(opt byte, on bool) []byte  { return ask(&o.us[opt], on, opt, cmdWILL, cmdWONT) }
func (o *options) askHim(opt byte, on bool) []byte { return ask(&o.him[opt], on, opt, cmdDO, cmdDONT) }
func (o *options) usOn(opt byte) bool              { return o.us[opt] == optYes }
func (o *options) himOn(opt byte) bool             { return o.him[opt] == optYes }
