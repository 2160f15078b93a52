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
// compress/zlib pulls its input from an io.Reader, while Decode is pushed
// bytes as the game sends them. Two ways out were rejected: re-inflating all
// bytes since the stream began on every call (quadratic), and a goroutine
// per stream fed through a pipe (scheduler hops and a second owner of the
// engine's state). Instead the inflater runs on a coroutine (iter.Pull): its
// reader hands out the bytes fed so far and, when they run out, yields back
// to Decode, which returns; the next Decode resumes the coroutine with new
// bytes. The switch is a direct hand-off on the same thread, not a scheduler
// round trip, and everything stays deterministic.
//
// The reader implements io.ByteReader, so compress/flate reads exactly the
// bytes of the stream and never reads ahead: when the zlib stream ends, the
// bytes after it are still in the reader and are decoded as plain telnet.
//
// Costs: the flate window and tables (about 40 KiB) plus the coroutine's
// stack per open stream, one coroutine switch per Decode call and per
// decompressed chunk. flate only releases output at the end of a deflate
// block; games flush (Z_SYNC_FLUSH) after each write, which ends a block, so
// in practice output is never held back.

// inflateStep is what the coroutine reports to Decode.
type inflateStep uint8

const (
	stepNeedInput inflateStep = iota // all bytes fed so far are consumed
	stepOutput                       // out holds decompressed bytes
)

// errStopped unwinds the inflater when the engine is closed mid-stream.
var errStopped = errors.New("inflater stopped")

type inflater struct {
	in    []byte // compressed bytes fed and not yet consumed
	out   []byte // decompressed bytes for Decode, valid until the next resume
	buf   []byte
	err   error // why the stream failed; nil after a clean end
	yield func(inflateStep) bool
	next  func() (inflateStep, bool)
	stop  func()
}

func newInflater() *inflater {
	z := &inflater{buf: make([]byte, 8<<10)}
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

// wait yields to Decode until more compressed bytes are fed.
func (z *inflater) wait() error {
	for len(z.in) == 0 {
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

// inflate feeds p to the open MCCP2 stream and decodes what comes out. It
// returns the bytes after the end of the stream, which are plain telnet.
func (e *Engine) inflate(p []byte) ([]byte, error) {
	z := e.z
	z.in = p
	for {
		step, ok := z.next()
		if !ok { // the stream ended or failed
			rest := z.in
			z.close()
			e.z = nil
			if z.err != nil {
				e.compressionFailed()
				return nil, fmt.Errorf("%w: %w", ErrCompression, z.err)
			}
			return rest, nil
		}
		switch step {
		case stepNeedInput:
			z.in = nil // consumed; never keep the caller's buffer
			return nil, nil
		case stepOutput:
			e.parse(z.out) // cannot start another stream: e.z is set
		}
	}
}

// compressionFailed refuses MCCP2 for the rest of the connection and asks
// the game to stop compressing.
func (e *Engine) compressionFailed() {
	e.mccpRefused = true
	e.himTransition(OptMCCP2, (*qstate).askOff)
}
