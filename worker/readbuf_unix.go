//go:build unix

package worker

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readBufs holds the minimum-size read buffers of game connections that
// are between reads. An idle session waits for its game without one (see
// readPooled), so thousands of quiet sessions share a handful.
var readBufs = sync.Pool{New: func() any { b := make([]byte, minReadBuffer); return &b }}

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

// readPooled waits until raw is readable holding no buffer, then reads
// into one from readBufs (left in *buf for the caller, who gives it back
// with putReadBuf). It is conn.Read with the same system calls (read(2)
// until EAGAIN, then the poller) and the same deadlines and errors.
func readPooled(raw syscall.RawConn, buf *[]byte) (int, error) {
	var (
		n    int
		rerr error
	)
	err := raw.Read(func(fd uintptr) bool {
		if *buf == nil {
			*buf = *readBufs.Get().(*[]byte)
		}
		for {
			n, rerr = syscall.Read(int(fd), *buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			putReadBuf(buf)
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

// putReadBuf gives a pooled buffer back; larger ones are left to the GC.
func putReadBuf(buf *[]byte) {
	if b := *buf; len(b) == minReadBuffer {
		readBufs.Put(&b)
	}
	*buf = nil
}
