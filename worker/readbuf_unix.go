//go:build unix

package worker

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readBufs holds the read buffers of game connections that are between
// reads, one pool per size (minReadBuffer doubled up to maxReadBuffer). An
// idle session waits for its game without one (see readPooled), so
// thousands of quiet sessions share a handful, and a busy one takes its
// grown size back from the pool after each wait.
var readBufs [readBufClasses]sync.Pool

// readBufClasses is the number of buffer sizes: 2, 4, ..., 64 KiB.
const readBufClasses = 6

// readBufClass is the pool of a buffer of n bytes, or -1 for a size the
// read loop never makes.
func readBufClass(n int) int {
	for c, size := 0, minReadBuffer; c < readBufClasses; c, size = c+1, size*2 {
		if n == size {
			return c
		}
	}
	return -1
}

func getReadBuf(size int) []byte {
	if c := readBufClass(size); c >= 0 {
		if b, ok := readBufs[c].Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, size)
}

// rawReader returns the connection's raw descriptor when it is a plain
// socket (TLS and other wrappers read through conn.Read as before).
func rawReader(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// readPooled reads into *buf, a buffer of size bytes taken from readBufs
// when *buf is nil, and leaves it there for the caller. When the game has
// nothing to read it gives the buffer back and calls idle (if not nil)
// before it waits, so a session waits for its game holding no buffer of
// any size. It is conn.Read with the same system calls (read(2) until
// EAGAIN, then the poller) and the same deadlines and errors.
func readPooled(raw syscall.RawConn, buf *[]byte, size int, idle func()) (int, error) {
	var (
		n    int
		rerr error
	)
	err := raw.Read(func(fd uintptr) bool {
		if *buf == nil {
			*buf = getReadBuf(size)
		}
		for {
			n, rerr = syscall.Read(int(fd), *buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			putReadBuf(buf)
			if idle != nil {
				idle()
			}
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// putReadBuf gives a buffer back to its pool.
func putReadBuf(buf *[]byte) {
	if b := *buf; b != nil {
		if c := readBufClass(len(b)); c >= 0 {
			readBufs[c].Put(&b)
		}
	}
	*buf = nil
}
