package demogame

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// recorder is a telnetHandler that writes what it gets as tokens.
type recorder struct{ events []string }

func (r *recorder) line(text []byte) { r.events = append(r.events, fmt.Sprintf("line %q", text)) }
func (r *recorder) command(cmd byte) { r.events = append(r.events, fmt.Sprintf("cmd %d", cmd)) }
func (r *recorder) negotiate(verb, opt byte) {
	r.events = append(r.events, fmt.Sprintf("%s %d", verbNames[verb], opt))
}
func (r *recorder) subnegotiation(opt byte, body []byte) {
	r.events = append(r.events, fmt.Sprintf("sb %d %q", opt, body))
}

func decodeAll(chunks ...[]byte) []string {
	var d decoder
	var r recorder
	for _, c := range chunks {
		d.feed(c, &r)
	}
	return r.events
}

func TestDecoder(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"crlf", "look\r\n", []string{`line "look"`}},
		{"lone lf", "a\nb\n", []string{`line "a"`, `line "b"`}},
		{"cr nul", "a\r\x00b\r\x00", []string{`line "a"`, `line "b"`}},
		{"bare cr", "a\rb\r\n", []string{`line "a"`, `line "b"`}},
		{"blank lines kept", "\r\n\r\n", []string{`line ""`, `line ""`}},
		{"iac iac is data", "x\xff\xffy\r\n", []string{"line \"x\\xffy\""}},
		{"negotiation", "\xff\xfd\x18\xff\xfb\x1f", []string{"DO 24", "WILL 31"}},
		{"two-byte command", "\xff\xf1\xff\xf6", []string{"cmd 241", "cmd 246"}},
		{"command inside a line", "lo\xff\xf1ok\r\n", []string{"cmd 241", `line "look"`}},
		{"subnegotiation", "\xff\xfa\x1f\x00\x64\x00\x1e\xff\xf0", []string{`sb 31 "\x00d\x00\x1e"`}},
		{"iac iac in sb", "\xff\xfa\xc9a\xff\xffb\xff\xf0", []string{"sb 201 \"a\\xffb\""}},
		{"sb cut by command", "\xff\xfa\xc9abc\xff\xfb\x01", []string{"WILL 1"}},
		{"stray se", "\xff\xf0a\r\n", []string{"cmd 240", `line "a"`}},
		{"nul alone ignored", "a\x00b\r\n", []string{`line "ab"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll([]byte(tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecoderSurvivesAnySplit feeds a stream with every construct split at
// every byte, and in single bytes, and wants the same events every time.
func TestDecoderSurvivesAnySplit(t *testing.T) {
	in := []byte("look\r\nsay hi\xff\xff\r\x00\xff\xfd\x18\xff\xfa\x18\x00XTERM\xff\xff\xff\xf0" +
		"\xff\xf1a\nb\r\n\xff\xfa\xc9Core.Ping\xff\xf0tail\r")
	want := decodeAll(in)
	if len(want) != 9 {
		t.Fatalf("whole-stream decode gave %d events: %q", len(want), want)
	}
	for i := 1; i < len(in); i++ {
		if got := decodeAll(in[:i], in[i:]); !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d: got %q, want %q", i, got, want)
		}
	}
	var single [][]byte
	for i := range in {
		single = append(single, in[i:i+1])
	}
	if got := decodeAll(single...); !reflect.DeepEqual(got, want) {
		t.Fatalf("byte by byte: got %q, want %q", got, want)
	}
}

func TestDecoderCapsLinesAndSubnegotiations(t *testing.T) {
	long := strings.Repeat("a", 3*maxLine)
	got := decodeAll([]byte(long + "\r\nnext\r\n"))
	if len(got) != 2 || got[0] != fmt.Sprintf("line %q", long[:maxLine]) || got[1] != `line "next"` {
		t.Errorf("over-long line: got %d events, first %.40q", len(got), got)
	}

	huge := append([]byte{cmdIAC, cmdSB, optGMCP}, bytes.Repeat([]byte{'b'}, maxSubneg+1)...)
	huge = append(huge, cmdIAC, cmdSE)
	huge = append(huge, "after\r\n"...)
	got = decodeAll(huge)
	if !reflect.DeepEqual(got, []string{`line "after"`}) {
		t.Errorf("over-long SB should be dropped and decoding resume: %.80q", got)
	}
}

func TestAppendEscapedDoublesIAC(t *testing.T) {
	got := appendEscaped([]byte("<"), []byte("a\xffb\xff\xff"))
	if want := "<a\xff\xffb\xff\xff\xff\xff"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte("look\r\n"), 3)
	f.Add([]byte("\xff\xfa\x18\x00X\xff\xff\xff\xf0\xff\xfd\x01"), 5)
	f.Add([]byte("\xff\xfa\xc9abc\xff\xfb\x01\r\x00\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		want := decodeAll(in)
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		if got := decodeAll(in[:split], in[split:]); !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d changed the events: %q vs %q", split, got, want)
		}
	})
}
