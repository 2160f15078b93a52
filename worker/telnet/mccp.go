package telnet

import (
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"iter"
)

// MCCP2 inflation with the standard library.
//
// compress/zlib pulls its input from an io.Reader, while DecodeSlice is
// pushed bytes as the game sends them. Two ways out were rejected:
// re-inflating all bytes since the stream began on every call (quadratic),
// and a goroutine per stream fed through a pipe (scheduler hops and a second
// owner of the engine's state). Instead the inflater runs on a coroutine
// (iter.Pull): its reader hands out the bytes fed so far and, when they run
// out, yields back to DecodeSlice, which returns; the next call resumes the
// coroutine with new bytes. The switch is a direct hand-off on the same
// thread, not a scheduler round trip, and everything stays deterministic.
//
// The reader implements io.ByteReader, so compress/flate reads exactly the
// bytes of the stream and never reads ahead (zlib and flate use such a
// reader as is, without a bufio.Reader): bytes handed out are consumed for
// good, which makes DecodeSlice's n exact, and when the zlib stream ends the
// bytes after it are still in the reader and are decoded as plain telnet.
//
// Slices: the reader also yields when the slice's budget is spent, so the
// coroutine is only ever parked inside an input request. flate makes a
// request only after all the output it flushed has been read, so at that
// point nothing is held that DecodeSlice could still deliver: a call that
// stops there leaves no text behind, and the next call starts by consuming
// input, which is what guarantees n > 0. Stopping anywhere else would break
// one of the two (see maxInflateOvershoot for what it costs).
//
// Costs: the flate window and tables (about 40 KiB) plus the coroutine's
// stack per open stream, one coroutine switch per call and per
// decompressed chunk. flate only releases output at the end of a deflate
// block or when its window is full; games flush (Z_SYNC_FLUSH) after each
// write, which ends a block, so in practice output is never held back.

// inflateStep is what the coroutine reports to Decode.
type inflateStep uint8

const (
	stepNeedInput inflateStep = iota // parked in an input request: bytes fed are used up, or the slice is full
	stepOutput                       // out holds decompressed bytes
)

// errStopped unwinds the inflater when the engine is closed mid-stream.
var errStopped = errors.New("inflater stopped")

type inflater struct {
	in    []byte // compressed bytes fed and not yet consumed
	full  bool   // the slice's budget is spent: park at the next input request
	out   []byte // decompressed bytes for DecodeSlice, valid until the next resume
	buf   []byte
	err   error // why the stream failed; nil after a clean end
	yield func(inflateStep) bool
	next  func() (inflateStep, bool)
	stop  func()
}

func newInflater() *inflater {
	// 2 KiB, not 8: every open stream holds it, and an idle one is most
	// sessions. flate copies out of its window in buffer-sized reads, so a
	// smaller one costs coroutine switches on a flood: BenchmarkDecodeFlood
	// mccp2-flood 225-283 MB/s against 271-326 MB/s with 8 KiB (alternating
	// runs), still ten times what the rest of the output path carries.
	z := &inflater{buf: make([]byte, 2<<10)}
	z.next, z.stop = iter.Pull(z.run)
	return z
}

// run is the coroutine body: it inflates until the stream ends or fails.
func (z *inflater) run(yield func(inflateStep) bool) {
	z.yield = yield
	zr, err := zlib.NewReader(z)
	if err != nil {
		z.err = err
		return
	}
	for {
		n, err := zr.Read(z.buf)
		if n > 0 {
			z.out = z.buf[:n]
			if !yield(stepOutput) {
				return
			}
		}
		switch {
		case err == io.EOF:
			return // clean end, checksum verified
		case err != nil:
			z.err = err
			return
		}
	}
}

// wait yields to DecodeSlice until there are bytes it may consume.
func (z *inflater) wait() error {
	for len(z.in) == 0 || z.full {
		if !z.yield(stepNeedInput) {
			return errStopped
		}
	}
	return nil
}

func (z *inflater) ReadByte() (byte, error) {
	if err := z.wait(); err != nil {
		return 0, err
	}
	c := z.in[0]
	z.in = z.in[1:]
	return c, nil
}

func (z *inflater) Read(p []byte) (int, error) {
	if err := z.wait(); err != nil {
		return 0, err
	}
	n := copy(p, z.in)
	z.in = z.in[n:]
	return n, nil
}

func (z *inflater) close() {
	z.stop()
	z.in, z.out = nil, nil
}

// inflate feeds p to the open MCCP2 stream and parses what comes out,
// charging it to the slice's budget, until the inflater asks for input it
// may not have: p is used up, or the budget is spent. It returns how many
// bytes of p it consumed; after a clean end of the stream the rest of p is
// plain telnet for the caller. On error all of p counts as consumed.
func (e *Engine) inflate(p []byte) (int, error) {
	z := e.z
	z.in, z.full = p, e.budget <= 0
	for {
		step, ok := z.next()
		if !ok { // the stream ended or failed
			n := len(p) - len(z.in)
			z.close()
			e.z = nil
			if z.err != nil {
				e.compressionFailed()
				return len(p), fmt.Errorf("%w: %w", ErrCompression, z.err)
			}
			return n, nil
		}
		switch step {
		case stepNeedInput:
			n := len(p) - len(z.in)
			z.in = nil // never keep the caller's buffer
			return n, nil
		case stepOutput:
			e.parse(z.out) // cannot start another stream: e.z is set
			e.budget -= len(z.out)
			z.full = e.budget <= 0
		}
	}
}

// compressionFailed refuses MCCP2 for the rest of the connection and asks
// the game to stop compressing.
func (e *Engine) compressionFailed() {
	e.mccpRefused = true
	e.himTransition(OptMCCP2, (*qstate).askOff)
}
