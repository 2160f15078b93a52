package dialguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for addr, want := range map[string]string{
		"8.8.8.8":                "",
		"2606:4700::1111":        "",
		"127.0.0.1":              "loopback",
		"127.9.9.9":              "loopback",
		"::1":                    "loopback",
		"::127.0.0.1":            "reserved (IPv4-compatible IPv6)",
		"2002:7f00:1::1":         "reserved (6to4, embeds an IPv4 address)",
		"::ffff:127.0.0.1":       "loopback",
		"64:ff9b::7f00:1":        "loopback", // NAT64 of 127.0.0.1
		"64:ff9b::808:808":       "",         // NAT64 of 8.8.8.8
		"10.1.2.3":               "private",
		"172.31.255.255":         "private",
		"192.168.0.1":            "private",
		"169.254.169.254":        "link-local",
		"fe80::1":                "link-local",
		"0.0.0.0":                "unspecified (this network)",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "reserved",
		"fd00::1":                "private (unique local)",
		"100.64.0.1":             "shared address space (carrier-grade NAT)",
		"::ffff:169.254.169.254": "link-local",
	} {
		if got := Classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", addr, got, want)
		}
	}
}

func listen(t *testing.T) (netip.AddrPort, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), func() { ln.Close() }
}

func dial(g *Guard, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second, Control: g.Control}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// The guard works on the address connected to: a loopback game is
// refused whether it is named by IP or by a host name that resolves to
// loopback (what a DNS rebinding attack would produce).
func TestDialRefusedByDefault(t *testing.T) {
	ap, stop := listen(t)
	defer stop()
	g, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{ap.String(), net.JoinHostPort("localhost", strconv.Itoa(int(ap.Port())))} {
		err := dial(g, addr)
		var re *RefusedError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &re) {
			t.Fatalf("dial %s: %v, want a refusal", addr, err)
		}
		if re.Why == "" || re.Addr.Port() != ap.Port() {
			t.Fatalf("refusal %+v lacks the address or reason", re)
		}
	}
}

func TestAllowedNetworkButNotTrellisEndpoints(t *testing.T) {
	game, stopGame := listen(t)
	defer stopGame()
	redis, stopRedis := listen(t)
	defer stopRedis()
	allow, err := ParsePrefixes([]string{"127.0.0.0/8", " ::1 "})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), allow, []Endpoint{
		{HostPort: net.JoinHostPort("localhost", strconv.Itoa(int(redis.Port()))), What: "redis"},
		{HostPort: ":" + strconv.Itoa(int(game.Port())^1), What: "admin listener"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(g, game.String()); err != nil {
		t.Fatalf("allowed game refused: %v", err)
	}
	err = dial(g, redis.String())
	var re *RefusedError
	if !errors.As(err, &re) || re.Why != "Trellis's own redis" {
		t.Fatalf("dial to Redis: %v, want refused as Trellis's own redis", err)
	}
	// Every loopback address reaches a server bound to all interfaces.
	if err := g.Check(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), game.Port()^1)); !errors.Is(err, ErrRefused) {
		t.Fatalf("admin port on 127.0.0.2: %v, want refused", err)
	}
	if err := g.Check(netip.MustParseAddrPort("[::ffff:127.0.0.1]:" + strconv.Itoa(int(redis.Port())))); !errors.Is(err, ErrRefused) {
		t.Fatalf("mapped address of Redis: %v, want refused", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.0.0.0/8", "192.168.1.5", "fd00::/8", ""})
	if err != nil || len(got) != 3 || got[1].Bits() != 32 {
		t.Fatalf("ParsePrefixes = %v, %v", got, err)
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestHostWarning(t *testing.T) {
	ctx := context.Background()
	if w := HostWarning(ctx, "127.0.0.1"); w == "" {
		t.Error("no warning for loopback")
	}
	if w := HostWarning(ctx, "localhost"); w == "" || strings.Contains(w, "::ffff:") {
		t.Errorf("warning for localhost: %q, want one naming the address as resolved (not IPv4-mapped)", w)
	}
	if w := HostWarning(ctx, "8.8.8.8"); w != "" {
		t.Errorf("warning for a public address: %s", w)
	}
}

// Redis named by a loopback address (the usual redis://127.0.0.1:6379)
// may listen on every interface, so the port is refused on every address
// of this host, IPv6 loopback included, even with every network allowed.
func TestLoopbackEndpointRefusedOnEveryLocalAddress(t *testing.T) {
	all, err := ParsePrefixes([]string{"0.0.0.0/0", "::/0"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), all, []Endpoint{{HostPort: "127.0.0.1:6379", What: "redis"}})
	if err != nil {
		t.Fatal(err)
	}
	targets := []netip.AddrPort{netip.MustParseAddrPort("[::1]:6379"), netip.MustParseAddrPort("127.0.0.53:6379")}
	ifaddrs, _ := net.InterfaceAddrs()
	for _, ia := range ifaddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && !p.Addr().IsLoopback() {
			targets = append(targets, netip.AddrPortFrom(p.Addr().WithZone(""), 6379))
		}
	}
	for _, ap := range targets {
		if err := g.Check(ap); !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%s) = %v, want refused as Trellis's own redis", ap, err)
		}
	}
	if err := g.Check(netip.MustParseAddrPort("8.8.8.8:6379")); err != nil {
		t.Errorf("a remote host's port 6379 refused: %v", err)
	}
	if err := g.Check(netip.MustParseAddrPort("127.0.0.1:6380")); err != nil {
		t.Errorf("another loopback port refused: %v", err)
	}
}
