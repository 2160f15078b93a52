package telnet

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// b concatenates strings, byte slices and bytes into one input.
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v...)
		case []byte:
			out = append(out, v...)
		case byte:
			out = append(out, v)
		case int:
			out = append(out, byte(v))
		default:
			panic(fmt.Sprintf("b: unsupported %T", p))
		}
	}
	return out
}

// compressed returns data as a zlib stream flushed the way MUD servers do.
func compressed(t testing.TB, data []byte, finish bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil {
		t.Fatal(err)
	}
	if finish {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// result is everything an engine produced for a byte stream.
type result struct {
	events  []string
	replies []byte
	err     error
}

// render turns events into compact strings, merging consecutive text (the
// only difference a different split is allowed to make).
func render(evs []Event) []string {
	var out []string
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, fmt.Sprintf("text %q", text.String()))
			text.Reset()
		}
	}
	for _, ev := range evs {
		if ev.Kind == EventText {
			text.WriteString(ev.Text)
			continue
		}
		flush()
		switch ev.Kind {
		case EventPrompt:
			out = append(out, "prompt")
		case EventEcho:
			out = append(out, fmt.Sprintf("echo %v", ev.Echo))
		case EventGMCP:
			if ev.Data == nil {
				out = append(out, "gmcp "+ev.Package)
			} else {
				out = append(out, "gmcp "+ev.Package+" "+string(ev.Data))
			}
		case EventMSSP:
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range ev.MSSP {
					if !yield(k) {
						return
					}
				}
			})
			var parts []string
			for _, k := range keys {
				parts = append(parts, k+"="+strings.Join(ev.MSSP[k], "|"))
			}
			out = append(out, "mssp "+strings.Join(parts, " "))
		case EventMSDP:
			out = append(out, "msdp "+ev.Var+" "+string(ev.Data))
		case EventMSDPDropped:
			out = append(out, "msdp-dropped "+ev.Var+": "+ev.Reason)
		default:
			out = append(out, ev.Kind.String())
		}
	}
	flush()
	return out
}

// decodeChunks feeds chunks to a fresh engine, collecting replies after each
// call, and stops at the first error as a caller closing the connection
// would.
func decodeChunks(t testing.TB, opts Options, chunks [][]byte) result {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer e.Close()
	var evs []Event
	var res result
	for _, c := range chunks {
		evs, res.err = e.Decode(c, evs)
		res.replies = e.Replies(res.replies)
		if res.err != nil {
			break
		}
	}
	checkEvents(t, evs)
	res.events = render(evs)
	return res
}

// checkEvents checks what every event must satisfy whatever the input.
func checkEvents(t testing.TB, evs []Event) {
	t.Helper()
	for _, ev := range evs {
		switch {
		case !utf8.ValidString(ev.Text):
			t.Fatalf("invalid UTF-8 text %q", ev.Text)
		case ev.Kind == EventText && ev.Text == "":
			t.Fatalf("empty text event")
		case !utf8.ValidString(ev.Package):
			t.Fatalf("invalid UTF-8 GMCP package %q", ev.Package)
		case ev.Data != nil && (!json.Valid(ev.Data) || !utf8.Valid(ev.Data)):
			t.Fatalf("invalid GMCP or MSDP data %q", ev.Data)
		case ev.Kind == EventMSDP && (ev.Data == nil || ev.Var == ""):
			t.Fatalf("MSDP event without a name or value: %q %q", ev.Var, ev.Data)
		case !utf8.ValidString(ev.Var) || !utf8.ValidString(ev.Reason):
			t.Fatalf("invalid UTF-8 MSDP name %q or reason %q", ev.Var, ev.Reason)
		case ev.Kind == EventMSDPDropped && ev.Reason == "":
			t.Fatalf("MSDP drop without a reason")
		}
		for k, vs := range ev.MSSP {
			if !utf8.ValidString(k) {
				t.Fatalf("invalid MSSP name %q", k)
			}
			for _, v := range vs {
				if !utf8.ValidString(v) {
					t.Fatalf("invalid MSSP value %q", v)
				}
			}
		}
	}
}

// decodeSliced feeds chunks to a fresh engine the way the worker does: each
// chunk is worked through with DecodeSlice calls until it is used up. Every
// call gets a fresh copy of what is left and its buffer is overwritten
// afterwards, so an engine that kept or aliased the caller's buffer, or
// miscounted n, decodes differently. Each call is checked against the
// documented bound. first holds the events produced by the first chunk.
func decodeSliced(t testing.TB, opts Options, chunks [][]byte) (res result, first []string) {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer e.Close()
	plain := !bytes.Contains(bytes.Join(chunks, nil), []byte{IAC, SB, OptMCCP2})
	var evs []Event
	for i, c := range chunks {
		p := slices.Clone(c)
		for len(p) > 0 {
			var n int
			start := len(evs)
			evs, n, res.err = e.DecodeSlice(p, evs)
			checkSlice(t, e, plain, len(p), n, res.err, evs[start:])
			res.replies = e.Replies(res.replies)
			rest := slices.Clone(p[n:])
			for j := range p {
				p[j] = IAC // the worker reuses its read buffer
			}
			p = rest
			if res.err != nil {
				break
			}
		}
		if i == 0 {
			first = render(evs)
		}
		if res.err != nil {
			break
		}
	}
	checkEvents(t, evs)
	res.events = render(evs)
	return res, first
}

// checkSlice checks one DecodeSlice call that was given m bytes and
// consumed n of them, producing evs.
func checkSlice(t testing.TB, e *Engine, plain bool, m, n int, err error, evs []Event) {
	t.Helper()
	limit := e.opts.SliceBytes
	parsed := limit - e.budget
	text := 0
	for _, ev := range evs {
		text += len(ev.Text)
	}
	switch {
	case n <= 0 || n > m:
		t.Fatalf("DecodeSlice of %d bytes consumed %d", m, n)
	case err != nil && n != m:
		t.Fatalf("DecodeSlice failed (%v) but consumed %d of %d bytes", err, n, m)
	case n < m && parsed < limit:
		t.Fatalf("DecodeSlice stopped after %d of %d bytes with only %d of %d parsed", n, m, parsed, limit)
	case plain && parsed > limit:
		t.Fatalf("DecodeSlice parsed %d plain bytes, limit %d", parsed, limit)
	case parsed > limit+maxInflateOvershoot:
		t.Fatalf("DecodeSlice parsed %d bytes, limit %d + %d", parsed, limit, maxInflateOvershoot)
	case text > 3*(parsed+3):
		t.Fatalf("DecodeSlice produced %d bytes of text from %d bytes", text, parsed)
	case e.z != nil && e.z.in != nil:
		t.Fatalf("DecodeSlice kept a reference to the caller's buffer")
	}
}

// sliceSizes are the SliceBytes every decode case is also run with.
var sliceSizes = []int{1, 7, 64}

// decodeAllSplits decodes input whole, split at every byte boundary and one
// byte at a time, and with small SliceBytes whole and split at every byte.
// It fails the test unless all agree, and unless every first chunk yields
// what decoding it alone yields (nothing held back for a later call), and
// returns the whole result.
func decodeAllSplits(t *testing.T, opts Options, input []byte) result {
	t.Helper()
	whole := decodeChunks(t, opts, [][]byte{input})
	check := func(how string, got result) {
		t.Helper()
		if !slices.Equal(got.events, whole.events) || !bytes.Equal(got.replies, whole.replies) || (got.err == nil) != (whole.err == nil) {
			t.Fatalf("%s differs from whole input:\n got events %q\nwant events %q\n got replies %v\nwant replies %v\n got err %v\nwant err %v",
				how, got.events, whole.events, got.replies, whole.replies, got.err, whole.err)
		}
	}
	for i := 1; i < len(input); i++ {
		check(fmt.Sprintf("split at %d", i), decodeChunks(t, opts, [][]byte{input[:i], input[i:]}))
	}
	for _, size := range sliceSizes {
		sliced := opts
		sliced.SliceBytes = size
		got, _ := decodeSliced(t, sliced, [][]byte{input})
		check(fmt.Sprintf("slices of %d", size), got)
		for i := 1; i < len(input); i++ {
			got, first := decodeSliced(t, sliced, [][]byte{input[:i], input[i:]})
			check(fmt.Sprintf("slices of %d, split at %d", size, i), got)
			if prefix := decodeChunks(t, opts, [][]byte{input[:i]}); !slices.Equal(first, prefix.events) {
				t.Fatalf("slices of %d: first %d bytes gave %q, alone %q", size, i, first, prefix.events)
			}
		}
	}
	bytewise := make([][]byte, len(input))
	for i := range input {
		bytewise[i] = input[i : i+1]
	}
	check("one byte at a time", decodeChunks(t, opts, bytewise))
	return whole
}
