package telnet

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// messages is what a game sends over MCCP2, one sync flush per message:
// the start of the stream, then each message's compressed bytes. Later
// messages repeat earlier ones, so their blocks refer back across flushes,
// past the last 32 KiB once enough was sent.
func messages(t testing.TB, n int) (start []byte, flushed [][]byte, text string) {
	t.Helper()
	var stream bytes.Buffer
	zw := zlib.NewWriter(&stream)
	var all strings.Builder
	for i := range n {
		msg := fmt.Sprintf("You are in room %d. A %s lies here.\r\n> ", i%7, strings.Repeat("dusty ", i%5+1))
		if i%9 == 8 {
			msg = strings.Repeat(fmt.Sprintf("%04d the long description of a room ", i), 200) + "\r\n> "
		}
		if _, err := zw.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		flushed = append(flushed, bytes.Clone(stream.Bytes()))
		stream.Reset()
		all.WriteString(strings.ReplaceAll(msg, "\r\n", "\n"))
	}
	return b(IAC, WILL, OptMCCP2, IAC, SB, OptMCCP2, IAC, SE), flushed, all.String()
}

// An MCCP2 stream fed up to a sync flush holds no coroutine and no flate
// reader: it keeps only its window and starts again with the next bytes,
// which may refer back into that window (also after it wrapped around).
func TestMCCP2IdleAtFlushHoldsNoCoroutine(t *testing.T) {
	start, flushed, want := messages(t, 60)
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var got strings.Builder
	feed := func(p []byte) {
		t.Helper()
		evs, err := e.Decode(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			got.WriteString(ev.Text)
		}
	}
	feed(start)
	for i, msg := range flushed {
		feed(msg)
		if !e.Compressing() {
			t.Fatalf("message %d: the stream ended", i)
		}
		if e.z.next != nil {
			t.Fatalf("message %d: a coroutine is parked after a sync flush", i)
		}
		if len(e.z.hist) > windowSize || cap(e.z.hist) > windowSize {
			t.Fatalf("message %d: window copy of %d bytes (cap %d), want at most %d", i, len(e.z.hist), cap(e.z.hist), windowSize)
		}
	}
	if got.String() != want {
		t.Fatalf("text differs from what was sent (%d bytes, want %d)", got.Len(), len(want))
	}

	// Split inside a message, the coroutine waits for the rest as before.
	last := flushed[len(flushed)-1]
	feed(last[:len(last)/2])
	if e.z.next == nil {
		t.Fatal("no coroutine while a message is half read")
	}
}

// Idle MCCP2 streams cost no goroutine: a thousand sessions each with a
// coroutine parked is a thousand goroutine stacks.
func TestMCCP2IdleStreamsHoldNoGoroutines(t *testing.T) {
	const n = 100
	start, flushed, _ := messages(t, 3)
	before := runtime.NumGoroutine()
	engines := make([]*Engine, n)
	for i := range engines {
		e, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
		for _, p := range append([][]byte{start}, flushed...) {
			if _, err := e.Decode(p, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	// Goroutines of earlier tests may still be on their way out.
	var extra int
	for range 50 {
		if extra = runtime.NumGoroutine() - before; extra < n/10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if extra >= n/10 {
		t.Fatalf("%d idle MCCP2 streams hold %d goroutines, want none", n, extra)
	}
}
