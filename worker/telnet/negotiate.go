package telnet

// qstate is one side of one option in the RFC 1143 "Q method": the state
// (NO, YES, WANTNO, WANTYES) and, for the WANT states, the queue bit that
// remembers a request to flip again once the pending one is answered. The
// method never answers a request for the state an option is already in, and
// so cannot loop however the game behaves.
type qstate uint8

const (
	qNo       qstate = iota // disabled
	qYes                    // enabled
	qWantNo                 // we sent the refusal and wait for the answer
	qWantYes                // we sent the request and wait for the answer
	qOpposite qstate = 4    // queue bit: flip again once answered
)

const qStateMask = 3

// answer is what a transition owes the game: nothing, the positive verb
// (DO for the game's options, WILL for ours) or the negative one.
type answer uint8

const (
	sendNothing answer = iota
	sendYes
	sendNo
)

func (q qstate) enabled() bool { return q == qYes }

func (q qstate) String() string {
	s := [...]string{"no", "yes", "wantno", "wantyes"}[q&qStateMask]
	if q&qOpposite != 0 {
		s += "+opposite"
	}
	return s
}

// receiveOn applies WILL (for the game's side) or DO (for ours). accept says
// whether we agree to enable the option when the peer asks out of the blue.
func (q *qstate) receiveOn(accept bool) answer {
	switch *q {
	case qNo:
		if accept {
			*q = qYes
			return sendYes
		}
		return sendNo
	case qWantNo:
		*q = qNo // the peer answered our refusal with a request: RFC 1143 takes it as NO
	case qWantNo | qOpposite:
		*q = qYes
	case qWantYes:
		*q = qYes
	case qWantYes | qOpposite:
		*q = qWantNo
		return sendNo
	}
	return sendNothing // qYes: already on, a repeat is never answered
}

// receiveOff applies WONT (for the game's side) or DONT (for ours).
func (q *qstate) receiveOff() answer {
	switch *q {
	case qYes:
		*q = qNo
		return sendNo
	case qWantNo, qWantYes, qWantYes | qOpposite:
		*q = qNo
	case qWantNo | qOpposite:
		*q = qWantYes
		return sendYes
	}
	return sendNothing // qNo: already off
}

// askOn is our own request to enable the option.
func (q *qstate) askOn() answer {
	switch *q {
	case qNo:
		*q = qWantYes
		return sendYes
	case qWantNo:
		*q = qWantNo | qOpposite
	case qWantYes | qOpposite:
		*q = qWantYes
	}
	return sendNothing
}

// askOff is our own request to disable the option.
func (q *qstate) askOff() answer {
	switch *q {
	case qYes:
		*q = qWantNo
		return sendNo
	case qWantNo | qOpposite:
		*q = qWantNo
	case qWantYes:
		*q = qWantYes | qOpposite
	}
	return sendNothing
}

// negotiate handles IAC verb opt from the game.
func (e *Engine) negotiate(verb, opt byte) {
	switch verb {
	case WILL:
		e.himTransition(opt, func(q *qstate) answer { return q.receiveOn(e.acceptHim(opt)) })
	case WONT:
		e.himTransition(opt, (*qstate).receiveOff)
	case DO:
		e.usTransition(opt, func(q *qstate) answer { return q.receiveOn(e.acceptUs(opt)) })
	case DONT:
		e.usTransition(opt, (*qstate).receiveOff)
	}
}

// himTransition moves the game's side of opt, sends DO or DONT if the move
// owes one, and runs the option's side effects if it turned on or off.
func (e *Engine) himTransition(opt byte, move func(*qstate) answer) {
	q := &e.him[opt]
	was := q.enabled()
	switch move(q) {
	case sendYes:
		e.replies = AppendNegotiation(e.replies, DO, opt)
	case sendNo:
		e.replies = AppendNegotiation(e.replies, DONT, opt)
	}
	if on := q.enabled(); on != was {
		e.himToggled(opt, on)
	}
}

// usTransition is himTransition for our side, answering WILL or WONT.
func (e *Engine) usTransition(opt byte, move func(*qstate) answer) {
	q := &e.us[opt]
	was := q.enabled()
	switch move(q) {
	case sendYes:
		e.replies = AppendNegotiation(e.replies, WILL, opt)
	case sendNo:
		e.replies = AppendNegotiation(e.replies, WONT, opt)
	}
	if on := q.enabled(); on != was {
		e.usToggled(opt, on)
	}
}

// acceptHim says which options we let the game enable on its side.
func (e *Engine) acceptHim(opt byte) bool {
	switch opt {
	case OptEcho, OptSGA, OptEOR, OptCharset, OptMSSP, OptGMCP:
		return true
	case OptMCCP2:
		return !e.mccpRefused
	case OptMSDP:
		return !e.opts.NoMSDP
	case OptMXP:
		return e.opts.MXP
	}
	return false
}

// acceptUs says which options we agree to enable on our side.
func (e *Engine) acceptUs(opt byte) bool {
	switch opt {
	case OptSGA, OptTTYPE, OptNAWS, OptCharset:
		return true
	case OptNewEnviron:
		return e.opts.MNES
	case OptMXP:
		return e.opts.MXP
	}
	return false
}

// himToggled runs the side effects of a game option turning on or off.
func (e *Engine) himToggled(opt byte, on bool) {
	switch opt {
	case OptMXP:
		e.mxpToggled(on, e.us[OptMXP].enabled())
	case OptEcho:
		e.emit(Event{Kind: EventEcho, Echo: on})
	case OptGMCP:
		if on {
			e.replies = appendGMCP(e.replies, "Core.Hello", e.gmcpHello())
			e.replies = appendGMCP(e.replies, "Core.Supports.Set", e.gmcpSupports())
		}
	}
}

// usToggled runs the side effects of one of our options turning on or off.
func (e *Engine) usToggled(opt byte, on bool) {
	switch opt {
	case OptMXP:
		e.mxpToggled(on, e.him[OptMXP].enabled())
	case OptNAWS:
		if on {
			e.replies = appendNAWS(e.replies, e.width, e.height)
		}
	case OptTTYPE:
		e.ttypeStep = 0 // a fresh agreement restarts the MTTS cycle
	}
}

// mxpToggled reports MXP turning on or off. Servers agree to it either way
// round (WILL MXP from the game, or DO MXP), so MXP is on while either side
// is; other is the state of the side that did not move.
func (e *Engine) mxpToggled(on, other bool) {
	if !other {
		e.emit(Event{Kind: EventMXP, MXP: on})
	}
}

// MXP reports whether MXP is agreed on either side.
func (e *Engine) MXP() bool { return e.him[OptMXP].enabled() || e.us[OptMXP].enabled() }
