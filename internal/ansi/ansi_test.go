package ansi

import (
	"strings"
	"testing"
)

func TestStrip(t *testing.T) {
	cases := map[string]string{
		"plain":                "plain",
		"\x1b[1;31mred\x1b[0m": "red",
		"a\x1b[2Kb\x1b[6nc":    "abc",
		"\x1b]0;title\x07x":    "x",
		"\x1b]0;title\x1b\\y":  "y",
		"cut\x1b[3":            "cut",
		"\x1b(B ok":            "B ok",
	}
	for in, want := range cases {
		if got := Strip(in); got != want {
			t.Errorf("Strip(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHTML(t *testing.T) {
	got, st := HTML("\x1b[1;31m<b>hi</b>\x1b[0m & \x1b[38;5;208mo\x1b[48;2;1;2;3mx", Style{})
	for _, want := range []string{
		`<span style="color:#cd3131;font-weight:bold">&lt;b&gt;hi&lt;/b&gt;</span>`,
		` &amp; `,
		`<span style="color:#ff8700">o</span>`,
		`<span style="color:#ff8700;background:#010203">x</span>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("HTML missing %q in %q", want, got)
		}
	}
	if st.FG != "#ff8700" || st.BG != "#010203" {
		t.Errorf("style not carried: %+v", st)
	}
	next, _ := HTML("y", st)
	if !strings.HasPrefix(next, `<span style="color:#ff8700;background:#010203">`) {
		t.Errorf("continued style lost: %q", next)
	}
}

func TestColor256(t *testing.T) {
	for n, want := range map[int]string{1: "#cd3131", 16: "#000000", 21: "#0000ff", 231: "#ffffff", 232: "#080808", 255: "#eeeeee"} {
		if got := Color256(n); got != want {
			t.Errorf("Color256(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestReverseAndReset(t *testing.T) {
	var st Style
	st.apply("7")
	if !strings.Contains(st.css(), "background:#ccc") {
		t.Errorf("reverse without colours: %q", st.css())
	}
	st.apply("27;1;2;22;3;23;4;24;39;49")
	if st != (Style{}) {
		t.Errorf("attributes not cleared: %+v", st)
	}
	st.apply("97;104")
	if st.FG != basic[15] || st.BG != basic[12] {
		t.Errorf("bright colours: %+v", st)
	}
}
