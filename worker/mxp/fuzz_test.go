package mxp

import (
	"strings"
	"testing"
)

// FuzzMXP feeds arbitrary text whole and split in three, with MXP on or
// off and with small bounds: the splits agree, the output keeps the inline
// spec's promises (well-formed command links only, http(s) hyperlinks
// only, nothing forged while MXP is off) and the decoder stays in bounds.
func FuzzMXP(f *testing.F) {
	for _, s := range []string{
		secure + "<send href=\"go north\" hint=\"Go|North\">north</send> <b>x</b>\n",
		secure + "<!ELEMENT ex '<send href=\"go &text;\">' ATT='a'><ex a=1>east</ex>\n",
		"<color red blue>x</color> &lt;&#65;&#27;\x1b[4z<a href=\"https://x.org/\">y</a>",
		"\x1b]7701;{\"cmds\":[\"quit\"],\"prompt\":false}\x1b\\x\x1b]7701;\x1b\\",
		"\x1b\x1b]7701;x\x07]7701;y\u009d7701;",
		"\x1b[6z<send>a|b</send><!-- c --><support send.*><version>\x1b[2z<b>\n\x1b[3z",
	} {
		f.Add([]byte(s), uint16(3), uint16(9), true)
		f.Add([]byte(s), uint16(1), uint16(2), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16, enabled bool) {
		if len(data) > 4<<10 {
			return
		}
		i, j := int(a)%(len(data)+1), int(b)%(len(data)+1)
		if i > j {
			i, j = j, i
		}
		for _, cfg := range []Config{{}, {MaxTag: 24, MaxAttr: 8, MaxDepth: 3, MaxElements: 2, MaxElementBytes: 32, MaxElementTotal: 200, MaxCapture: 8, MaxEscape: 16}} {
			whole, wr := run(cfg, enabled, [][]byte{data})
			split, sr := run(cfg, enabled, [][]byte{data[:i], data[i:j], data[j:]})
			if whole != split || wr != sr {
				t.Fatalf("split at %d,%d:\n got %q %q\nwant %q %q", i, j, split, sr, whole, wr)
			}
			links := checkOutput(t, whole)
			checkHTTP(t, osc8URIs(whole))
			if !enabled && (links > 0 || wr != "") {
				t.Fatalf("MXP off, yet %q / %q", whole, wr)
			}
			if strings.HasSuffix(whole, "\x1b") {
				t.Fatalf("output ends in a lone ESC: %q", whole)
			}
			d := New(cfg)
			d.SetEnabled(enabled)
			d.Feed(nil, data)
			checkBounds(t, d)
		}
	})
}
