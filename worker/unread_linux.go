package worker

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadBytes is how many bytes wait in c's kernel receive queue, read by
// nobody: what a game sent that is lost when the connection is cut (a
// lost lease, a self-fence). Through TLS it counts the record bytes, so it
// is an estimate of the text; 0 when the socket cannot be asked.
func unreadBytes(c net.Conn) int64 {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	if err := raw.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil || n < 0 {
		return 0
	}
	return int64(n)
}
