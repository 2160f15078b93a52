package worker

import (
	"net"
	"testing"
	"time"
)

// What a peer sent and nobody read is counted from the kernel's queue.
func TestUnreadBytesCountsTheKernelQueue(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	if n := unreadBytes(c); n != 0 {
		t.Fatalf("nothing sent: unreadBytes = %d", n)
	}
	if _, err := peer.Write(make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	var n int64
	for range 200 { // loopback delivers within microseconds; bounded anyway
		if n = unreadBytes(c); n == 3000 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n != 3000 {
		t.Fatalf("3000 bytes sent, none read: unreadBytes = %d", n)
	}
	if _, err := c.Read(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if n := unreadBytes(c); n != 2000 {
		t.Errorf("after reading 1000: unreadBytes = %d, want 2000", n)
	}
}
