package worker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// startGame starts a demo game with cfg on addr for the test and
// registers it as id, with link set on the registry entry.
func (e *env) startGame(id string, cfg demogame.Config, addr string, link func(*store.Game)) *demogame.Server {
	e.t.Helper()
	if cfg.NegotiationWait == 0 {
		cfg.NegotiationWait = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, bound, stop, err := demogame.Start(e.ctx, cfg, addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(stop)
	e.register(id, bound, link)
	return srv
}

func (e *env) register(id, addr string, link func(*store.Game)) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	g := store.Game{ID: id, Name: "Game " + id, Host: host, Port: p}
	if link != nil {
		link(&g)
	}
	if err := e.st.PutGame(e.ctx, g); err != nil {
		e.t.Fatal(err)
	}
}

// waitStatus waits for a status of (user, game) whose text contains sub
// and returns it.
func (e *env) waitStatus(user, game, sub string) store.Output {
	e.t.Helper()
	var found store.Output
	waitFor(e.t, 10*time.Second, fmt.Sprintf("a status saying %q", sub), func() bool {
		for _, o := range e.outputsOf(user, game) {
			if o.Kind == store.OutStatus && strings.Contains(o.Text, sub) {
				found = o
				return true
			}
		}
		return false
	})
	return found
}

func (e *env) waitGameText(user, game, sub string) {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, fmt.Sprintf("%q from %s", sub, game), func() bool {
		return strings.Contains(text(e.outputsOf(user, game)), sub)
	})
}

// TestTLSGameEachFormAndFailure dials the demo game over TLS with each way
// the registry verifies a certificate, and each failure: the player reads
// a short reason, and a refused certificate fails the session at once.
func TestTLSGameEachFormAndFailure(t *testing.T) {
	now := time.Now()
	ca := processTestCA(t)
	// The system roots are this test's CA: Go reads SSL_CERT_FILE (and
	// SSL_CERT_DIR) once per process, at the first verification that uses
	// them (so the CA is the same on every run of the test).
	t.Setenv("SSL_CERT_FILE", ca.file)
	t.Setenv("SSL_CERT_DIR", t.TempDir())
	good := issue(t, ca, []string{"localhost", "127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	expired := issue(t, ca, []string{"127.0.0.1"}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	otherName := issue(t, ca, []string{"game.example.org"}, now.Add(-time.Hour), now.Add(time.Hour))
	self := issue(t, nil, []string{"selfsigned.example"}, now.Add(-time.Hour), now.Add(time.Hour))
	// Right name, right dates, an issuer nobody trusts.
	stranger := issue(t, nil, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	selfExpired := issue(t, nil, []string{"old.example"}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	pin := base64.StdEncoding.EncodeToString(self.spki[:])

	e := newEnv(t, demogame.Config{})
	cfg := testConfig()
	cfg.DialTimeout = 500 * time.Millisecond
	cfg.RestartIntensity = 1
	e.startWorker(cfg)

	tlsWith := func(l leaf) demogame.Config { return demogame.Config{TLSCertFile: l.certFile, TLSKeyFile: l.keyFile} }
	ok := []struct {
		id   string
		game demogame.Config
		link func(*store.Game)
	}{
		{"roots", tlsWith(good), func(g *store.Game) { g.TLS = true }},
		{"ca-file", tlsWith(good), func(g *store.Game) { g.TLS, g.TLSCAFile = true, ca.file }},
		// A pin replaces chain, name and date checks: the self-signed
		// certificate is for another name, and the expired one is accepted
		// by its key alone.
		{"pin", tlsWith(self), func(g *store.Game) { g.TLS, g.TLSPinSHA256 = true, pin }},
		{"pin-hex-expired", tlsWith(selfExpired), func(g *store.Game) {
			g.TLS, g.TLSPinSHA256 = true, hex.EncodeToString(selfExpired.spki[:])
		}},
		{"insecure", tlsWith(self), func(g *store.Game) { g.TLS, g.TLSInsecure = true, true }},
	}
	// No subtests: the env's helpers fail the test that made it.
	if _, err := ca.cert.Verify(x509.VerifyOptions{}); err != nil {
		// Another test of this process loaded the system roots first.
		t.Logf("system roots were loaded before this test set SSL_CERT_FILE (%v): the system-roots form is not tried", err)
		ok = ok[1:]
	}
	for _, c := range ok {
		e.startGame(c.id, c.game, "127.0.0.1:0", c.link)
		u := e.user(c.id)
		e.attachTo(u, c.id)
		e.waitGameText(u, c.id, "What is your name?")
	}

	// A refused certificate is final: a failed status with the reason.
	refused := []struct {
		id   string
		game demogame.Config
		link func(*store.Game)
		want string
	}{
		{"wrong-pin", tlsWith(good), func(g *store.Game) { g.TLS, g.TLSPinSHA256 = true, pin },
			"does not match the key pinned for it"},
		{"expired", tlsWith(expired), func(g *store.Game) { g.TLS, g.TLSCAFile = true, ca.file },
			"has expired or is not valid yet"},
		{"wrong-name", tlsWith(otherName), func(g *store.Game) { g.TLS, g.TLSCAFile = true, ca.file },
			"is for another name"},
		{"unknown-authority", tlsWith(stranger), func(g *store.Game) { g.TLS = true },
			"is not signed by a trusted authority"},
		{"missing-ca-file", tlsWith(good), func(g *store.Game) { g.TLS, g.TLSCAFile = true, "/nonexistent/ca.pem" },
			"TLS settings cannot be used on this server"},
	}
	for _, c := range refused {
		e.startGame(c.id, c.game, "127.0.0.1:0", c.link)
		u := e.user(c.id)
		e.attachTo(u, c.id)
		st := e.waitStatus(u, c.id, c.want)
		if st.State != store.StateFailed {
			t.Errorf("%s: status %q is %s, want %s at once", c.id, st.Text, st.State, store.StateFailed)
		}
		if txt := text(e.outputsOf(u, c.id)); txt != "" {
			t.Errorf("%s: text reached the player over a refused link: %q", c.id, txt)
		}
	}

	// A game that accepts TCP and never answers the handshake: bounded by
	// DIAL_TIMEOUT, retried, and the player is told why.
	{
		e.fakeGame("silent", func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		})
		e.register("silent", gameAddr(t, e, "silent"), func(g *store.Game) { g.TLS = true })
		u := e.user("silent")
		e.attachTo(u, "silent")
		e.waitStatus(u, "silent", "could not reach the game (the game's TLS handshake did not finish in time)")
		st := e.waitStatus(u, "silent", "could not keep a connection to the game: the game's TLS handshake did not finish in time")
		if st.State != store.StateFailed {
			t.Errorf("final status %+v", st)
		}
	}
	// A plain telnet game registered as TLS.
	{
		e.startGame("plain", demogame.Config{}, "127.0.0.1:0", func(g *store.Game) { g.TLS = true })
		u := e.user("plain")
		e.attachTo(u, "plain")
		e.waitStatus(u, "plain", "the TLS handshake with the game failed")
	}
}

// gameAddr is the registered address of game id.
func gameAddr(t *testing.T, e *env, id string) string {
	t.Helper()
	g, err := e.st.GetGame(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return g.Addr()
}

// TestMTTSBitsFollowTheLinkAndThePlayer: over TLS the MTTS bit set the
// game reads says SSL (2048), over plain TCP it does not; an attach from a
// page in screen-reader mode adds 64.
func TestMTTSBitsFollowTheLinkAndThePlayer(t *testing.T) {
	now := time.Now()
	self := issue(t, nil, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	cert, err := tls.LoadX509KeyPair(self.certFile, self.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig())
	got := make(chan string, 2)
	// The game asks for the terminal type three times and reports the
	// third answer, "MTTS n".
	askTTYPE := func(c net.Conn) {
		send := []byte{telnet.IAC, telnet.DO, telnet.OptTTYPE}
		for range 3 {
			send = append(send, telnet.IAC, telnet.SB, telnet.OptTTYPE, 1, telnet.IAC, telnet.SE)
		}
		if _, err := c.Write(send); err != nil {
			return
		}
		var all []byte
		buf := make([]byte, 512)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, err := c.Read(buf)
			all = append(all, buf[:n]...)
			if i := strings.Index(string(all), "MTTS "); i >= 0 {
				if j := strings.IndexByte(string(all[i:]), telnet.IAC); j > 0 {
					got <- string(all[i : i+j])
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	e.fakeGame("plain-mtts", askTTYPE)
	tlsAddr := e.fakeGame("tls-mtts", func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		defer tc.Close()
		askTTYPE(tc)
	})
	e.register("tls-mtts", tlsAddr, func(g *store.Game) { g.TLS, g.TLSInsecure = true, true })
	for _, c := range []struct {
		game, user string
		ssl, sr    bool
	}{{"plain-mtts", "plain", false, false}, {"tls-mtts", "tls", true, false}, {"plain-mtts", "reader", false, true}} {
		e.control(store.Command{Type: store.CmdAttach, User: e.user(c.user), Game: c.game, Viewer: "v1",
			Cols: 100, Rows: 30, ScreenReader: c.sr, Correlation: "c-" + c.user})
		var m string
		select {
		case m = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no MTTS answer", c.game)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(m, "MTTS "))
		if err != nil {
			t.Fatalf("%s: %q", c.game, m)
		}
		if (n&2048 != 0) != c.ssl {
			t.Errorf("%s: %s, want the SSL bit (2048) %v", c.game, m, c.ssl)
		}
		if (n&64 != 0) != c.sr {
			t.Errorf("%s for %s: %s, want the screen reader bit (64) %v", c.game, c.user, m, c.sr)
		}
	}
}

// attachFrom attaches user to game as a player at ip.
func (e *env) attachFrom(user, game, ip string) {
	e.t.Helper()
	e.control(store.Command{Type: store.CmdAttach, User: user, Game: game, Viewer: "v1",
		Cols: 100, Rows: 30, IP: ip, Correlation: "c-" + user})
}

// inputTo sends a line to (user, game) as an edge would.
func (e *env) inputTo(user, game, line string) {
	e.t.Helper()
	k := store.SessionKey{User: user, Game: game}
	var l store.Lease
	waitFor(e.t, 10*time.Second, "the lease of "+k.String(), func() bool {
		var ok bool
		var err error
		l, ok, err = e.st.GetLease(e.ctx, k)
		return err == nil && ok
	})
	if err := e.st.SendInput(e.ctx, l.Owner, store.Command{Type: store.CmdInput, User: user, Game: game,
		Fence: l.Fence, Text: line}); err != nil {
		e.t.Fatal(err)
	}
}

// loginTo plays the demo game's login on game and waits for the welcome.
func (e *env) loginTo(user, game, name string) {
	e.t.Helper()
	e.waitGameText(user, game, "What is your name?")
	e.inputTo(user, game, name)
	e.waitGameText(user, game, "Password:")
	e.inputTo(user, game, "secret")
	e.waitGameText(user, game, "Welcome")
}

// TestProxyProtocolTellsTheGameThePlayersIP: a game that opted in to the
// PROXY protocol (v1 or v2, over plain TCP or under TLS) learns the
// player's address from it without NEW-ENVIRON; "who" shows it.
func TestProxyProtocolTellsTheGameThePlayersIP(t *testing.T) {
	now := time.Now()
	self := issue(t, nil, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig())
	for _, c := range []struct {
		id, version, ip string
		tls             bool
	}{
		{"proxy-v1", "v1", "203.0.113.7", false},
		{"proxy-v2", "v2", "203.0.113.8", false},
		{"proxy-v1-ip6", "v1", "2001:db8::7", false},
		{"proxy-v2-ip6", "v2", "2001:db8::8", false},
		{"proxy-v2-tls", "v2", "198.51.100.9", true},
	} {
		cfg := demogame.Config{ProxyProtocol: true, NoNewEnviron: true}
		if c.tls {
			cfg.TLSCertFile, cfg.TLSKeyFile = self.certFile, self.keyFile
		}
		e.startGame(c.id, cfg, "127.0.0.1:0", func(g *store.Game) {
			g.ProxyProtocol = c.version
			if c.tls {
				g.TLS, g.TLSPinSHA256 = true, base64.StdEncoding.EncodeToString(self.spki[:])
			}
		})
		u := e.user(c.id)
		e.attachFrom(u, c.id, c.ip)
		e.loginTo(u, c.id, "Tester")
		e.inputTo(u, c.id, "who")
		e.waitGameText(u, c.id, c.ip)
	}
}

// TestNoProxyHeaderUnlessOptedIn: the first bytes a game that did not opt
// in reads are the player's, not a PROXY header.
func TestNoProxyHeaderUnlessOptedIn(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig())
	first := make(chan string, 1)
	e.fakeGame("plain", func(c net.Conn) {
		if _, err := c.Write([]byte("login: ")); err != nil {
			return
		}
		buf := make([]byte, 256)
		n, _ := c.Read(buf)
		first <- string(buf[:n])
		_, _ = c.Read(buf)
	})
	u := e.user("plain")
	e.attachFrom(u, "plain", "203.0.113.7")
	e.waitGameText(u, "plain", "login: ")
	e.inputTo(u, "plain", "bob")
	select {
	case got := <-first:
		if got != "bob\r\n" {
			t.Errorf("the game first read %q, want the player's line", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the game read nothing")
	}
}

// TestGameOnIPv6Loopback plays the demo game on [::1] end to end, and a
// worker whose guard does not allow ::1 refuses it.
func TestGameOnIPv6Loopback(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig()) // allows ::1/128
	srv := e.startGame("v6", demogame.Config{}, "[::1]:0", func(g *store.Game) { g.MNES = true })
	if g, _ := e.st.GetGame(e.ctx, "v6"); g.Host != "::1" {
		t.Fatalf("registered host %q", g.Host)
	}
	u := e.user("six")
	e.attachFrom(u, "v6", "2001:db8::6")
	e.loginTo(u, "v6", "Sixer")
	e.inputTo(u, "v6", "say over six")
	e.waitGameText(u, "v6", "over six")
	// MNES carried the player's IPv6 address.
	e.inputTo(u, "v6", "who")
	e.waitGameText(u, "v6", "2001:db8::6")
	if srv.Accepted() != 1 {
		t.Errorf("the game accepted %d connections", srv.Accepted())
	}

	cfg := testConfig()
	cfg.AllowNetworks = []string{"127.0.0.0/8"}
	e2 := newEnv(t, demogame.Config{})
	e2.startWorker(cfg)
	srv2 := e2.startGame("v6", demogame.Config{}, "[::1]:0", nil)
	u2 := e2.user("six")
	e2.attachTo(u2, "v6")
	st := e2.waitStatus(u2, "v6", "not allowed")
	if st.State != store.StateFailed || srv2.Accepted() != 0 {
		t.Errorf("refused ::1: status %+v, game accepted %d", st, srv2.Accepted())
	}
}
