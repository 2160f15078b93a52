package telnet

import (
	"bytes"
	"compress/zlib"
	"strings"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	plain := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog near the river bank.\r\n", 256)) // 16.6 KB
	ansi := []byte(strings.Repeat("\x1b[1;32mYou see\x1b[0m a \x1b[38;5;208mglowing\x1b[0m sword. \x1b[38;2;10;20;30mHP\x1b[0m: 100\r\n", 256))
	utf := []byte(strings.Repeat("Vous êtes dans une forêt sombre — 北の森。\r\n", 256))

	for _, bc := range []struct {
		name  string
		chunk []byte
	}{{"plain", plain}, {"ansi", ansi}, {"utf8", utf}} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			var evs []Event
			b.SetBytes(int64(len(bc.chunk)))
			b.ReportAllocs()
			for b.Loop() {
				evs, err = e.Decode(bc.chunk, evs[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("mccp2", func(b *testing.B) {
		// A 1 MiB transcript compressed the way games do it: a sync flush
		// after each write, delivered in 4 KiB reads.
		var stream bytes.Buffer
		stream.Write([]byte{IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE})
		zw := zlib.NewWriter(&stream)
		total := 0
		for total < 1<<20 {
			zw.Write(ansi[:1024])
			zw.Flush()
			total += 1024
		}
		zw.Close()
		data := stream.Bytes()
		b.SetBytes(int64(total))
		b.ReportAllocs()
		var evs []Event
		for b.Loop() {
			e, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			for p := data; len(p) > 0; {
				n := min(len(p), 4096)
				if evs, err = e.Decode(p[:n], evs[:0]); err != nil {
					b.Fatal(err)
				}
				p = p[n:]
			}
			e.Close()
		}
	})
}
