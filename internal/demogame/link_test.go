package demogame

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientOn runs the test client on a connection the test made.
func clientOn(t *testing.T, conn net.Conn, opts clientOptions) *testClient {
	t.Helper()
	c := &testClient{
		t: t, conn: conn, opts: opts,
		changed: make(chan struct{}),
		state:   make(map[[2]byte]bool),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

// selfSignedFiles writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths.
func selfSignedFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "demo"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func TestReadProxyHeader(t *testing.T) {
	v2 := func(cmd, fam byte, body ...byte) string {
		return string(proxyV2Sig) + string([]byte{cmd, fam, byte(len(body) >> 8), byte(len(body))}) + string(body)
	}
	ip6 := net.ParseIP("2001:db8::1")
	for _, c := range []struct {
		name, in, want string
	}{
		{"v1 tcp4", "PROXY TCP4 203.0.113.7 127.0.0.1 0 4000\r\n", "203.0.113.7"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 ::1 65535 4000\r\n", "2001:db8::1"},
		{"v1 tcp6 mapped", "PROXY TCP6 ::ffff:203.0.113.7 ::1 1 4000\r\n", "::ffff:203.0.113.7"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", ""},
		{"v1 unknown with addresses", "PROXY UNKNOWN ::1 ::1 1 2\r\n", ""},
		{"v2 ipv4", v2(0x21, 0x11, 203, 0, 113, 7, 127, 0, 0, 1, 0, 0, 15, 160), "203.0.113.7"},
		{"v2 ipv6", v2(0x21, 0x21, append(append(append([]byte{}, ip6...), net.IPv6loopback...), 0, 1, 0, 2)...), "2001:db8::1"},
		{"v2 local", v2(0x20, 0x00), ""},
		{"v2 unix", v2(0x21, 0x31, make([]byte, 216)...), ""},
		{"v2 with tlv", v2(0x21, 0x11, 10, 0, 0, 9, 127, 0, 0, 1, 0, 0, 15, 160, 0x04, 0, 1, 'x'), "10.0.0.9"},
	} {
		r := strings.NewReader(c.in + "rest")
		got, err := readProxyHeader(r)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if s := ""; got.IsValid() {
			s = got.String()
			if s != c.want {
				t.Errorf("%s: %s, want %s", c.name, s, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%s: no address, want %s", c.name, c.want)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "rest" {
			t.Errorf("%s: read past the header: %q left", c.name, rest)
		}
	}
	for name, in := range map[string]string{
		"none":             "What is your name?\r\n",
		"telnet":           "\xff\xfb\x18 hello there",
		"v1 endless":       "PROXY TCP4 " + strings.Repeat("1", 5000),
		"v1 no cr":         "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"v1 family":        "PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n",
		"v1 port":          "PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
		"v1 fields":        "PROXY TCP4 1.2.3.4\r\n",
		"v1 truncated":     "PROXY TCP4 1.2.3.4 5.6",
		"v2 huge":          string(proxyV2Sig) + "\x21\x11\xff\xff",
		"v2 version 1":     string(proxyV2Sig) + "\x11\x11\x00\x00",
		"v2 command":       v2(0x2f, 0x11, make([]byte, 12)...),
		"v2 short ipv4":    v2(0x21, 0x11, 1, 2, 3),
		"v2 short ipv6":    v2(0x21, 0x21, make([]byte, 20)...),
		"v2 truncated":     string(proxyV2Sig) + "\x21\x11\x00\x0c\x01",
		"short":            "PRO",
		"signature broken": "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00",
	} {
		if a, err := readProxyHeader(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted, address %v", name, a)
		}
	}
}

// A game behind the PROXY protocol shows the header's address in "who",
// over plain TCP and under TLS; a connection without a header is closed.
func TestProxyProtocolAndTLSListener(t *testing.T) {
	certFile, keyFile := selfSignedFiles(t)
	for _, c := range []struct {
		name, header, ip string
		tls              bool
	}{
		{"v1", "PROXY TCP4 203.0.113.7 127.0.0.1 0 4000\r\n", "203.0.113.7", false},
		{"v2 tls", string(proxyV2Sig) + "\x21\x11\x00\x0c\xc6\x33\x64\x09\x7f\x00\x00\x01\x00\x00\x0f\xa0", "198.51.100.9", true},
	} {
		cfg := Config{ProxyProtocol: true, NoNewEnviron: true, NegotiationWait: 10 * time.Millisecond}
		if c.tls {
			cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
		}
		_, addr := startServer(t, cfg)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(c.header)); err != nil {
			t.Fatal(err)
		}
		if c.tls {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test's self-signed game
			if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			conn = tc
		}
		cl := clientOn(t, conn, acceptAll())
		cl.login("Proxied", "pw")
		if got := cl.do("who", c.ip); !strings.Contains(got, c.ip) {
			t.Errorf("%s: who shows no %s", c.name, c.ip)
		}
	}

	_, addr := startServer(t, Config{ProxyProtocol: true, HandshakeTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
		t.Errorf("a connection without a PROXY header got %q, %v; want it closed unanswered", b, err)
	}
}

func TestTLSListenerNeedsBothFiles(t *testing.T) {
	certFile, keyFile := selfSignedFiles(t)
	for _, cfg := range []Config{{TLSCertFile: certFile}, {TLSKeyFile: keyFile}, {TLSCertFile: keyFile, TLSKeyFile: certFile}} {
		if _, _, _, err := Start(t.Context(), cfg, "127.0.0.1:0"); err == nil {
			t.Errorf("Start with %+v: no error", cfg)
		}
	}
	if err := New(Config{TLSCertFile: certFile}).Serve(t.Context(), &closedListener{}); err == nil {
		t.Error("Serve with a certificate but no key: no error")
	}
}

// closedListener is a listener that is never used: Serve must fail first.
type closedListener struct{ net.Listener }

func (*closedListener) Close() error { return nil }
