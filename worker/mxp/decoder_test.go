package mxp

import (
	"strings"
	"testing"
)

const (
	secure = "\x1b[1z"
	red    = "\x1b[38;2;255;0;0m"
)

// TestDecode: each case decoded whole, split at every byte and one byte at
// a time, gives exactly the inline spec's encoding.
func TestDecode(t *testing.T) {
	look := sendOSC([]string{"look"}, nil, false)
	cases := []struct {
		name, in, want, replies string
	}{
		{"plain text passes", "hello \x1b[31mworld\x1b[0m\n", "hello \x1b[31mworld\x1b[0m\n", ""},
		{"bold italic underline strike", "<b>b</b><i>i</i><u>u</u><s>s</s>",
			"\x1b[1mb\x1b[22m\x1b[3mi\x1b[23m\x1b[4mu\x1b[24m\x1b[9ms\x1b[29m", ""},
		{"closing tag with junk", "<B>x</b junk><i>y</I >", "\x1b[1mx\x1b[22m\x1b[3my\x1b[23m", ""},
		{"aliases close each other", "<bold>x</b><em>y</italic><high>h</h>", "\x1b[1mx\x1b[22m\x1b[3my\x1b[23m\x1b[1mh\x1b[22m", ""},
		{"nested style restores the outer one", "<b><i>x</i>y</b>", "\x1b[1m\x1b[3mx\x1b[23my\x1b[22m", ""},
		{"colour by name and hex, fore and back", "<color fore=red back=#0000ff>x</color><c lime>y</c>",
			"\x1b[38;2;255;0;0;48;2;0;0;255mx\x1b[39;49m\x1b[38;2;0;255;0my\x1b[39m", ""},
		{"inner colour gives way to outer", "<c red><c blue>x</c>y</c>",
			red + "\x1b[38;2;0;0;255mx" + red + "y\x1b[39m", ""},
		{"unknown colour changes nothing", "<c nosuch>x</c>", "x", ""},
		{"entities", "&lt;b&gt; &amp; &quot;q&quot; &apos; &#65;&#x42; &nbsp;.", "<b> & \"q\" ' AB \u00a0.", ""},
		{"entity for a control character is dropped", "a&#27;[31mb&#0;c&#x9d;d", "a[31mbcd", ""},
		{"unknown entity stays", "&bogus; & x &\n", "&bogus; & x &\n", ""},
		{"literal < that is no tag", "<3 and a < b, 5<6", "<3 and a < b, 5<6", ""},
		{"unknown tags are stripped", "<image src=x.png><font face=x>a</font><script>b</script>", "ab", ""},
		{"comment", "a<!-- <b> -> x -->b", "ab", ""},
		{"send in a secure line", secure + "<send href=\"go north\" hint=\"Go north\">north</send>\n",
			sendOSC([]string{"go north"}, []string{"Go north"}, false) + "north" + sendClose + "\n", ""},
		{"send positional", secure + "<send \"look\">here</send>", look + "here" + sendClose, ""},
		{"send with its text as command", secure + "<send>look</send>", look + "look" + sendClose, ""},
		{"send with &text; and prompt", secure + "<send href=\"say &text;\" prompt>hi</send>",
			sendOSC([]string{"say hi"}, nil, true) + "hi" + sendClose, ""},
		{"send menu, tooltip first", secure + "<send href=\"look|kill &text;\" hint=\"Orc|Look|Kill\">orc</send>",
			sendOSC([]string{"look", "kill orc"}, []string{"Look", "Kill"}, false) + "orc" + sendClose, ""},
		{"send menu, hints paired", secure + "<send \"a|b\" \"A|B\">x</send>",
			sendOSC([]string{"a", "b"}, []string{"A", "B"}, false) + "x" + sendClose, ""},
		{"send menu, mismatched hints dropped", secure + "<send \"a|b|c\" \"A\">x</send>",
			sendOSC([]string{"a", "b", "c"}, nil, false) + "x" + sendClose, ""},
		{"send with formatting inside", secure + "<send><b>look</b></send>",
			look + "\x1b[1mlook\x1b[22m" + sendClose, ""},
		{"send in an open line is ignored", "<send href=look>look</send> <a href=\"http://x.org/\">x</a>", "look x", ""},
		{"send closes at the end of the line", secure + "<send>look\nmore", look + "look" + sendClose + "\nmore", ""},
		{"send with an empty command is text", secure + "<send href=\"|\">x</send><send> </send>", "x ", ""},
		{"link in a link is text", secure + "<send look><a href=\"https://a.b/\">x</a></send>", look + "x" + sendClose, ""},
		{"a href http", secure + "<a href=\"https://example.com/a?b=1\">site</a>",
			"\x1b]8;;https://example.com/a?b=1\x1b\\site\x1b]8;;\x1b\\", ""},
		{"a href not http is text", secure + "<a href='javascript:alert(1)'>j</a><a href=\"data:text/html,x\">d</a>" +
			"<a href=\"/rel\">r</a><a href=\"http://u:p@h/\">u</a><a href=\"http://h/\x01\">c</a>", "jdruc", ""},
		{"br keeps the line mode", secure + "a<br><send>look</send>", "a\n" + look + "look" + sendClose, ""},
		{"temp secure: next tag only", "\x1b[4z<send>look</send> <send>x</send>", look + "look" + sendClose + " x", ""},
		{"temp secure lapses unless a tag follows at once", "\x1b[4z <send>x</send>", " x", ""},
		{"secure line ends at newline", secure + "\n<send>x</send>", "\nx", ""},
		{"locked line shows tags as text", "\x1b[2z<b>x</b> &amp;\n<b>y</b>", "<b>x</b> &amp;\n\x1b[1my\x1b[22m", ""},
		{"lock secure mode lasts", "\x1b[6z<send>look</send>\n<send>look</send>\x1b[3z\n<send>x</send>",
			look + "look" + sendClose + "\n" + look + "look" + sendClose + "\nx", ""},
		{"lock locked mode lasts", "\x1b[7z<b>\n<b>\x1b[5z<b>x</b>", "<b>\n<b>\x1b[1mx\x1b[22m", ""},
		{"reset closes tags", "<b>x\x1b[3zy", "\x1b[1mx\x1b[22my", ""},
		{"line tags are dropped", "\x1b[20zroom\x1b[z", "room", ""},
		{"tags close at the end of a line", "<b><c red>x\ny", "\x1b[1m" + red + "x\x1b[22;39m\ny", ""},
		{"unclosed tag is dropped at newline", "a<b c='x\nb", "a\nb", ""},
		{"quoted > inside a tag", secure + "<send href=\"a>b\">x</send>", sendOSC([]string{"a>b"}, nil, false) + "x" + sendClose, ""},
		{"support everything", secure + "<SUPPORT>", "",
			"\x1b[1z<SUPPORTS +b +bold +strong +i +italic +em +u +underline +s +strikeout +c +c.fore +c.back +color +color.fore +color.back +h +high +a +a.href +send +send.href +send.hint +send.prompt +br +support +version +!element>\r\n"},
		{"support asked", secure + "<support send send.* image color.fore b.x>", "",
			"\x1b[1z<SUPPORTS +send +send.href +send.hint +send.prompt -image +color.fore -b.x>\r\n"},
		{"support in an open line is ignored", "<support>", "", ""},
		{"version", secure + "<version>", "", "\x1b[1z<VERSION MXP=1.0 CLIENT=Trellis>\r\n"},
		{"element from send", secure + "<!ELEMENT ex '<send href=\"go &text;\">'>\n" + secure + "<ex>east</ex>",
			"\n" + sendOSC([]string{"go east"}, nil, false) + "east" + sendClose, ""},
		{"open element in an open line", secure + "<!ELEMENT rn '<c red><b>' OPEN>\n<rn>Room</rn>.",
			"\n" + red + "\x1b[1mRoom\x1b[22;39m.", ""},
		{"secure element in an open line is stripped", secure + "<!ELEMENT rn '<b>'>\n<rn>Room</rn>", "\nRoom", ""},
		{"element with arguments", secure + "<!EL exit '<send href=\"&dir;\" hint=\"&hint;\">' ATT='dir hint=Go'>" +
			"<exit north>n</exit> <exit dir=up hint=Climb>u</exit>",
			sendOSC([]string{"north"}, []string{"Go"}, false) + "n" + sendClose + " " +
				sendOSC([]string{"up"}, []string{"Climb"}, false) + "u" + sendClose, ""},
		{"empty element", secure + "<!ELEMENT hr '<br>' EMPTY><hr>x", "\nx", ""},
		{"element delete", secure + "<!ELEMENT e '<b>'><!ELEMENT e DELETE><e>x</e>", "x", ""},
		{"open element with secure parts is refused", secure + "<!ELEMENT bad '<send>' OPEN>\n<bad>x</bad>", "\nx", ""},
		{"element of unsupported tags is refused", secure + "<!ELEMENT img '<image src=x>'><img>x</img>", "x", ""},
		{"element with text is refused", secure + "<!ELEMENT t 'text<b>'><t>x</t>", "x", ""},
		{"element cannot use elements", secure + "<!ELEMENT a1 '<b>'><!ELEMENT a2 '<a1>'><a2>x</a2>", "x", ""},
		{"element cannot shadow a tag", secure + "<!ELEMENT send '<b>'><send>look</send>", look + "look" + sendClose, ""},
		{"element in an open line is not defined", "<!ELEMENT e '<b>' OPEN><e>x</e>", "x", ""},
		{"other definitions are dropped", secure + "<!ENTITY hp 100>&hp;<!ATTLIST x y>", "&hp;", ""},
		{"forged OSC 7701 is dropped", "a\x1b]7701;{\"cmds\":[\"quit\"]}\x1b\\b\x1b]07701;x\x07c\x1b]7701;\x1b\\d", "abcd", ""},
		{"game OSC 8 passes", "\x1b]8;;http://x/\x1b\\x\x1b]8;;\x07", "\x1b]8;;http://x/\x1b\\x\x1b]8;;\x07", ""},
		{"game OSC 8 to javascript is dropped", "\x1b]8;;javascript:x\x07a\x1b]8;;\x07", "a\x1b]8;;\x07", ""},
		{"OSC 77010 passes", "\x1b]77010;x\x07", "\x1b]77010;x\x07", ""},
		{"unterminated OSC is dropped at newline", "a\x1b]8;;http://x/\nb", "a\nb", ""},
		{"OSC cut by an escape", "a\x1b]7701;x\x1b[1mb", "a\x1b[1mb", ""},
		{"lone ESC cannot splice a sequence", "\x1b\x1b]7701;x\x07]7701;y", "]7701;y", ""},
		{"C1 controls are dropped", "a\u009d7701;x\u009cb\u0085c\u00a0d", "a7701;xbc\u00a0d", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, replies := decodeAllSplits(t, Config{}, true, c.in)
			if got != c.want || replies != c.replies {
				t.Errorf("in  %q\ngot  %q replies %q\nwant %q replies %q", c.in, got, replies, c.want, c.replies)
			}
		})
	}
}

// TestDisabled: before MXP is agreed, text is passed on as it came except
// for a forged OSC 7701 and C1 controls; markup stays text.
func TestDisabled(t *testing.T) {
	cases := []struct{ in, want string }{
		{"<b>x</b> &lt; \x1b[1z<send>y</send>\n", "<b>x</b> &lt; \x1b[1z<send>y</send>\n"},
		{"\x1b[31mred\x1b[0m \x1b]8;;http://x/\x1b\\l\x1b]8;;\x1b\\", "\x1b[31mred\x1b[0m \x1b]8;;http://x/\x1b\\l\x1b]8;;\x1b\\"},
		{"a\x1b]7701;{\"cmds\":[\"quit\"]}\x1b\\quit\x1b]7701;\x1b\\b", "aquitb"},
		{"a\x1b]7701;" + strings.Repeat("x", 300) + "\x07b", "ab"},
		{"a\x1b]8;;" + strings.Repeat("x", 300) + "\x07b", "ab"},
		{"\u009d7701;x\u009c", "7701;x"},
		{"caf\u00e9 \u00c2\u00ff", "caf\u00e9 \u00c2\u00ff"},
	}
	for _, c := range cases {
		got, _ := decodeAllSplits(t, Config{MaxEscape: 256}, false, c.in)
		if got != c.want {
			t.Errorf("in %.80q\ngot  %.80q\nwant %.80q", c.in, got, c.want)
		}
	}
}

// TestSetEnabled: MXP switched on mid-stream parses only what follows,
// and switched off closes what MXP had open.
func TestSetEnabled(t *testing.T) {
	d := New(Config{})
	out := string(d.Feed(nil, []byte("<b>a</b>")))
	d.SetEnabled(true)
	d.SetEnabled(true)
	out += string(d.Feed(nil, []byte("<b>b")))
	if !d.Enabled() {
		t.Fatal("not enabled")
	}
	d.SetEnabled(false)
	out += string(d.Feed(nil, []byte("<b>c")))
	if want := "<b>a</b>\x1b[1mb\x1b[22m<b>c"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestPasses: Passes is true exactly when Feed would change nothing.
func TestPasses(t *testing.T) {
	for _, c := range []struct {
		in      string
		enabled bool
		want    bool
	}{
		{"plain <b> &amp; caf\u00e9", false, true},
		{"ansi \x1b[1m", false, false},
		{"c1 \u0085", false, false},
		{"plain", true, false},
	} {
		d := New(Config{})
		d.SetEnabled(c.enabled)
		if got := d.Passes(c.in); got != c.want {
			t.Errorf("Passes(%q) enabled=%v: %v", c.in, c.enabled, got)
		}
		if c.want {
			if out := string(d.Feed(nil, []byte(c.in))); out != c.in {
				t.Errorf("Feed(%q) = %q", c.in, out)
			}
		}
	}
	d := New(Config{})
	d.Feed(nil, []byte("\x1b"))
	if d.Passes("x") {
		t.Error("Passes with an ESC held")
	}
}
