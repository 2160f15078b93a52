package demogame

// MXP (option 91), offered only with Config.MXP: once the client agrees
// (DO MXP) the server starts MXP (IAC SB MXP IAC SE, as the Zuggsoft spec
// has servers do) and look adds one secure line with an exit link and a
// coloured word, so a client's rendering of MXP can be tested end to end.

const optMXP = 91

// mxpRoomLine is the MXP line look shows: a <send> exit (a command link
// that sends "north") and a coloured word, on a secure line (ESC[1z).
const mxpRoomLine = "\x1b[1zExits: <send href=\"north\" hint=\"Go north\">north</send>. " +
	"The vines bear one <color fore=gold>golden</color> rose.\r\n"

// mxpStart begins MXP mode once the client agreed.
func (s *session) mxpStart() {
	s.buf = append(s.buf, cmdIAC, cmdSB, optMXP, cmdIAC, cmdSE)
}

// mxpLook is look's MXP line, for clients that agreed to MXP.
func (s *session) mxpLook() {
	if s.opts.usOn(optMXP) {
		s.text(mxpRoomLine)
	}
}
