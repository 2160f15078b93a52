package worker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// The connection to a game, before telnet: TCP through the dial guard, the
// PROXY protocol header if the game opted in, then TLS if the game is on
// TLS. The header goes first, on the TCP stream, as a proxy in front of a
// TLS game would send it.

// maxCAFile bounds a game's tls_ca_file: a bundle of a few hundred CAs.
const maxCAFile = 1 << 20

// errPinMismatch: the game's certificate key is not the one pinned.
var errPinMismatch = errors.New("the certificate's public key does not match tls_pin_sha256")

// errTLSHandshake wraps every failure of the TLS handshake with a game
// (the x509 error behind a refused certificate stays reachable).
var errTLSHandshake = errors.New("TLS handshake with the game")

// linkConfigError is a registry entry or worker file that makes a dial
// impossible: redialling cannot help, so the session fails at once.
type linkConfigError struct{ err error }

func (e *linkConfigError) Error() string { return e.err.Error() }
func (e *linkConfigError) Unwrap() error { return e.err }

// gameTLSConfig is the TLS client configuration for game: the system roots
// and the game's host name by default; a CA file's roots instead of the
// system's; or, with a pin, the pin check instead of chain verification
// (names, dates and issuer are then not checked: a pinned self-signed
// certificate is valid by its key alone).
func gameTLSConfig(game store.Game) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: game.Host, MinVersion: tls.VersionTLS12}
	switch {
	case game.TLSPinSHA256 != "":
		pin, err := store.ParsePin(game.TLSPinSHA256)
		if err != nil {
			return nil, &linkConfigError{fmt.Errorf("tls_pin_sha256: %w", err)}
		}
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by the pin check below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errPinMismatch
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return errPinMismatch
			}
			return nil
		}
	case game.TLSCAFile != "":
		pool, err := readCAFile(game.TLSCAFile)
		if err != nil {
			return nil, &linkConfigError{err}
		}
		cfg.RootCAs = pool
	case game.TLSInsecure:
		cfg.InsecureSkipVerify = true //nolint:gosec // the game's admin opted in for a self-signed game
	}
	return cfg, nil
}

// readCAFile reads a PEM bundle of at most maxCAFile bytes. It is read at
// each dial, so a rotated file is picked up without a restart.
func readCAFile(path string) (*x509.CertPool, error) {
	// A regular file only (a symlink to one, as a Kubernetes secret
	// mount is, is fine): opening a FIFO or a device named by a registry
	// entry could block the dial, or read what is not a file.
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("tls_ca_file: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tls_ca_file %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tls_ca_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("tls_ca_file %s: %w", path, err)
	}
	if len(b) > maxCAFile {
		return nil, fmt.Errorf("tls_ca_file %s: larger than %d bytes", path, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// dial connects to game within DialTimeout: TCP, the PROXY header, TLS.
func (s *session) dial(ctx context.Context, game store.Game) (net.Conn, error) {
	var tlsCfg *tls.Config
	if game.TLS {
		var err error
		if tlsCfg, err = gameTLSConfig(game); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.w.cfg.DialTimeout)
	defer cancel()
	// The guard sees every address the dialer tries, after DNS, so a name
	// that resolves (or is rebound) to Redis or a private host is refused
	// at connect time whatever the registry says. A name with addresses
	// of both families is dialled Happy Eyeballs style (RFC 6555): the
	// first family, then the other after FallbackDelay (300ms) or at once
	// when the first fails; the guard runs on each address tried.
	d := &net.Dialer{KeepAlive: 30 * time.Second, Control: s.w.guard.Control}
	conn, err := d.DialContext(ctx, "tcp", game.Addr())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", game.Addr(), err)
	}
	deadline, _ := ctx.Deadline()
	if game.ProxyProtocol != "" {
		hdr := proxyHeader(game.ProxyProtocol, s.ip, conn.LocalAddr())
		_ = conn.SetWriteDeadline(deadline)
		if _, err := conn.Write(hdr); err != nil {
			conn.Close()
			return nil, fmt.Errorf("send PROXY header to %s: %w", game.Addr(), err)
		}
		_ = conn.SetWriteDeadline(time.Time{})
	}
	if tlsCfg == nil {
		return conn, nil
	}
	tc := tls.Client(conn, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %s: %w", s.w.cfg.DialTimeout, os.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("%w %s: %w", errTLSHandshake, game.Addr(), err)
	}
	return tc, nil
}

// tlsRefused reports whether err is the game's certificate being refused
// (by the chain, the name, the dates or the pin): an answer, not a blip,
// so the session fails at once instead of redialling.
func tlsRefused(err error) bool {
	var certErr *tls.CertificateVerificationError
	return errors.As(err, &certErr) || errors.Is(err, errPinMismatch)
}

// tlsReason says in a few words why TLS with a game failed, or "".
func tlsReason(err error) string {
	var (
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
		certErr  *tls.CertificateVerificationError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, errPinMismatch):
		return "the game's TLS certificate does not match the key pinned for it"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the game's TLS certificate has expired or is not valid yet"
	case errors.As(err, &hostname):
		return "the game's TLS certificate is for another name"
	case errors.As(err, &unknown):
		return "the game's TLS certificate is not signed by a trusted authority"
	case errors.As(err, &certErr):
		return "the game's TLS certificate was not accepted"
	case !errors.Is(err, errTLSHandshake):
		return ""
	case errors.As(err, &netErr) && netErr.Timeout():
		return "the game's TLS handshake did not finish in time"
	}
	return "the TLS handshake with the game failed"
}

// proxyHeader is the PROXY protocol header (haproxy's proxy-protocol.txt)
// saying the connection comes from player (an IP, as MNES sends it; its
// port is unknown and sent as 0) to local, the worker's end. Families
// that differ are both sent as IPv6 (an IPv4 address mapped). Without a
// usable player address it says UNKNOWN (v1) or LOCAL (v2), and the game
// falls back to the connection's own addresses.
func proxyHeader(version, player string, local net.Addr) []byte {
	src, ok := playerAddr(player)
	var dst netip.AddrPort
	if ta, isTCP := local.(*net.TCPAddr); isTCP {
		dst = ta.AddrPort()
	}
	const sig = "\r\n\r\n\x00\r\nQUIT\n"
	if !ok || !dst.IsValid() {
		if version == "v1" {
			return []byte("PROXY UNKNOWN\r\n")
		}
		return []byte(sig + "\x20\x00\x00\x00") // LOCAL, UNSPEC, no addresses
	}
	srcA, dstA := src.Unmap(), dst.Addr().Unmap()
	v4 := srcA.Is4() && dstA.Is4()
	if !v4 {
		srcA, dstA = netip.AddrFrom16(srcA.As16()), netip.AddrFrom16(dstA.As16())
	}
	if version == "v1" {
		fam := "TCP6"
		if v4 {
			fam = "TCP4"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, srcA, dstA, 0, dst.Port())
	}
	b := []byte(sig)
	if v4 {
		s4, d4 := srcA.As4(), dstA.As4()
		b = append(append(append(b, 0x21, 0x11, 0, 12), s4[:]...), d4[:]...)
	} else {
		s16, d16 := srcA.As16(), dstA.As16()
		b = append(append(append(b, 0x21, 0x21, 0, 36), s16[:]...), d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, 0) // the player's port, unknown
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// playerAddr parses the player's address as the edge sent it (an IP, or
// an IP and port).
func playerAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone(""), true
	}
	return netip.Addr{}, false
}
