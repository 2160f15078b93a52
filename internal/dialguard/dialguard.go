package dialguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by every error the guard returns for an address it
// does not allow.
var ErrRefused = errors.New("address not allowed for games")

// RefusedError says which address was refused and why.
type RefusedError struct {
	Addr netip.AddrPort
	Why  string // "loopback", "private", "trellis endpoint", ...
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("dial guard: %s is %s: %v", e.Addr, e.Why, ErrRefused)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// special lists the ranges refused unless allowed, with the word that says
// why. Order matters only for the word: the first match names the reason.
var special = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes broadcast
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "reserved (IPv4-compatible IPv6)"},
	{netip.MustParsePrefix("2002::/16"), "reserved (6to4, embeds an IPv4 address)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "reserved (local NAT64)"},
	{netip.MustParsePrefix("100::/64"), "reserved (discard)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Classify says why addr would be refused by default, or "" for a public
// unicast address. IPv4-mapped IPv6 addresses are judged as IPv4, and
// NAT64 addresses (64:ff9b::/96) by the IPv4 address they embed, so
// neither form is a way around the ranges above.
func Classify(addr netip.Addr) string {
	addr = canonical(addr)
	if !addr.IsValid() {
		return "not an IP address"
	}
	for _, s := range special {
		if s.p.Contains(addr) {
			return s.why
		}
	}
	return ""
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

func canonical(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return addr
}

// Guard is the policy: the ranges refused by default, minus the networks
// the operator allowed, plus Trellis's own endpoints, always refused. The
// zero value refuses every special range and allows public addresses. A
// Guard is immutable and safe for concurrent use.
type Guard struct {
	allow []netip.Prefix
	deny  map[netip.AddrPort]string
	// denyPorts refuses these ports on every local interface address, for
	// endpoints that listen on all interfaces (":6379" reaches Redis through
	// the host's own private address too).
	denyPorts map[uint16]string
	local     map[netip.Addr]bool
}

// Endpoint is one of Trellis's own services that no game may be.
type Endpoint struct {
	HostPort string // host:port as configured ("redis:6379", ":9091")
	What     string // "redis", "worker admin listener"
}

// New returns a guard that allows the networks in allow on top of public
// addresses and refuses the endpoints in deny even inside them. Host names
// in deny are resolved now (with ctx), every address they resolve to is
// refused; an endpoint whose host is empty, unspecified or loopback
// (":9091", "0.0.0.0:9091", "127.0.0.1:6379", "localhost:6379") is refused
// on every address of this host, since a server there may listen on all
// interfaces whatever address it was named by. An endpoint
// that cannot be resolved is an error: a guard that silently lost its
// Redis entry would be worse than no start at all.
func New(ctx context.Context, allow []netip.Prefix, deny []Endpoint) (*Guard, error) {
	g := &Guard{
		allow:     append([]netip.Prefix(nil), allow...),
		deny:      make(map[netip.AddrPort]string),
		denyPorts: make(map[uint16]string),
		local:     localAddrs(),
	}
	for _, e := range deny {
		host, portStr, err := net.SplitHostPort(e.HostPort)
		if err != nil {
			return nil, fmt.Errorf("dial guard: %s endpoint %q: %w", e.What, e.HostPort, err)
		}
		port, err := net.LookupPort("tcp", portStr)
		if err != nil {
			return nil, fmt.Errorf("dial guard: %s endpoint %q: %w", e.What, e.HostPort, err)
		}
		p := uint16(port)
		if host == "" {
			g.denyPorts[p] = e.What
			continue
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("dial guard: resolve %s endpoint %q: %w", e.What, e.HostPort, err)
		}
		for _, a := range addrs {
			a = canonical(a)
			if a.IsUnspecified() || a.IsLoopback() {
				// A server named by a loopback address runs on this host
				// and may listen on all of its interfaces.
				g.denyPorts[p] = e.What
			} else {
				g.deny[netip.AddrPortFrom(a, p)] = e.What
			}
		}
	}
	return g, nil
}

func localAddrs() map[netip.Addr]bool {
	m := make(map[netip.Addr]bool)
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return m
	}
	for _, ia := range ifaddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			m[canonical(p.Addr())] = true
		}
	}
	// Loopback answers on every 127/8 address, not only the ones listed.
	return m
}

// Allowed returns the networks allowed beyond public addresses.
func (g *Guard) Allowed() []netip.Prefix { return append([]netip.Prefix(nil), g.allow...) }

// Check returns nil if ap may be dialled, else a *RefusedError.
func (g *Guard) Check(ap netip.AddrPort) error {
	addr := canonical(ap.Addr())
	ap = netip.AddrPortFrom(addr, ap.Port())
	if what, ok := g.deny[ap]; ok {
		return &RefusedError{Addr: ap, Why: "Trellis's own " + what}
	}
	if what, ok := g.denyPorts[ap.Port()]; ok && (g.local[addr] || addr.IsLoopback() || addr.IsUnspecified()) {
		return &RefusedError{Addr: ap, Why: "Trellis's own " + what}
	}
	why := Classify(addr)
	if why == "" {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	return &RefusedError{Addr: ap, Why: why + " (allow it with TRELLIS_WORKER_ALLOW_NETWORKS)"}
}

// Control is a net.Dialer Control function: it runs after name resolution,
// for every address the dialer tries, so a name that resolves (or is
// rebound) to a refused address is refused at connect time.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return &RefusedError{Why: "not TCP (" + network + ")"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial guard: address %q: %w", address, ErrRefused)
	}
	return g.Check(ap)
}

// ParsePrefixes parses CIDRs ("10.1.0.0/16") and single addresses
// ("192.168.1.5", taken as /32 or /128).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// HostWarning says why a registry host would be refused by default, for
// `trellis games add`: an IP literal in a special range, or a name that
// resolves to one now. "" when nothing is wrong that can be seen now (the
// guard still checks at every dial).
func HostWarning(ctx context.Context, host string) string {
	if a, err := netip.ParseAddr(host); err == nil {
		if why := Classify(a); why != "" {
			return fmt.Sprintf("%s is %s: workers refuse it unless TRELLIS_WORKER_ALLOW_NETWORKS allows it", host, why)
		}
		return ""
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Sprintf("%s does not resolve now (%v)", host, err)
	}
	for _, a := range addrs {
		if why := Classify(a); why != "" {
			return fmt.Sprintf("%s resolves to %s, which is %s: workers refuse it unless TRELLIS_WORKER_ALLOW_NETWORKS allows it", host, a.Unmap(), why)
		}
	}
	return ""
}
