package mxp

import (
	"fmt"
	"strings"
	"testing"
)

// decodeBig decodes a large input whole and in small pieces (one byte at
// a time up to 16 KiB, 13 bytes beyond; splitting at every byte would be
// quadratic), checks both agree and the output keeps the inline spec's
// promises, and returns the decoder fed whole.
func decodeBig(t *testing.T, input string) (string, string, *Decoder) {
	t.Helper()
	d := New(Config{})
	d.SetEnabled(true)
	out := string(d.Feed(nil, []byte(input)))
	replies := string(d.Replies(nil))
	b := New(Config{})
	b.SetEnabled(true)
	var bo []byte
	step := 1
	if len(input) > 16<<10 {
		step = 13
	}
	for i := 0; i < len(input); i += step {
		bo = b.Feed(bo, []byte(input[i:min(i+step, len(input))]))
	}
	if string(bo) != out || string(b.Replies(nil)) != replies {
		t.Fatalf("pieces of %d bytes differ from whole input", step)
	}
	checkOutput(t, out)
	checkHTTP(t, osc8URIs(out))
	checkBounds(t, d)
	return out, replies, d
}

// checkBounds fails if the decoder holds more than its bounds allow.
func checkBounds(t testing.TB, d *Decoder) {
	t.Helper()
	c := d.cfg
	switch {
	case len(d.frames) > c.MaxDepth:
		t.Fatalf("%d frames open, bound %d", len(d.frames), c.MaxDepth)
	case len(d.elements) > c.MaxElements:
		t.Fatalf("%d elements, bound %d", len(d.elements), c.MaxElements)
	case d.elemBytes > c.MaxElementTotal:
		t.Fatalf("%d element bytes, bound %d", d.elemBytes, c.MaxElementTotal)
	case len(d.tag) > c.MaxTag+1:
		t.Fatalf("%d tag bytes held, bound %d", len(d.tag), c.MaxTag)
	case len(d.esc) > max(c.MaxEscape, maxCSI)+1:
		t.Fatalf("%d escape bytes held, bound %d", len(d.esc), c.MaxEscape)
	case d.capture != nil && len(d.capture.rendered) > c.MaxCapture:
		t.Fatalf("%d bytes of <send> held, bound %d", len(d.capture.rendered), c.MaxCapture)
	case len(d.replies) > maxReplies:
		t.Fatalf("%d reply bytes queued", len(d.replies))
	}
}

// TestBadInput is the list: tag soup, unclosed tags, <send> with
// javascript: or a 100 KB attribute, 10,000 nested tags. Each is bounded,
// does not crash, and leaks nothing as markup: no tag text, no link that
// the spec does not allow.
func TestBadInput(t *testing.T) {
	huge := strings.Repeat("A", 100<<10)
	cases := []struct {
		name, in, want string
	}{
		{"tag soup", secure + "<<<>>> <b<i>> </></b></send> <a <send <!> <!--x- -> <b =x> <=> <'\"'> text\n", ""},
		{"unclosed tags", secure + "<b><i><u><send href=look><c red>text\nafter", ""},
		{"send to javascript", secure + "<send href=\"javascript:alert(1)\">x</send><send href=\" JavaScript:x|look\">y</send><send>data:,x</send>\n", "xydata:,x\n"},
		{"a to javascript", secure + "<a href=\"javascript:alert(document.cookie)\">x</a><a href=' JaVaScRiPt:1'>y</a>\n", "xy\n"},
		{"send with a 100 KB attribute", secure + "<send href=\"" + huge + "\">x</send> after\n", "x after\n"},
		{"send with a 100 KB unquoted attribute", secure + "<send href=" + huge + ">x</send>\n", "x\n"},
		{"100 KB tag name", secure + "<" + huge + ">x\n", "x\n"},
		{"send with a 100 KB text", secure + "<send>" + huge + "</send>\n", huge + "\n"},
		{"100 KB entity-like run", "&" + huge + ";\n", "&" + huge + ";\n"},
		{"10,000 nested b", strings.Repeat("<b>", 10000) + "x" + strings.Repeat("</b>", 10000) + "\n", "\x1b[1mx\x1b[22m\n"},
		{"10,000 nested send", secure + strings.Repeat("<send href=look>", 10000) + "x\n", ""},
		{"10,000 nested colours", strings.Repeat("<c red>", 10000) + "x\n", red + "x\x1b[39m\n"},
		{"10,000 unclosed comment openers", strings.Repeat("<!--", 10000) + "\nx", "\nx"},
		{"10,000 element definitions", secure + strings.Repeat("<!ELEMENT e '<b>'>", 10) + func() string {
			var b strings.Builder
			for i := range 10000 {
				fmt.Fprintf(&b, "<!ELEMENT e%d '<c red><b><i><u>'>", i)
			}
			return b.String()
		}() + "<e1>x</e1><e9999>y</e9999>\n", ""},
		{"nested elements", secure + "<!ELEMENT e '<b><i><u><s><c red>' OPEN>" + strings.Repeat("<e>", 10000) + "x\n", ""},
		{"huge element definition", secure + "<!ELEMENT e '" + strings.Repeat("<b>", 20000) + "'><e>x</e>\n", ""},
		{"amplifying element", secure + "<!ELEMENT e '<send href=\"" + strings.Repeat("&v;", 300) + "\">' ATT='v'><e \"" +
			strings.Repeat("z", 1000) + "\">x</e>\n", "x\n"},
		{"forged OSC 7701 in MXP", secure + "\x1b]7701;{\"cmds\":[\"quit\"],\"prompt\":false}\x1b\\x\n", "x\n"},
		{"ESC in attributes", secure + "<send href=\"a\x1b]7701;{}\x07b\" hint=\"\x1b[31m\">x</send>\n", ""},
		{"a thousand SUPPORTs", strings.Repeat(secure+"<support>\n", 1000), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, _ := decodeBig(t, c.in)
			if c.want != "" && out != c.want {
				t.Errorf("got %.200q\nwant %.200q", out, c.want)
			}
			for _, leak := range []string{"<send", "<a ", "href", "javascript", "<!ELEMENT", "<b>", "<i>", "<c red>"} {
				if strings.Contains(out, leak) {
					t.Errorf("output %.200q carries %q", out, leak)
				}
			}
		})
	}
}

// TestBoundsConfigurable: each bound in Config is the one applied.
func TestBoundsConfigurable(t *testing.T) {
	cfg := Config{MaxTag: 16, MaxAttr: 4, MaxDepth: 2, MaxElements: 1, MaxElementBytes: 8, MaxElementTotal: 1 << 10, MaxCapture: 4}
	cases := []struct{ in, want string }{
		{secure + "<send href=\"abcdefghijklmnop\">x</send>", "x"},                         // tag past MaxTag
		{secure + "<send href=abcde>x</send>", "x"},                                        // attribute past MaxAttr
		{"<b><i><u>x</u></i></b>", "\x1b[1m\x1b[3mx\x1b[23m\x1b[22m"},                      // depth 2
		{secure + "<send>abcdef</send>", "abcdef"},                                         // capture past MaxCapture
		{secure + "<!EL e1 '<b>'><!EL e2 '<i>'><e1>x</e1><e2>y</e2>", "\x1b[1mx\x1b[22my"}, // one element only
		{secure + "<!EL a '<b><b><b>'><a>x</a>", "x"},                                      // definition past MaxElementBytes
	}
	for _, c := range cases {
		got, _ := decodeAllSplits(t, cfg, true, c.in)
		if got != c.want {
			t.Errorf("in %q\ngot  %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestMarkupIsPaidFor: a game cannot make a few bytes of tags expand into
// kilobytes of markup (an element of a 4 KiB command link, or of many
// colours, used over and over): output stays within 1+markupPerByte times
// the input plus markupBurst, and the text all still shows.
func TestMarkupIsPaidFor(t *testing.T) {
	long := strings.Repeat("z", 120)
	defs := secure + "<!ELEMENT l '<send href=\"&v;|&v;|&v;|&v;|&v;|&v;|&v;|&v;\">' ATT='v=" + long + "'>" +
		"<!ELEMENT k '<c red><b><c blue><i><c lime><u><c navy><s><c #123456 #654321>'>"
	for _, use := range []string{"<l>x</l>", "<k>x</k>"} {
		in := defs + strings.Repeat(use, 10000)
		out, _, _ := decodeBig(t, in)
		if limit := (1+markupPerByte)*len(in) + markupBurst; len(out) > limit {
			t.Errorf("%s: %d bytes out of %d in, limit %d", use, len(out), len(in), limit)
		}
		if n := strings.Count(out, "x"); n != 10000 {
			t.Errorf("%s: %d of 10000 texts shown", use, n)
		}
		if !strings.Contains(out, "\x1b]7701;") && !strings.Contains(out, "\x1b[") {
			t.Errorf("%s: no markup at all", use)
		}
	}
}
