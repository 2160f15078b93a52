package telnet

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"math"
	"slices"
	"testing"
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
