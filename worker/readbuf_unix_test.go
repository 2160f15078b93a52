//go:build unix

package worker

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// A game connection waiting for bytes holds no read buffer; the bytes,
// the deadline and the end of the stream come out as from conn.Read.
func TestReadPooledHoldsNoBufferWhileWaiting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	game, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer game.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := rawReader(conn)
	if raw == nil {
		t.Fatal("a plain TCP connection has no raw reader")
	}

	var buf []byte
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := readPooled(raw, &buf, minReadBuffer, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("nothing sent: err %v, want the deadline", err)
	}
	if buf != nil {
		t.Fatalf("waited holding a %d-byte buffer", len(buf))
	}
	conn.SetReadDeadline(time.Time{})

	if _, err := game.Write([]byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	n, err := readPooled(raw, &buf, minReadBuffer, nil)
	if err != nil || string(buf[:n]) != "hello\r\n" {
		t.Fatalf("read %q, %v", buf[:max(n, 0)], err)
	}
	if len(buf) != minReadBuffer {
		t.Fatalf("buffer of %d bytes, want a pooled %d", len(buf), minReadBuffer)
	}
	putReadBuf(&buf)

	// A grown buffer is given back too once the game has nothing more,
	// and the caller hears of the wait before it starts.
	const grown = 4 * minReadBuffer
	if _, err := game.Write(make([]byte, grown)); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < grown {
		n, err := readPooled(raw, &buf, grown, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) != grown {
			t.Fatalf("buffer of %d bytes, want %d", len(buf), grown)
		}
		got += n
	}
	idle := 0
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := readPooled(raw, &buf, grown, func() { idle++ }); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("nothing more sent: err %v, want the deadline", err)
	}
	if buf != nil {
		t.Fatalf("waited holding a %d-byte buffer", len(buf))
	}
	if idle != 1 {
		t.Fatalf("idle called %d times before one wait, want 1", idle)
	}
	conn.SetReadDeadline(time.Time{})

	game.Close()
	if n, err := readPooled(raw, &buf, minReadBuffer, nil); n != 0 || err != io.EOF {
		t.Fatalf("after the game closed: %d, %v; want 0, EOF", n, err)
	}
}
