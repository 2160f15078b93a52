package dialguard

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dualName is a host name with an address of each family on loopback,
// served by dnsServer: /etc/hosts usually gives localhost only one.
const dualName = "dual.trellis.test."

// dnsServer answers A and AAAA queries for dualName with 127.0.0.1 and
// ::1, on UDP loopback, until the test ends. It returns a resolver that
// asks it and nothing else.
func dnsServer(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	})
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// dnsAnswer builds the reply to one query (RFC 1035 §4): the question
// echoed, and an answer when it asks for dualName's A or AAAA.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	// The question's name: labels up to the zero byte.
	i := 12
	var name []byte
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		name = append(append(name, q[i+1:i+1+l]...), '.')
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	var rdata []byte
	if string(name) == dualName {
		switch qtype {
		case 1:
			rdata = net.IPv4(127, 0, 0, 1).To4()
		case 28:
			rdata = net.IPv6loopback
		}
	}
	resp := append([]byte{}, q[:2]...)
	rcode := byte(0)
	if string(name) != dualName {
		rcode = 3 // NXDOMAIN
	}
	an := 0
	if rdata != nil {
		an = 1
	}
	resp = append(resp, 0x81, 0x80|rcode, 0, 1, 0, byte(an), 0, 0, 0, 0)
	resp = append(resp, question...)
	if rdata != nil {
		resp = append(resp, 0xc0, 12) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = append(resp, 0, 1, 0, 0, 0, 60) // IN, TTL 60
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}

// listenBoth listens on 127.0.0.1 and [::1] at one port (each if asked).
func listenBoth(t *testing.T, v4, v6 bool) int {
	t.Helper()
	for range 20 {
		first := "127.0.0.1:0"
		if !v4 {
			first = "[::1]:0"
		}
		ln, err := net.Listen("tcp", first)
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		if v4 && v6 {
			ln6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
			if err != nil {
				ln.Close() // the port is taken on ::1: try another
				continue
			}
			lns = append(lns, ln6)
		}
		t.Cleanup(func() {
			for _, l := range lns {
				l.Close()
			}
		})
		return port
	}
	t.Fatal("no port free on both loopbacks")
	return 0
}

// TestDualStackNameDialsEachAddressThroughTheGuard: a name with an IPv6
// and an IPv4 address is dialled Happy Eyeballs style by net.Dialer (RFC
// 6555: the first family, then the other after FallbackDelay or at once
// when the first fails); the guard's Control runs on each address tried,
// so a family the guard refuses is skipped, not a way around it.
func TestDualStackNameDialsEachAddressThroughTheGuard(t *testing.T) {
	r := dnsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if addrs, err := r.LookupNetIP(ctx, "ip", dualName); err != nil || len(addrs) != 2 {
		t.Fatalf("the test name resolves to %v, %v; want ::1 and 127.0.0.1", addrs, err)
	}
	both := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		name     string
		v4, v6   bool           // which families listen
		allow    []netip.Prefix // what the guard allows
		want     string         // the family connected to, or "" for refused
		refusedT bool           // the error is the guard's
	}{
		{"only IPv4 listens", true, false, both, "127.0.0.1", false},
		{"only IPv6 listens", false, true, both, "::1", false},
		{"guard refuses IPv6", true, true, both[:1], "127.0.0.1", false},
		{"guard refuses IPv4", true, true, both[1:], "::1", false},
		{"guard refuses both", true, true, nil, "", true},
	} {
		g, err := New(ctx, c.allow, nil)
		if err != nil {
			t.Fatal(err)
		}
		port := listenBoth(t, c.v4, c.v6)
		var (
			mu    sync.Mutex
			tried []string
		)
		d := &net.Dialer{Resolver: r, Control: func(network, address string, rc syscall.RawConn) error {
			mu.Lock()
			tried = append(tried, address)
			mu.Unlock()
			return g.Control(network, address, rc)
		}}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(dualName, strconv.Itoa(port)))
		switch {
		case c.want == "" && err == nil:
			conn.Close()
			t.Errorf("%s: connected to %s", c.name, conn.RemoteAddr())
		case c.want == "":
			if c.refusedT && !errors.Is(err, ErrRefused) {
				t.Errorf("%s: %v, want the guard's refusal", c.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		default:
			got := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()
			conn.Close()
			if got != c.want {
				t.Errorf("%s: connected to %s, want %s", c.name, got, c.want)
			}
		}
		mu.Lock()
		// The IPv6 address is tried first (RFC 6724 order); the guard saw
		// the IPv4 one too whenever IPv6 did not connect. When IPv6
		// connects at once, Go may or may not have started the fallback.
		if len(tried) == 0 || tried[0] != net.JoinHostPort("::1", strconv.Itoa(port)) {
			t.Errorf("%s: addresses tried %v, want [::1] first", c.name, tried)
		}
		if c.want != "::1" && len(tried) != 2 {
			t.Errorf("%s: the guard saw %v, want both addresses", c.name, tried)
		}
		mu.Unlock()
	}
}
