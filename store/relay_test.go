package store

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileTexts is text a game controls, as the worker may store it.
var hostileTexts = []string{
	"plain line\n",
	`quotes " and \ backslashes \\" \u0041 literally`,
	"line\u2028separator\u2029paragraph",
	"invalid \xff\xfe UTF-8 \xc3 cut",
	"a real \ufffd replacement",
	"\x1b[1;31mred\x1b[0m \x1b]8;;https://x.test/\x1b\\link\x1b]8;;\x1b\\ \x1b]7701;{\"cmds\":[\"look\"]}\x1b\\",
	"</script><script>alert(1)</script> & <!-- -->",
	"controls \x00\x01\x07\b\f\t\r\n\x7f\x1f",
	"emoji 🐉 and 中文 and é",
	"",
	strings.Repeat("x", 16<<10),
}

// The relay decode of what encoding/json writes gives the full decode's
// entry, with the text kept as JSON for text and input entries: every
// hostile text but the one with invalid UTF-8 (encoding/json writes its
// U+FFFD as an escape it would not write for the character) takes the fast
// path.
func TestRelayDecodeKeepsTextAsStored(t *testing.T) {
	outs := []Output{
		{Kind: OutText, Fence: 3, Seq: 17, Prompt: true, Time: 1700000000000},
		{Kind: OutInput, Fence: 1 << 62, Seq: 1<<64 - 1, Viewer: "conn-1", InputSeq: 9, Time: 1},
		{Kind: OutInput, Fence: 2, Seq: 2, Redacted: true},
		{Kind: OutText},
	}
	for _, base := range outs {
		for _, text := range hostileTexts {
			o := base
			o.Text = text
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRelay(string(b))
			if err != nil {
				t.Fatalf("decodeRelay(%s): %v", b, err)
			}
			fast := utf8.ValidString(text) && text != ""
			if fast != (got.RawText != "") {
				t.Errorf("decodeRelay(%.80s): RawText %.40q, want the fast path %v", b, got.RawText, fast)
			}
			if got.RawText != "" && got.Text != "" {
				t.Errorf("both Text and RawText set")
			}
			want := fullDecode(t, string(b))
			checkSame(t, string(b), got, want)
		}
	}
}

func fullDecode(t testing.TB, v string) Output {
	t.Helper()
	var o Output
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		t.Fatalf("full decode of %q: %v", v, err)
	}
	return o
}

// checkSame compares a relay decode with a full one: the same fields, the
// text wherever it is.
func checkSame(t testing.TB, in string, got, want Output) {
	t.Helper()
	if got.RawText != "" {
		var text string
		if err := json.Unmarshal([]byte(got.RawText), &text); err != nil {
			t.Fatalf("RawText %q is not a JSON string: %v", got.RawText, err)
		}
		b, _ := json.Marshal(text)
		if string(b) != got.RawText {
			t.Fatalf("RawText %q is not what encoding/json writes for its text (%q)", got.RawText, b)
		}
		if got.PlainText() != text {
			t.Fatalf("PlainText %q, want %q", got.PlainText(), text)
		}
		got.Text, got.RawText = text, ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode of %.200q:\n relay %+v\n full  %+v", in, got, want)
	}
}

// Whatever the fast path does not take, the full decode does, errors and
// all: a malformed or odd entry fares exactly as before.
func TestRelayDecodeFallsBackToTheFullDecode(t *testing.T) {
	cases := []string{
		``, `{`, `{}`, `[]`, `null`, `"x"`,
		`{"k":"text","t":"a"`,              // cut
		`{"k":"text","t":"a"} `,            // a space after
		`{"k":"text","t":"a"}x`,            // garbage after
		`{"k":"text","t":"a\u001B"}`,       // upper-case hex
		`{"k":"text","t":"a\/b"}`,          // an escape encoding/json does not write
		`{"k":"text","t":"a\ufffd"}`,       // the U+FFFD of invalid UTF-8
		`{"k":"text","t":"a\u00e9"}`,       // escaped where it is written as itself
		`{"k":"text","t":"a\ud83d\udc09"}`, // a surrogate pair
		`{"k":"text","t":"a\ud83d"}`,       // a lone surrogate
		`{"k":"text","t":"a<b"}`,           // '<' as itself
		"{\"k\":\"text\",\"t\":\"a\tb\"}",  // a raw control character
		"{\"k\":\"text\",\"t\":\"a\u2028b\"}",
		"{\"k\":\"text\",\"t\":\"a\xffb\"}",
		`{"k":"text","t":"a\x"}`,
		`{"k":"text","t":"a\u12"}`,
		`{"k":"text","t":"a","t":"b"}`, // a key twice: the last wins
		`{"k":"text","K":"input","t":"a"}`,
		`{"k":"text","t":"a","d":{"x":1}}`,
		`{"k":"text","f":01,"t":"a"}`,
		`{"k":"text","f":1.5,"t":"a"}`,
		`{"k":"text","f":1e3,"t":"a"}`,
		`{"k":"text","f":-3,"t":"a"}`,
		`{"k":"text","n":-3,"t":"a"}`,
		`{"k":"text","n":18446744073709551616,"t":"a"}`,
		`{"k":"text","f":9223372036854775808,"t":"a"}`,
		`{"k":"text","f":"3","t":"a"}`,
		`{"k":"text","p":1,"t":"a"}`,
		`{"k":"text","p":null,"t":"a"}`,
		`{"k":"text","p":tru}`,
		`{"k":"text","t":null}`,
		`{"k":"text","t":5}`,
		`{"k":"te\u0078t","t":"a"}`,
		`{"k":"status","s":"connected","w":"w1","t":"hi"}`,
		`{"k":"gmcp","g":"Char.Vitals","d":{"hp":1}}`,
		`{"k":"echo","e":true}`,
		`{"k":"nonsense","t":"a"}`,
		`{"k":"text","w":"w\"1","t":"a"}`,
		`{"k":"text","t":"a",}`,
		`{"k":"text",,"t":"a"}`,
		`{"k":"text""t":"a"}`,
		`{"k""text"}`,
		`{"":"x","k":"text"}`,
	}
	for _, in := range cases {
		got, err := decodeRelay(in)
		var want Output
		wantErr := json.Unmarshal([]byte(in), &want)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Errorf("decodeRelay(%q): error %v, the full decode's %v", in, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		checkSame(t, in, got, want)
	}
	// The fast path declines them all (RawText unset) but a negative
	// fence, which it reads as the full decode does.
	for _, in := range cases {
		if o, _ := decodeRelay(in); o.RawText != "" && in != `{"k":"text","f":-3,"t":"a"}` {
			t.Errorf("decodeRelay(%q) kept RawText %q", in, o.RawText)
		}
	}
}

// The fast path's tables are encoding/json's: every character of the Basic
// Multilingual Plane is written as itself exactly when scanString takes it
// as itself, and escaped exactly when it takes that escape.
func TestRelayTablesMatchEncodingJSON(t *testing.T) {
	for r := rune(0); r <= 0xffff; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		b, _ := json.Marshal(string(r))
		if end, _, ok := scanString(string(b), 0); !ok || end != len(b) {
			t.Fatalf("U+%04X: encoding/json writes %q, which scanString refuses", r, b)
		}
		raw := `"` + string(r) + `"`
		if end, _, ok := scanString(raw, 0); (ok && end == len(raw)) != (string(b) == raw) {
			t.Fatalf("U+%04X as itself: scanString ok=%v, encoding/json writes %q", r, ok, b)
		}
		esc := []byte(`"\u0000"`)
		const hex = "0123456789abcdef"
		esc[3], esc[4], esc[5], esc[6] = hex[r>>12], hex[r>>8&15], hex[r>>4&15], hex[r&15]
		if end, _, ok := scanString(string(esc), 0); (ok && end == len(esc)) != (string(b) == string(esc)) {
			t.Fatalf("U+%04X as %s: scanString ok=%v, encoding/json writes %q", r, esc, ok, b)
		}
	}
}

// Any input: the relay decode agrees with the full decode.
func FuzzRelayDecode(f *testing.F) {
	for _, text := range hostileTexts[:len(hostileTexts)-1] {
		for _, o := range []Output{{Kind: OutText, Fence: 2, Seq: 5, Text: text, Prompt: true}, {Kind: OutInput, Viewer: "c", InputSeq: 3, Text: text}} {
			b, _ := json.Marshal(o)
			f.Add(string(b))
		}
	}
	f.Add(`{"k":"text","t":"a\u001B"}`)
	f.Fuzz(func(t *testing.T, in string) {
		got, err := decodeRelay(in)
		var want Output
		wantErr := json.Unmarshal([]byte(in), &want)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeRelay(%q): error %v, the full decode's %v", in, err, wantErr)
		}
		if err == nil {
			checkSame(t, in, got, want)
		}
	})
}

// RelayBacklog reads what ReadBacklog reads, the text of text and input
// entries left as stored; a live message parses the same way.
func TestRelayBacklogKeepsTextAsStored(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	key := SessionKey{User: "relay", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	first := ""
	for _, o := range []Output{{Kind: OutStatus, State: StateConnected, Worker: "w1", Text: "hi"}, {Kind: OutText, Text: "first\n"}} {
		seq++
		o.Fence, o.Seq = l.Fence, seq
		if first, err = s.AppendOutput(ctx, key, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, text := range hostileTexts {
		for _, kind := range []OutputKind{OutText, OutInput} {
			seq++
			if _, err := s.AppendOutput(ctx, key, Output{Kind: kind, Fence: l.Fence, Seq: seq, Text: text, Viewer: "v"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, after := range []string{"", first} {
		full, err := s.ReadBacklog(ctx, key, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		relay, err := s.RelayBacklog(ctx, key, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(relay.Entries) != len(full.Entries) || len(full.Entries) == 0 {
			t.Fatalf("after %q: %d entries relayed, %d read", after, len(relay.Entries), len(full.Entries))
		}
		kept := 0
		for i := range full.Entries {
			if relay.Entries[i].RawText != "" {
				kept++
			}
			checkSame(t, full.Entries[i].ID, relay.Entries[i], full.Entries[i])
		}
		if kept < len(hostileTexts) {
			t.Errorf("after %q: %d entries kept their text as JSON, want most", after, kept)
		}
		if (relay.At == nil) != (full.At == nil) || relay.At != nil && (relay.At.Fence != full.At.Fence || relay.At.Seq != full.At.Seq) {
			t.Errorf("At: relay %+v, full %+v", relay.At, full.At)
		}
	}
}
