package telnet

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/internal/msdp"
)

func FuzzDecoder(f *testing.F) {
	mccp := func(data []byte, finish bool) []byte {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		zw.Write(data)
		zw.Flush()
		if finish {
			zw.Close()
		}
		return b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, buf.Bytes())
	}
	seeds := [][]byte{
		b("hello\r\nworld\n\r> ", IAC, GA),
		b("a", IAC, IAC, "\xe2\x82", IAC, NOP, "\xac\r\x00x\xc3"),
		b(IAC, WILL, OptEcho, IAC, WONT, OptEcho, IAC, DO, OptTTYPE, IAC, SB, OptTTYPE, ttypeSEND, IAC, SE),
		b(IAC, DO, OptNAWS, IAC, DO, OptCharset, IAC, SB, OptCharset, charsetREQUEST, "[TTABLE]", 1, ";latin1;UTF-8", IAC, SE),
		b(IAC, DO, OptNewEnviron, IAC, SB, OptNewEnviron, envSEND, envVAR, "IPADDRESS", envUSERVAR, IAC, SE),
		b(IAC, WILL, OptGMCP, IAC, SB, OptGMCP, `Char.Vitals {"hp":1}`, IAC, SE, IAC, SB, OptGMCP, "Core.Ping", IAC, SE),
		b(IAC, WILL, OptMSSP, IAC, SB, OptMSSP, msspVAR, "NAME", msspVAL, "x", msspVAL, "y", IAC, SE),
		b(IAC, WILL, OptGMCP, IAC, SB, OptGMCP, bytes.Repeat([]byte{IAC, IAC}, 40), IAC, SE, "after"),
		b(IAC, SB, OptGMCP, "x", IAC, WILL, OptEcho, IAC, SB, 99, IAC, SE),
		mccp(b("inside ", IAC, GA, IAC, WILL, OptGMCP, "\r\n"), true),
		b(mccp([]byte("open stream"), false), "more"),
		b(mccp([]byte("ends"), true), "plain", IAC, SB, OptMCCP2, IAC, SE, "x"),
	}
	for i, s := range seeds {
		f.Add(s, uint16(i*7), i%2 == 0, i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, input []byte, split uint16, mnes, latin1 bool) {
		opts := Options{MNES: mnes, MaxSubneg: 64}
		if latin1 {
			opts.Charset = "latin-1"
		}
		whole := decodeChunks(t, opts, [][]byte{input})
		i := int(split) % (len(input) + 1)
		j := i + int(split>>8)%(len(input)-i+1)
		parts := decodeChunks(t, opts, [][]byte{input[:i], input[i:j], input[j:]})
		if !slices.Equal(parts.events, whole.events) || !bytes.Equal(parts.replies, whole.replies) || (parts.err == nil) != (whole.err == nil) {
			t.Fatalf("split at %d,%d differs from whole:\n got %q %v %v\nwant %q %v %v",
				i, j, parts.events, parts.replies, parts.err, whole.events, whole.replies, whole.err)
		}
	})
}

// FuzzDecodeSlice decodes with a random SliceBytes through DecodeSlice, the
// way the worker reads, and compares with whole-input Decode in one
// unbounded slice (the old Decode); decodeSliced
// checks every call against the bound. The fuzzer's bytes are split in
// three, and the middle part, repeated up to 128 times to outgrow the
// slices and the inflater's window, can be sent as an MCCP2 stream at one
// of four compression levels, ended or left open, so the inflater is
// driven with valid streams as well as raw garbage.
func FuzzDecodeSlice(f *testing.F) {
	f.Add(b("hello\r\nworld\n\r> ", IAC, GA, IAC, WILL, OptGMCP, IAC, SB, OptGMCP, `Char {"a":1}`, IAC, SE), uint8(0), uint16(3), uint16(0x0905))
	f.Add(b("pre ", IAC, WILL, OptEcho, "in\xe2\x82\xac", IAC, SB, OptGMCP, "X", IAC, SE, "post", IAC, GA), uint8(0b111_01_1_1_0), uint16(7), uint16(0x0804))
	f.Add(b("ab", "0123456789abcdef0123456789abcdef", "cd"), uint8(0b111_00_1_1_0), uint16(1), uint16(0x2002))
	f.Add(b(IAC, SB, OptMCCP2, IAC, SE, "x\x78\x9c", IAC, IAC, "junk"), uint8(0b010_10_1_0_1), uint16(64), uint16(0x0a03))
	f.Add(b("\xff\xfb\x56\xff\xfa\x56\xff\xf0\x78\x9c\x00\x00\x00\xff\xff"), uint8(0b011_11_0_1_0), uint16(2), uint16(0x0101))
	f.Fuzz(func(t *testing.T, input []byte, mode uint8, slice, split uint16) {
		// mode: bit 0 latin-1, bit 1 compress the middle, bit 2 end the
		// stream, bits 3-4 level, bits 5-7 log2 of the repeat count.
		opts := Options{MaxSubneg: 64, MNES: true}
		if mode&1 != 0 {
			opts.Charset = "latin-1"
		}
		i := int(split&0xFF) % (len(input) + 1)
		j := i + int(split>>8)%(len(input)-i+1)
		data := input
		if mode&2 != 0 {
			levels := [...]int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression}
			var buf bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&buf, levels[mode>>3&3])
			zw.Write(bytes.Repeat(input[i:j], 1<<(mode>>5)))
			zw.Flush()
			if mode&4 != 0 {
				zw.Close()
			}
			data = b(input[:i], IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE, buf.Bytes(), input[j:])
		}
		whole := decodeChunks(t, Options{SliceBytes: math.MaxInt, MaxSubneg: 64, MNES: true, Charset: opts.Charset}, [][]byte{data})
		opts.SliceBytes = 1 + int(slice)%4096
		k := int(split) % (len(data) + 1)
		got, _ := decodeSliced(t, opts, [][]byte{data[:k], data[k:]})
		if !slices.Equal(got.events, whole.events) || !bytes.Equal(got.replies, whole.replies) || (got.err == nil) != (whole.err == nil) {
			t.Fatalf("SliceBytes %d, split at %d differs from whole:\n got %q %v %v\nwant %q %v %v",
				opts.SliceBytes, k, got.events, got.replies, got.err, whole.events, whole.replies, whole.err)
		}
	})
}

// FuzzMSDP feeds an MSDP block (or, with overGMCP, a GMCP "MSDP" message)
// made of the fuzzer's bytes and checks that any split decodes alike, the
// block never leaks into the text after it, at most one drop ends the
// block's events, and every decoded variable encodes back (or is refused
// with ErrMSDPValue) to a block that decodes to the same JSON. name and
// value drive AppendMSDP with arbitrary JSON: refused with ErrMSDPValue or
// framed so that it decodes to exactly one variable.
func FuzzMSDP(f *testing.F) {
	seeds := []struct {
		body  []byte
		name  string
		value string
	}{
		{b(msdpVAR, "HEALTH", msdpVAL, "100", msdpVAR, "MANA", msdpVAL, "5"), "REPORT", `["HEALTH","MANA"]`},
		{b(msdpVAR, "ROOM", msdpVAL, msdpTableOpen, msdpVAR, "EXITS", msdpVAL, msdpTableOpen, msdpVAR, "n", msdpVAL, "1", msdpTableClose,
			msdpVAR, "TAGS", msdpVAL, msdpArrayOpen, msdpVAL, "a", msdpVAL, msdpArrayOpen, msdpArrayClose, msdpArrayClose, msdpTableClose), "ROOM", `{"EXITS":{"n":"1"},"T":["a",[]]}`},
		{b(msdpVAR, "LIST", msdpVAL, "A", msdpVAL, "B", msdpVAR, "E"), "LIST", `"COMMANDS"`},
		{b(msdpVAL, "x", msdpTableClose, msdpVAR, msdpArrayOpen), "", `true`},
		{b(msdpVAR, "D", msdpVAL, bytes.Repeat(b(msdpArrayOpen, msdpVAL), 40)), "D", strings.Repeat("[", 40)},
		{b(msdpVAR, "Q", msdpVAL, "\"\\\x00\x7f\xff\xe2\x82"), "Q\xff", `"\u0001"`},
		{b(`{"HEALTH":"100","ROOM":{"N":[1,true,null]}}`), "X", `-1e9`},
	}
	for i, s := range seeds {
		f.Add(s.body, uint16(i*37), i%2 == 1 && i > 5, s.name, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, body []byte, split uint16, overGMCP bool, name string, value []byte) {
		opts := Options{MaxSubneg: 1 << 10}
		block := b(IAC, WILL, OptMSDP, IAC, SB, OptMSDP, AppendEscaped(nil, body), IAC, SE, "after")
		if overGMCP {
			block = b(IAC, WILL, OptGMCP, IAC, SB, OptGMCP, "MSDP ", AppendEscaped(nil, body), IAC, SE, "after")
		}
		e, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		evs, err := e.Decode(block, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkEvents(t, evs)
		whole := decodeChunks(t, opts, [][]byte{block})
		i := int(split) % (len(block) + 1)
		j := i + int(split>>8)%(len(block)-i+1)
		if parts := decodeChunks(t, opts, [][]byte{block[:i], block[i:j], block[j:]}); !slices.Equal(parts.events, whole.events) {
			t.Fatalf("split at %d,%d differs:\n got %q\nwant %q", i, j, parts.events, whole.events)
		}
		if sliced, _ := decodeSliced(t, Options{MaxSubneg: 1 << 10, SliceBytes: 1 + int(split)%13}, [][]byte{block}); !slices.Equal(sliced.events, whole.events) {
			t.Fatalf("slices differ:\n got %q\nwant %q", sliced.events, whole.events)
		}
		if n := len(evs); n == 0 || evs[n-1].Kind != EventText || evs[n-1].Text != "after" {
			t.Fatalf("the block leaked into the text after it: %q", render(evs))
		}
		size := 0
		for _, ev := range evs {
			if ev.Kind == EventMSDP { // a body that is not MSDP stays GMCP, bounded as GMCP
				size += len(ev.Data)
			}
		}
		if size > 6*len(body) {
			t.Fatalf("%d bytes of MSDP JSON from a %d-byte block, bound 6x", size, len(body))
		}
		for k, ev := range evs[:len(evs)-1] {
			switch {
			case ev.Kind == EventMSDPDropped && k != len(evs)-2:
				t.Fatalf("events after a drop: %q", render(evs))
			case ev.Kind == EventMSDP && !overGMCP && !msdp.Commands[ev.Var]:
				// Command names are exempt: a one-item list is sent as a
				// single VAL and comes back as a string.
				roundTrip(t, ev.Var, ev.Data, string(ev.Data))
			}
		}
		// The GMCP scanner relies on parseGMCP's validation but must stay
		// safe on anything: no panic, no loop, valid JSON out.
		checkEvents(t, msdpFromJSON(nil, body))
		// Arbitrary JSON through the encoder.
		out, err := AppendMSDP(nil, name, value)
		if err != nil {
			if !errors.Is(err, ErrMSDPValue) {
				t.Fatalf("AppendMSDP(%q, %q): %v, want ErrMSDPValue", name, value, err)
			}
			return
		}
		if !utf8.ValidString(name) {
			return // the decoder replaces invalid bytes in the name
		}
		e2, _ := New(Options{})
		defer e2.Close()
		got, err := e2.Decode(b(IAC, WILL, OptMSDP, out, "after"), nil)
		if err != nil || len(got) != 2 || got[0].Kind != EventMSDP || got[0].Var != name || got[1].Text != "after" {
			t.Fatalf("AppendMSDP(%q, %q) = %q decodes to %q", name, value, out, render(got))
		}
	})
}

// roundTrip encodes name and value and checks the block decodes to want.
func roundTrip(t *testing.T, name string, value json.RawMessage, want string) {
	t.Helper()
	out, err := AppendMSDP(nil, name, value)
	if err != nil {
		if !errors.Is(err, ErrMSDPValue) {
			t.Fatalf("AppendMSDP(%q, %s): %v", name, value, err)
		}
		return // NUL in a string, or one element more as an array
	}
	e, _ := New(Options{})
	defer e.Close()
	evs, _ := e.Decode(b(IAC, WILL, OptMSDP, out), nil)
	if len(evs) != 1 || evs[0].Kind != EventMSDP || evs[0].Var != name || string(evs[0].Data) != want {
		t.Fatalf("%q = %s encoded as %q decodes to %q", name, value, out, render(evs))
	}
}
