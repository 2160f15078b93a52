package edge

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// TestIdleConnectionMemory measures the edge's heap per idle, attached
// browser connection: 5,000 connections, each past hello (subscribed on the
// hub, welcome sent), against real Redis. It is a measurement, not a check,
// and runs only with TRELLIS_MEASURE=1:
//
//	TRELLIS_MEASURE=1 go test -run IdleConnectionMemory -v ./edge/
//
// The browsers are raw TCP connections that write a handshake and a hello
// and then read nothing, so the client side adds only a socket per
// connection to the heap.
func TestIdleConnectionMemory(t *testing.T) {
	if os.Getenv("TRELLIS_MEASURE") == "" {
		t.Skip("a measurement: set TRELLIS_MEASURE=1 to run it")
	}
	const n = 5000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 3*n {
		lim.Cur = min(lim.Max, 3*n)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("raise the open file limit: %v", err)
		}
	}
	if lim.Cur < 2*n+100 {
		t.Skipf("open file limit %d is too low for %d connections", lim.Cur, n)
	}
	e := newEnv(t, func(c *Config) { c.PingInterval = time.Minute; c.LeaseCheck = time.Second; c.MaxSessionsPerUser = 0 })
	base := heap()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := rawHello(e.addr, e.token(fmt.Sprintf("mem%d", i)))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "every connection attached", func() bool {
		return gaugeValue(t, e.srv.m.subscriptions) == n
	})
	time.Sleep(500 * time.Millisecond) // let the writers send their welcomes and go idle
	after := heap()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap objects %.1f MiB, stacks %.1f MiB", float64(ms.HeapAlloc)/(1<<20), float64(ms.StackInuse)/(1<<20))
	if p := os.Getenv("TRELLIS_MEMPROFILE"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	t.Logf("%d idle attached connections: heap %.1f MiB -> %.1f MiB, %.0f bytes per connection (goroutines: %d)",
		n, float64(base)/(1<<20), float64(after)/(1<<20), float64(after-base)/n, runtime.NumGoroutine())
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// rawHello opens a WebSocket by hand and sends a hello frame.
func rawHello(addr, token string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %v %v", resp, err)
	}
	payload := []byte(`{"type":"hello","game":"demo","token":"` + token + `","cols":80,"rows":24}`)
	frame := []byte{0x81}
	switch {
	case len(payload) < 126:
		frame = append(frame, 0x80|byte(len(payload)))
	default:
		frame = append(frame, 0x80|126, 0, 0)
		binary.BigEndian.PutUint16(frame[2:], uint16(len(payload)))
	}
	mask := [4]byte{1, 2, 3, 4}
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
