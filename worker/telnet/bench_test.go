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

	b.Run("mccp2-lines", func(b *testing.B) {
		// An MCCP2 session as players make it: one sync-flushed message
		// per read, so each read starts an idle stream again.
		start, flushed, text := messages(b, 200)
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		var evs []Event
		for b.Loop() {
			e, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			if evs, err = e.Decode(start, evs[:0]); err != nil {
				b.Fatal(err)
			}
			for _, p := range flushed {
				if evs, err = e.Decode(p, evs[:0]); err != nil {
					b.Fatal(err)
				}
			}
			e.Close()
		}
	})

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

// floods are what a flooding game sends, as the reads the worker gets:
// 1 MiB of plain text in 64 KiB reads, 1 MiB of compressed transcript
// flushed every 1 KiB in 4 KiB reads, and a zip bomb (16 MiB of one
// letter) in one read.
func floods() []struct {
	name  string
	text  int
	reads [][]byte
} {
	line := []byte("\x1b[1;32mYou see\x1b[0m a \x1b[38;5;208mglowing\x1b[0m sword. HP: 100\r\n")
	plain := bytes.Repeat(line, 1<<20/len(line))

	var transcript bytes.Buffer
	transcript.Write([]byte{IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE})
	zw := zlib.NewWriter(&transcript)
	for p := plain; len(p) > 0; p = p[min(1024, len(p)):] {
		zw.Write(p[:min(1024, len(p))])
		zw.Flush()
	}
	zw.Close()

	var bomb bytes.Buffer
	bomb.Write([]byte{IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE})
	zw = zlib.NewWriter(&bomb)
	zw.Write(bytes.Repeat([]byte{'A'}, 16<<20))
	zw.Close()

	chunk := func(p []byte, n int) [][]byte {
		var out [][]byte
		for ; len(p) > 0; p = p[min(n, len(p)):] {
			out = append(out, p[:min(n, len(p))])
		}
		return out
	}
	return []struct {
		name  string
		text  int
		reads [][]byte
	}{
		{"plain-flood", len(plain), chunk(plain, 64<<10)},
		{"mccp2-flood", len(plain), chunk(transcript.Bytes(), 4<<10)},
		{"mccp2-bomb", 16 << 20, [][]byte{bomb.Bytes()}},
	}
}

// BenchmarkDecodeFlood is Decode over each flood: one call per read.
func BenchmarkDecodeFlood(b *testing.B) {
	for _, fl := range floods() {
		b.Run(fl.name, func(b *testing.B) {
			b.SetBytes(int64(fl.text))
			b.ReportAllocs()
			var evs []Event
			for b.Loop() {
				e, _ := New(Options{})
				for _, p := range fl.reads {
					var err error
					if evs, err = e.Decode(p, evs[:0]); err != nil {
						b.Fatal(err)
					}
				}
				e.Close()
			}
		})
	}
}

// BenchmarkDecodeSlice is the worker's loop over each flood: DecodeSlice
// with the default slice until each read is used up, events handed over
// after every slice.
func BenchmarkDecodeSlice(b *testing.B) {
	for _, fl := range floods() {
		b.Run(fl.name, func(b *testing.B) {
			b.SetBytes(int64(fl.text))
			b.ReportAllocs()
			var evs []Event
			for b.Loop() {
				e, _ := New(Options{})
				for _, p := range fl.reads {
					for len(p) > 0 {
						var n int
						var err error
						if evs, n, err = e.DecodeSlice(p, evs[:0]); err != nil {
							b.Fatal(err)
						}
						p = p[n:]
					}
				}
				e.Close()
			}
		})
	}
}

// BenchmarkDecodeMSDP decodes a typical update (vitals and a room with
// exits, as a game sends them after REPORT), over MSDP and over GMCP.
func BenchmarkDecodeMSDP(b *testing.B) {
	vitals := []any{msdpVAR, "HEALTH", msdpVAL, "95", msdpVAR, "HEALTH_MAX", msdpVAL, "100", msdpVAR, "MANA", msdpVAL, "40"}
	room := []any{msdpVAR, "ROOM", msdpVAL, msdpTableOpen, msdpVAR, "VNUM", msdpVAL, "6008", msdpVAR, "NAME", msdpVAL, "The Temple Square",
		msdpVAR, "EXITS", msdpVAL, msdpTableOpen, msdpVAR, "n", msdpVAL, "6001", msdpVAR, "s", msdpVAL, "6010", msdpTableClose,
		msdpVAR, "TAGS", msdpVAL, msdpArrayOpen, msdpVAL, "safe", msdpVAL, "indoors", msdpArrayClose, msdpTableClose}
	overMSDP := bytes.Repeat(msdpSB(append(vitals, room...)...), 64)
	overGMCP := bytes.Repeat(bb(IAC, SB, OptGMCP, `MSDP {"HEALTH":"95","HEALTH_MAX":"100","MANA":"40","ROOM":{"VNUM":"6008","NAME":"The Temple Square","EXITS":{"n":"6001","s":"6010"},"TAGS":["safe","indoors"]}}`, IAC, SE), 64)
	for _, bc := range []struct {
		name  string
		hello []byte
		chunk []byte
	}{{"msdp", bb(IAC, WILL, OptMSDP), overMSDP}, {"gmcp", bb(IAC, WILL, OptGMCP), overGMCP}} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			evs, _ := e.Decode(bc.hello, nil)
			b.SetBytes(int64(len(bc.chunk)))
			b.ReportAllocs()
			for b.Loop() {
				evs, err = e.Decode(bc.chunk, evs[:0])
				if err != nil || len(evs) != 4*64 {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}

// bb is the input builder b, for benchmarks whose *testing.B shadows it.
var bb = b
