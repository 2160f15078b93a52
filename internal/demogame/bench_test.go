package demogame

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

func startBenchServer(b *testing.B, cfg Config) string {
	b.Helper()
	cfg.Logger = quietLogger
	_, addr, stop, err := Start(context.Background(), cfg, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return addr
}

func dialBench(b *testing.B, addr string) net.Conn {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// BenchmarkFlood measures the game's own output rate: one op is a 1 MiB
// flood (1024 lines of 1024 bytes) read by a client that only counts bytes.
func BenchmarkFlood(b *testing.B) {
	const lines, size = 1024, 1024
	conn := dialBench(b, startBenchServer(b, Config{Bench: true}))
	cmd := []byte(fmt.Sprintf("flood %d %d\r\n", lines, size))
	buf := make([]byte, lines*size)
	b.SetBytes(lines * size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(cmd); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloodMCCP2 is BenchmarkFlood through MCCP2: the server's zlib
// compression, and the client's inflate, are in the loop. SetBytes counts
// the uncompressed bytes.
func BenchmarkFloodMCCP2(b *testing.B) {
	const lines, size = 1024, 1024
	addr := startBenchServer(b, Config{
		NoEcho: true, NoSGA: true, NoTTYPE: true, NoNAWS: true, NoCharset: true,
		NoEOR: true, NoGMCP: true, NoMSSP: true, NoNewEnviron: true,
		NegotiationWait: time.Minute,
	})
	conn := dialBench(b, addr)
	raw := bufio.NewReader(conn)
	readUntil(b, raw, []byte{cmdIAC, cmdWILL, optMCCP2})
	conn.Write([]byte{cmdIAC, cmdDO, optMCCP2})
	readUntil(b, raw, []byte{cmdIAC, cmdSB, optMCCP2, cmdIAC, cmdSE})
	z, err := zlib.NewReader(raw)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(z, 64<<10)
	prompt := []byte{cmdIAC, cmdGA} // only MCCP2 agreed: classic GA marks
	readUntil(b, r, append([]byte("name? "), prompt...))
	conn.Write([]byte("benchy\r\n"))
	readUntil(b, r, append([]byte("Password: "), prompt...))
	conn.Write([]byte("pw\r\n"))
	readUntil(b, r, append([]byte("> "), prompt...))

	cmd := []byte(fmt.Sprintf("flood %d %d\r\n", lines, size))
	buf := make([]byte, lines*size)
	b.SetBytes(lines * size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(cmd); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
		readUntil(b, r, append([]byte("> "), prompt...))
	}
}

// BenchmarkEchoRoundTrip is one line to the bench-mode game and back.
func BenchmarkEchoRoundTrip(b *testing.B) {
	conn := dialBench(b, startBenchServer(b, Config{Bench: true}))
	line := []byte("the quick brown fox jumps over the lazy dog\r\n")
	buf := make([]byte, len(line))
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(line); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// readUntil reads r up to and including want, in bounded steps.
func readUntil(b *testing.B, r *bufio.Reader, want []byte) {
	b.Helper()
	var seen []byte
	for !bytes.HasSuffix(seen, want) {
		c, err := r.ReadByte()
		if err != nil {
			b.Fatalf("waiting for %q: %v (after %q)", want, err, seen)
		}
		seen = append(seen, c)
		if len(seen) > 1<<20 {
			b.Fatalf("no %q in the first MiB", want)
		}
	}
}
