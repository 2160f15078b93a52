//go:build !unix

package worker

import (
	"net"
	"syscall"
)

// rawReader: off unix, every game connection reads through conn.Read.
func rawReader(net.Conn) syscall.RawConn { return nil }

func readPooled(syscall.RawConn, *[]byte, int, func()) (int, error) {
	panic("readPooled without a raw reader")
}

func putReadBuf(buf *[]byte) { *buf = nil }
