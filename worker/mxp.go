package worker

import (
	"github.com/trellis-mud/trellis/worker/mxp"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// mxpFilter is the MXP side of one game connection: every text event goes
// through its decoder, which for a game that agreed to MXP (its registry
// entry opted in, and the telnet engine reported EventMXP) turns the
// markup into the inline encoding, and for every other game only strips
// the OSC 7701 command links a game could forge. It belongs to the
// session's read goroutine; nothing else touches it.
type mxpFilter struct {
	dec *mxp.Decoder
}

// reset starts a fresh decoder for a new game connection: MXP state never
// carries over a redial.
func (f *mxpFilter) reset(cfg *Config) {
	f.dec = mxp.New(mxp.Config{ClientName: cfg.ClientName, ClientVersion: cfg.ClientVersion,
		MaxTag: cfg.MXPMaxTag, MaxDepth: cfg.MXPMaxDepth, MaxElementTotal: cfg.MXPMaxElementBytes,
		MaxEscape: cfg.MXPMaxEscape})
}

// text runs one text event through the decoder and queues the answers it
// owes the game (<SUPPORT>, <VERSION>).
func (s *session) mxpText(text string) string {
	f := &s.mxp
	if f.dec == nil {
		f.reset(&s.w.cfg)
	}
	if f.dec.Passes(text) {
		return text // the common case, without a copy
	}
	out := string(f.dec.Feed(nil, []byte(text)))
	if r := f.dec.Replies(nil); len(r) > 0 {
		s.send(r)
	}
	return out
}

// mxpEvent applies EventMXP: the decoder parses MXP from the next text on.
func (s *session) mxpEvent(ev *telnet.Event) {
	f := &s.mxp
	if f.dec == nil {
		f.reset(&s.w.cfg)
	}
	f.dec.SetEnabled(ev.MXP)
}
