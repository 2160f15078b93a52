package telnet

import (
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"iter"
	"sync"
)

// MCCP2 inflation with the standard library.
//
// compress/flate pulls its input from an io.Reader, while DecodeSlice is
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
// bytes of the stream and never reads ahead (flate uses such a reader as
// is, without a bufio.Reader): bytes handed out are consumed for good,
// which makes DecodeSlice's n exact, and when the stream ends the bytes
// after it are still in the reader and are decoded as plain telnet. The
// zlib framing (two header bytes, the Adler-32 trailer) is read here, the
// way compress/zlib reads it, around a raw flate reader.
//
// Slices: the reader also yields when the slice's budget is spent, so the
// coroutine is only ever parked inside an input request. flate makes a
// request only after all the output it flushed has been read, so at that
// point nothing is held that DecodeSlice could still deliver: a call that
// stops there leaves no text behind, and the next call starts by consuming
// input, which is what guarantees n > 0. Stopping anywhere else would break
// one of the two (see maxInflateOvershoot for what it costs).
//
// Idle streams: games flush (Z_SYNC_FLUSH) after each write, which ends
// with an empty stored block and leaves flate at a block boundary with no
// bits pending. There the whole state of the stream is its last 32 KiB of
// output (the window later blocks may refer back to) and the running
// checksum. When flate asks for the next block's first byte at such a
// boundary and the bytes fed are used up, the inflater unwinds instead of
// parking: the coroutine ends, the flate reader (its own 32 KiB window,
// 8 KiB of Huffman tables) and the 2 KiB output buffer go back to a pool,
// and the stream keeps only its copy of the window. The next bytes start a
// coroutine again, on a pooled reader reset with that window as its
// dictionary. So an idle MCCP2 session holds 32 KiB and no coroutine
// stack, where it held about 46 KiB and one; a busy one pays a coroutine
// start and two 32 KiB copies per burst (BenchmarkDecode/mccp2-lines).
//
// The boundary is recognised from the reader's side: flate reads with Read
// only the four length bytes of a stored block and its contents, so a
// block boundary follows exactly when the last thing read before a
// ReadByte was four bytes by Read (an empty stored block: LEN 0 and NLEN
// 0xFFFF, which flate checks), and the block was not the last one (the
// trailer is read by this file, not by flate).

// windowSize is deflate's window: how far back a block may refer.
const windowSize = 32 << 10

// inflateStep is what the coroutine reports to Decode.
type inflateStep uint8

const (
	stepNeedInput inflateStep = iota // parked in an input request: bytes fed are used up, or the slice is full
	stepOutput                       // out holds decompressed bytes
)

var (
	// errStopped unwinds the inflater when the engine is closed mid-stream.
	errStopped = errors.New("inflater stopped")
	// errIdle unwinds it at a block boundary with nothing more to read.
	errIdle = errors.New("inflater idle at a block boundary")
)

// flateState is what a stream borrows while its coroutine runs.
type flateState struct {
	fr  io.ReadCloser // a raw flate reader, also a flate.Resetter
	buf []byte        // decompressed bytes are read into it
}

var (
	flates = sync.Pool{New: func() any { return &flateState{buf: make([]byte, 2<<10)} }}
	// dicts holds the scratch copy a wrapped-around window is unrolled
	// into for flate's Reset (which copies it again into its own window).
	dicts = sync.Pool{New: func() any { b := make([]byte, 0, windowSize); return &b }}
)

type inflater struct {
	in    []byte // compressed bytes fed and not yet consumed
	full  bool   // the slice's budget is spent: park at the next input request
	out   []byte // decompressed bytes for DecodeSlice, valid until the next resume
	err   error  // why the stream failed; nil after a clean end
	yield func(inflateStep) bool
	next  func() (inflateStep, bool) // nil while no coroutine runs
	stop  func()

	header  bool // the zlib header has been read
	idle    bool // the coroutine ended at a block boundary: the stream goes on
	inFlate bool // flate is reading (not the header or the trailer)
	byRead  int  // bytes flate took with Read since its last ReadByte

	// hist is the last windowSize bytes of output, oldest at pos once it
	// is full; sum is their running Adler-32 (of all output, in fact).
	hist []byte
	pos  int
	sum  hash.Hash32
}

func newInflater() *inflater { return &inflater{sum: adler32.New()} }

// start runs a new coroutine for the stream, from its start or from the
// block boundary it went idle at.
func (z *inflater) start() {
	z.idle = false
	z.next, z.stop = iter.Pull(z.run)
}

// run is the coroutine body: it inflates until the stream ends, fails or
// goes idle at a block boundary.
func (z *inflater) run(yield func(inflateStep) bool) {
	z.yield = yield
	if !z.header {
		if z.err = z.readHeader(); z.err != nil {
			return
		}
		z.header = true
	}
	fs := flates.Get().(*flateState)
	defer flates.Put(fs)
	if err := z.resetFlate(fs); err != nil {
		z.err = err
		return
	}
	for {
		z.inFlate = true
		n, err := fs.fr.Read(fs.buf)
		z.inFlate = false
		if n > 0 {
			z.record(fs.buf[:n])
			z.out = fs.buf[:n]
			if !yield(stepOutput) {
				return
			}
			z.out = nil
		}
		switch {
		case errors.Is(err, errIdle):
			z.idle = true
			return
		case err == io.EOF:
			z.err = z.readTrailer()
			return // clean end (with a good checksum)
		case err != nil:
			z.err = err
			return
		}
	}
}

// resetFlate points fs's flate reader at z, with the window so far as its
// dictionary.
func (z *inflater) resetFlate(fs *flateState) error {
	dict := z.hist
	if z.pos > 0 {
		d := dicts.Get().(*[]byte)
		defer dicts.Put(d)
		*d = append(append((*d)[:0], z.hist[z.pos:]...), z.hist[:z.pos]...)
		dict = *d
	}
	if fs.fr == nil {
		fs.fr = flate.NewReaderDict(z, dict)
		return nil
	}
	return fs.fr.(flate.Resetter).Reset(z, dict)
}

// readHeader reads and checks the zlib header as compress/zlib does.
func (z *inflater) readHeader() error {
	var h [2]byte
	for i := range h {
		c, err := z.ReadByte()
		if err != nil {
			return err
		}
		h[i] = c
	}
	if h[0]&0x0f != 8 || h[0]>>4 > 7 || (uint(h[0])<<8|uint(h[1]))%31 != 0 {
		return zlib.ErrHeader
	}
	if h[1]&0x20 != 0 {
		return zlib.ErrDictionary // a preset dictionary: MCCP2 has none
	}
	return nil
}

// readTrailer reads the Adler-32 of the output and checks it.
func (z *inflater) readTrailer() error {
	var want uint32
	for range 4 {
		c, err := z.ReadByte()
		if err != nil {
			return err
		}
		want = want<<8 | uint32(c)
	}
	if want != z.sum.Sum32() {
		return zlib.ErrChecksum
	}
	return nil
}

// record keeps p in the window copy and the checksum.
func (z *inflater) record(p []byte) {
	z.sum.Write(p)
	if len(p) >= windowSize {
		z.hist = append(z.hist[:0], p[len(p)-windowSize:]...)
		z.pos = 0
		return
	}
	if n := len(z.hist); n < windowSize {
		take := min(len(p), windowSize-n)
		if n+take > cap(z.hist) {
			// Grown by hand: append's growth would overshoot the window.
			h := make([]byte, n, min(windowSize, max(2*cap(z.hist), n+take, 1<<10)))
			copy(h, z.hist)
			z.hist = h
		}
		z.hist = append(z.hist, p[:take]...)
		if p = p[take:]; len(p) == 0 {
			return
		}
	}
	k := copy(z.hist[z.pos:], p)
	copy(z.hist, p[k:])
	z.pos = (z.pos + len(p)) % windowSize
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
	if z.inFlate {
		if z.byRead == 4 && len(z.in) == 0 {
			z.byRead = 0
			return 0, errIdle
		}
		z.byRead = 0
	}
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
	z.byRead += n
	return n, nil
}

func (z *inflater) close() {
	if z.stop != nil {
		z.stop()
	}
	z.next, z.stop = nil, nil
	z.in, z.out, z.hist = nil, nil, nil
}

// inflate feeds p to the open MCCP2 stream and parses what comes out,
// charging it to the slice's budget, until the inflater asks for input it
// may not have: p is used up, or the budget is spent. It returns how many
// bytes of p it consumed; after a clean end of the stream the rest of p is
// plain telnet for the caller. On error all of p counts as consumed.
func (e *Engine) inflate(p []byte) (int, error) {
	z := e.z
	z.in, z.full = p, e.budget <= 0
	if z.next == nil {
		z.start()
	}
	for {
		step, ok := z.next()
		if !ok { // the stream ended, failed or went idle
			n := len(p) - len(z.in)
			if z.idle {
				z.next, z.stop = nil, nil
				z.in = nil
				return n, nil
			}
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
