package demogame

import (
	"strings"
	"testing"
)

// With Config.MXP the game offers MXP; a client that agrees gets MXP
// started (IAC SB MXP IAC SE) and an MXP line in look, one that refuses
// gets neither; without Config.MXP nothing is offered.
func TestMXPDemo(t *testing.T) {
	for _, c := range []struct {
		name         string
		offer, agree bool
	}{{"agreed", true, true}, {"refused", true, false}, {"not offered", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			_, addr := startServer(t, Config{MXP: c.offer})
			o := acceptAll()
			o.accept[optMXP] = c.agree
			cl := dialClient(t, addr, o)
			cl.login("mia", "pw")
			cl.do("look", "We speak UTF-8.")
			s := cl.text()
			offered := strings.Contains(s, "<WILL 91>")
			started := strings.Contains(s, sbToken(optMXP, nil))
			shown := strings.Contains(s, mxpRoomLine)
			if offered != c.offer || started != (c.offer && c.agree) || shown != (c.offer && c.agree) {
				t.Errorf("offered %v, started %v, shown %v in %q", offered, started, shown, s)
			}
		})
	}
}
