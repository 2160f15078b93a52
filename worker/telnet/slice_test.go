package telnet

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// bombs are 16 MiB of text (bombBytes) compressed as a hostile game would:
// one stream, flushed, from which a single read of 16-57 KiB inflates to
// all of it.
var bombs = sync.OnceValue(func() map[string][2][]byte {
	line := strings.Repeat("A", 79) + "\n"
	out := map[string][2][]byte{}
	for name, plain := range map[string][]byte{
		"lines":       []byte(strings.Repeat(line, bombBytes/len(line))),
		"no newlines": bytes.Repeat([]byte{'A'}, bombBytes),
	} {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		zw.Write(plain)
		zw.Flush()
		out[name] = [2][]byte{plain, buf.Bytes()}
	}
	return out
})

// TestDecodeSliceZipBomb: a small compressed read that inflates to 16 MiB
// is worked through in bounded slices, each call's events stay within the
// documented bound, and nothing is lost or held back.
func TestDecodeSliceZipBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("inflates 16 MiB per case")
	}
	start := b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE)
	for _, tc := range []struct {
		bomb   string
		slice  int // 0: the default
		read   int // bytes per read; 0: all at once
		finish bool
	}{
		{bomb: "lines"},
		{bomb: "no newlines", slice: 1},
		{bomb: "lines", slice: 7, read: 4096, finish: true},
		{bomb: "no newlines", slice: 50 << 10, read: 512, finish: true},
	} {
		t.Run(fmt.Sprintf("%s/slice %d/read %d", tc.bomb, tc.slice, tc.read), func(t *testing.T) {
			plain, stream := bombs()[tc.bomb][0], bombs()[tc.bomb][1]
			input := b(start, stream)
			want := string(plain)
			if tc.finish { // end the stream and go on in plain telnet
				input = b(start, stream[:len(stream)-4], closeZlib(t, plain), "after", IAC, GA)
				want += "after"
			}
			if len(stream) > 64<<10 {
				t.Fatalf("bomb is %d bytes compressed, want at most 64 KiB", len(stream))
			}
			e := newEngine(t, Options{SliceBytes: tc.slice})
			bound := 3 * (e.opts.SliceBytes + maxInflateOvershoot + 3)
			read := cmpOr(tc.read, len(input))
			var text strings.Builder
			var evs []Event
			var replies []byte
			calls, most := 0, 0
			for input := input; len(input) > 0; input = input[min(read, len(input)):] {
				p := input[:min(read, len(input))]
				for len(p) > 0 {
					var n int
					var err error
					evs, n, err = e.DecodeSlice(p, evs[:0])
					if err != nil {
						t.Fatal(err)
					}
					checkSlice(t, e, false, len(p), n, err, evs)
					size := 0
					for _, ev := range evs {
						size += len(ev.Text)
						text.WriteString(ev.Text)
					}
					if size > bound {
						t.Fatalf("call %d: %d bytes of text, bound %d", calls, size, bound)
					}
					most = max(most, size)
					replies = e.Replies(replies)
					p = p[n:]
					calls++
				}
			}
			if text.String() != want {
				t.Fatalf("text differs: got %d bytes, want %d", text.Len(), len(want))
			}
			if want := b(IAC, DO, OptMCCP2); !bytes.Equal(replies, want) {
				t.Errorf("replies %v, want %v", replies, want)
			}
			t.Logf("%d compressed bytes, %d calls, largest text event %d bytes (bound %d)", len(stream), calls, most, bound)
		})
	}
}

// closeZlib returns the bytes that end a stream of plain after its last
// flush: an empty final block and the checksum.
func closeZlib(t *testing.T, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(plain)
	zw.Flush()
	flushed := buf.Len()
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b(buf.Bytes()[flushed-4:])
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestDecodeSlicePlainIsExact: plain input is parsed exactly SliceBytes at a
// time, with state carried across the cut.
func TestDecodeSlicePlainIsExact(t *testing.T) {
	e := newEngine(t, Options{SliceBytes: 7})
	input := b("0123456789", IAC, GA, "ab", IAC, IAC, "xyz\xe2\x82\xac!\r\n")
	var got []string
	var ns []int
	for p := input; len(p) > 0; {
		evs, n, err := e.DecodeSlice(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(render(evs), ","))
		ns = append(ns, n)
		p = p[n:]
	}
	wantN := []int{7, 7, 7, 4}
	want := []string{
		`text "0123456"`,
		`text "789",prompt,text "ab"`,
		`text "�xyz"`, // the slice ends inside the euro sign: held back
		`text "€!\n"`,
	}
	if !slices.Equal(ns, wantN) || !slices.Equal(got, want) {
		t.Errorf("calls consumed %v, events %q\nwant %v, %q", ns, got, wantN, want)
	}
	if evs, n, err := e.DecodeSlice(nil, nil); len(evs) != 0 || n != 0 || err != nil {
		t.Errorf("empty input: %v %d %v", evs, n, err)
	}
}

// TestDecodeSliceStreamEndThenPlain: a stream that ends in the middle of a
// chunk followed by plain telnet; the call that sees the end goes on in
// plain telnet with what is left of its slice.
func TestDecodeSliceStreamEndThenPlain(t *testing.T) {
	var body strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&body, "line %d\r\n", i)
	}
	inner := b(body.String(), IAC, WILL, OptEcho, "pw: ", IAC, GA)
	input := b(IAC, WILL, OptMCCP2, "hi ", IAC, SB, OptMCCP2, IAC, SE, compressed(t, inner, true),
		"plain ", IAC, WONT, OptEcho, IAC, SB, OptMCCP2, IAC, SE, compressed(t, []byte("again\n"), false))
	text := strings.ReplaceAll(body.String(), "\r", "")
	want := []string{`text "hi ` + strings.ReplaceAll(fmt.Sprintf("%q", text), `"`, "") + `"`, "echo true",
		`text "pw: "`, "prompt", `text "plain "`, "echo false", `text "again\n"`}
	for _, size := range []int{1, 100, 4096, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			for _, read := range []int{len(input), 1000, 1} {
				chunks := slices.Collect(slices.Chunk(input, read))
				got, _ := decodeSliced(t, Options{SliceBytes: size}, chunks)
				if got.err != nil || !slices.Equal(got.events, want) {
					t.Fatalf("reads of %d: %v events %q\nwant %q", read, got.err, got.events, want)
				}
				if want := b(IAC, DO, OptMCCP2, IAC, DO, OptEcho, IAC, DONT, OptEcho); !bytes.Equal(got.replies, want) {
					t.Fatalf("reads of %d: replies %v, want %v", read, got.replies, want)
				}
			}
		})
	}
}

// TestDecodeSliceSubnegAcrossSlices: subnegotiations, GMCP among them, cut
// by slices, plain and compressed, arrive whole in the call that parses
// their IAC SE.
func TestDecodeSliceSubnegAcrossSlices(t *testing.T) {
	gmcp := func(pkg, body string) []byte { return b(IAC, SB, OptGMCP, pkg, " ", body, IAC, SE) }
	body := `{"name":"` + strings.Repeat("x", 300) + `"}`
	inner := b("a", gmcp("Room.Info", body), "b", IAC, SB, OptTTYPE, ttypeSEND, IAC, SE,
		gmcp("Char.Vitals", `{"hp":`+strings.Repeat("1", 50)+`}`), "c")
	head := b(IAC, WILL, OptGMCP, IAC, DO, OptTTYPE)
	want := []string{`text "a"`, "gmcp Room.Info " + body, `text "b"`, `gmcp Char.Vitals {"hp":` + strings.Repeat("1", 50) + "}", `text "c"`}
	for name, input := range map[string][]byte{
		"plain":      b(head, inner),
		"compressed": b(head, IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, compressed(t, inner, false)),
	} {
		for _, size := range []int{1, 7, 64, 300} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				e := newEngine(t, Options{SliceBytes: size})
				end := bytes.Index(input, b(`"}`, IAC, SE)) + 3 // Room.Info's SE
				var got []Event
				for p, off := input, 0; len(p) > 0; {
					evs, n, err := e.DecodeSlice(p, nil)
					if err != nil {
						t.Fatal(err)
					}
					for _, ev := range evs {
						if name == "plain" && ev.Package == "Room.Info" && (end < off || end >= off+n) {
							t.Errorf("Room.Info delivered by the call for bytes %d-%d, its SE is at %d", off, off+n, end)
						}
					}
					got = append(got, evs...)
					p, off = p[n:], off+n
				}
				if r := render(got); !slices.Equal(r, want) {
					t.Errorf("events %q\nwant %q", r, want)
				}
				if r := e.Replies(nil); !bytes.Contains(r, b(IAC, SB, OptTTYPE, ttypeIS, "TRELLIS", IAC, SE)) {
					t.Errorf("TTYPE SEND across slices not answered: %v", r)
				}
			})
		}
	}
}

// TestDecodeSliceOvershoot drives the inflater to its worst documented
// overshoot: stored (uncompressed) deflate blocks, which flate hands out in
// full 32 KiB window flushes, with a slice of one byte.
func TestDecodeSliceOvershoot(t *testing.T) {
	plain := bytes.Repeat([]byte("0123456789abcdef"), 20000)
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
		t.Run(fmt.Sprint(level), func(t *testing.T) {
			var buf bytes.Buffer
			buf.Write(b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE))
			zw, err := zlib.NewWriterLevel(&buf, level)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write(plain)
			zw.Close()
			e := newEngine(t, Options{SliceBytes: 1})
			var text strings.Builder
			worst := 0
			for p := buf.Bytes(); len(p) > 0; {
				evs, n, err := e.DecodeSlice(p, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkSlice(t, e, false, len(p), n, err, evs)
				worst = max(worst, -e.budget)
				for _, ev := range evs {
					text.WriteString(ev.Text)
				}
				p = p[n:]
			}
			if text.String() != string(plain) {
				t.Fatalf("text differs: %d bytes, want %d", text.Len(), len(plain))
			}
			t.Logf("largest overshoot %d bytes (bound %d)", worst, maxInflateOvershoot)
		})
	}
}

func TestLineControls(t *testing.T) {
	utf, latin := Options{}, Options{Charset: "latin-1"}
	keep, keepLatin := Options{KeepControls: true}, Options{Charset: "latin-1", KeepControls: true}
	for _, tc := range []struct {
		name string
		opts Options
		line string
		want []byte
	}{
		{"C0 dropped, TAB kept", utf, "a\x00b\x1bc\x01d\x1fe\tf\x7fg\x08h", b("abcde\tfgh\r\n")},
		{"C0 dropped in latin-1", latin, "\x00\x1b[1m\x07é\tÿ", b("[1m", 0xE9, "\t", IAC, IAC, "\r\n")},
		{"kept with KeepControls", keep, "a\x1bb\x01c\x1fd\te\x7ff\x08", b("a\x1bb\x01c\x1fd\te\x7ff\x08\r\n")},
		{"kept with KeepControls in latin-1", keepLatin, "\x1b\x7fÿ", b("\x1b\x7f", IAC, IAC, "\r\n")},
		{"NUL dropped even with KeepControls", keep, "a\x00b", b("ab\r\n")},
		{"CR dropped and LF ends a line with KeepControls", keep, "a\rb\nc", b("ab\r\nc\r\n")},
		{"C1 and U+00FF in UTF-8", utf, "\u009bÿ", b("\xc2\x9b\xc3\xbf\r\n")},
	} {
		e := newEngine(t, tc.opts)
		if got := e.Line(nil, tc.line); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: Line(%q) = %q, want %q", tc.name, tc.line, got, tc.want)
		}
	}
}

// TestLineNeverSendsNULOrBareIAC sends every rune a charset can encode
// (all of them for UTF-8), in every mode: no NUL, every IAC doubled, CR only
// before LF.
func TestLineNeverSendsNULOrBareIAC(t *testing.T) {
	for _, opts := range []Options{{}, {KeepControls: true}, {Charset: "latin-1", KeepControls: true}, {Charset: "cp437"}, {Charset: "koi8-r", KeepControls: true}} {
		e := newEngine(t, opts)
		last := rune(utf8.MaxRune)
		if cm := e.charset.cm; cm != nil {
			last = 0
			for c := range 256 {
				last = max(last, cm.DecodeByte(byte(c)))
			}
		}
		var in, out []byte
		for r := rune(0); r <= last; r++ {
			in = utf8.AppendRune(in, r)
			if r%4096 != 4095 && r != last {
				continue
			}
			out = e.Line(out[:0], string(append(in, 0xFF)))
			in = in[:0]
			if i := bytes.IndexByte(out, 0); i >= 0 {
				t.Fatalf("%+v: NUL sent near U+%04X: %q", opts, r, out[max(0, i-8):i+1])
			}
			if bytes.Count(out, []byte{'\r'}) != bytes.Count(out, []byte("\r\n")) {
				t.Fatalf("%+v: bare CR sent near U+%04X", opts, r)
			}
			for i := 0; i < len(out); i++ {
				if out[i] == IAC {
					if i+1 == len(out) || out[i+1] != IAC {
						t.Fatalf("%+v: lone IAC sent near U+%04X", opts, r)
					}
					i++
				}
			}
		}
	}
}
