package telnet

import (
	"bytes"
	"compress/zlib"
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
