package demogame

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// What happens to a connection before telnet starts: an optional PROXY
// protocol header (the player's address, from a proxy or a Trellis worker
// told to send it), then an optional TLS handshake. The header comes first
// because a proxy writes it on the TCP stream, in front of the TLS bytes.

// Bounds of the PROXY header (haproxy's proxy-protocol.txt): a v1 line is
// at most 107 bytes with its CR LF; a v2 header's addresses and TLVs are
// capped here, far above the 36 bytes of an IPv6 address block.
const (
	maxProxyV1    = 107
	maxProxyV2Len = 512
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// loadTLS reads the certificate and key once, before the first accept.
func (c *Config) loadTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" && c.TLSKeyFile == "" {
		return nil, nil
	}
	if c.TLSCertFile == "" || c.TLSKeyFile == "" {
		return nil, errors.New("demogame: TLS needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("demogame: load TLS key pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// prepare runs the PROXY read and the TLS handshake, each bounded by
// HandshakeTimeout, and returns the connection telnet runs on and the
// player's address the header gave ("" without one).
func (s *Server) prepare(conn net.Conn) (net.Conn, string, error) {
	var peer string
	if s.cfg.ProxyProtocol {
		_ = conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		src, err := readProxyHeader(conn)
		if err != nil {
			return nil, "", fmt.Errorf("PROXY header from %s: %w", conn.RemoteAddr(), err)
		}
		_ = conn.SetReadDeadline(time.Time{})
		if src.IsValid() {
			peer = src.Unmap().String()
		}
	}
	if s.tls != nil {
		tc := tls.Server(conn, s.tls)
		_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			return nil, "", fmt.Errorf("TLS handshake with %s: %w", conn.RemoteAddr(), err)
		}
		_ = conn.SetDeadline(time.Time{})
		conn = tc
	}
	return conn, peer, nil
}

// readProxyHeader reads a PROXY v1 or v2 header and nothing after it (v1
// a byte at a time up to its LF, v2 by its length), so the telnet stream
// behind it is untouched. It returns the source address, or the zero
// Addr for "UNKNOWN" (v1) and LOCAL or non-IP (v2) headers.
func readProxyHeader(r io.Reader) (netip.Addr, error) {
	var first [12]byte
	if _, err := io.ReadFull(r, first[:6]); err != nil {
		return netip.Addr{}, fmt.Errorf("read: %w", err)
	}
	if string(first[:6]) == "PROXY " {
		return readProxyV1(r)
	}
	if _, err := io.ReadFull(r, first[6:]); err != nil {
		return netip.Addr{}, fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(first[:], proxyV2Sig) {
		return netip.Addr{}, errors.New("no PROXY header")
	}
	return readProxyV2(r)
}

func readProxyV1(r io.Reader) (netip.Addr, error) {
	line := make([]byte, 0, maxProxyV1)
	line = append(line, "PROXY "...)
	var b [1]byte
	for {
		if len(line) >= maxProxyV1 {
			return netip.Addr{}, fmt.Errorf("v1 line longer than %d bytes", maxProxyV1)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return netip.Addr{}, fmt.Errorf("read v1: %w", err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	text, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return netip.Addr{}, errors.New("v1 line does not end in CR LF")
	}
	f := strings.Split(text, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return netip.Addr{}, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.Addr{}, fmt.Errorf("v1 line %q: want PROXY TCP4|TCP6 src dst sport dport", text)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	_, err3 := strconv.ParseUint(f[4], 10, 16)
	_, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return netip.Addr{}, fmt.Errorf("v1 line %q: %w", text, err)
	}
	if (f[1] == "TCP4") != (src.Is4() && dst.Is4()) {
		return netip.Addr{}, fmt.Errorf("v1 line %q: addresses are not of family %s", text, f[1])
	}
	return src, nil
}

func readProxyV2(r io.Reader) (netip.Addr, error) {
	var hdr [4]byte // version/command, family/protocol, length
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return netip.Addr{}, fmt.Errorf("read v2: %w", err)
	}
	if hdr[0]>>4 != 2 {
		return netip.Addr{}, fmt.Errorf("v2 version %d", hdr[0]>>4)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n > maxProxyV2Len {
		return netip.Addr{}, fmt.Errorf("v2 header of %d bytes, more than %d", n, maxProxyV2Len)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return netip.Addr{}, fmt.Errorf("read v2: %w", err)
	}
	switch cmd := hdr[0] & 0x0f; cmd {
	case 0: // LOCAL: the proxy's own connection (a health check)
		return netip.Addr{}, nil
	case 1: // PROXY
	default:
		return netip.Addr{}, fmt.Errorf("v2 command %d", cmd)
	}
	switch hdr[1] {
	case 0x11: // TCP over IPv4
		if n < 12 {
			return netip.Addr{}, errors.New("v2 IPv4 block too short")
		}
		return netip.AddrFrom4([4]byte(body[:4])), nil
	case 0x21: // TCP over IPv6
		if n < 36 {
			return netip.Addr{}, errors.New("v2 IPv6 block too short")
		}
		return netip.AddrFrom16([16]byte(body[:16])), nil
	}
	return netip.Addr{}, nil // UNSPEC or a socket family: no address to learn
}
