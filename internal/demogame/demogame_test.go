package demogame

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quietLogger keeps test output readable; failures print transcripts instead.
var quietLogger = slog.New(slog.DiscardHandler)

// startServer runs a server for one test. NegotiationWait is long on
// purpose: a client that answers everything must get the banner as soon as
// it has answered, so a test that hangs here means the early end is broken.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.NegotiationWait == 0 {
		cfg.NegotiationWait = time.Minute
	}
	cfg.Logger = quietLogger
	srv, addr, stop, err := Start(context.Background(), cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if n := srv.panics.Load(); n != 0 {
			t.Errorf("%d sessions panicked", n)
		}
	})
	return srv, addr
}

// waitForValue polls f (the server's counters change asynchronously).
func waitForValue[T comparable](t *testing.T, what string, f func() T, want T) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := f()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoginFlowEchoesOffAroundPassword(t *testing.T) {
	srv, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())

	s := c.waitFor("What is your name? <EOR>")
	if strings.Contains(s, "ECHO") {
		t.Errorf("ECHO negotiated before the password prompt: %q", s)
	}
	c.sendLine("alice")
	c.waitFor("<WILL ECHO>Password: <EOR>")
	c.sendLine("secret")
	s = c.waitFor("> <EOR>")

	after := s[strings.Index(s, "Password: "):]
	iWont := strings.Index(after, "<WONT ECHO>")
	iWelcome := strings.Index(after, "Welcome, Alice.")
	if iWont < 0 || iWelcome < 0 || iWont > iWelcome {
		t.Errorf("want WONT ECHO after the password and before the welcome; got %q", after)
	}
	if strings.Contains(s, "secret") {
		t.Errorf("the password came back: %q", s)
	}
	if got := srv.Players(); !slices.Equal(got, []string{"Alice"}) {
		t.Errorf("Players() = %v, want [Alice]", got)
	}
	if !strings.Contains(s, `<GMCP Char.Vitals {"hp":100,"maxhp":100,"mp":50,"maxmp":50,"mv":80,"maxmv":80}>`) {
		t.Errorf("no Char.Vitals on login: %q", s)
	}

	c.sendLine("quit")
	s = c.waitFor("<EOF>")
	if !strings.Contains(s, "Goodbye, Alice.") {
		t.Errorf("no goodbye before the close: %q", s)
	}
	waitForValue(t, "Players()", func() int { return len(srv.Players()) }, 0)
}

func TestEveryOfferIsSentByDefault(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	s := c.waitFor("What is your name? ")
	for _, tok := range []string{
		"<WILL SGA>", "<WILL EOR>", "<WILL GMCP>", "<WILL MSDP>", "<WILL MSSP>", "<WILL MCCP2>",
		"<DO TTYPE>", "<DO NAWS>", "<DO CHARSET>", "<DO NEW-ENVIRON>",
		sbToken(optCHARSET, []byte("\x01;UTF-8;ISO-8859-1")),
		sbToken(optNEWENVIRON, []byte{envSEND}),
		"<MSSP ;NAME=Trellis Demo;PLAYERS=0;UPTIME=",
	} {
		if !strings.Contains(s, tok) {
			t.Errorf("missing %s in %q", tok, s)
		}
	}
	if n := strings.Count(s, sbToken(optTTYPE, []byte{ttypeSEND})); n != 3 {
		t.Errorf("TTYPE SEND sent %d times, want 3 (the MTTS cycle)", n)
	}
}

func TestEachOfferCanBeSwitchedOff(t *testing.T) {
	cases := []struct {
		name  string
		set   func(*Config)
		token string
	}{
		{"SGA", func(c *Config) { c.NoSGA = true }, "<WILL SGA>"},
		{"EOR", func(c *Config) { c.NoEOR = true }, "<WILL EOR>"},
		{"GMCP", func(c *Config) { c.NoGMCP = true }, "<WILL GMCP>"},
		{"MSDP", func(c *Config) { c.NoMSDP = true }, "<WILL MSDP>"},
		{"MSSP", func(c *Config) { c.NoMSSP = true }, "<WILL MSSP>"},
		{"MCCP2", func(c *Config) { c.NoMCCP2 = true }, "<WILL MCCP2>"},
		{"TTYPE", func(c *Config) { c.NoTTYPE = true }, "<DO TTYPE>"},
		{"NAWS", func(c *Config) { c.NoNAWS = true }, "<DO NAWS>"},
		{"CHARSET", func(c *Config) { c.NoCharset = true }, "<DO CHARSET>"},
		{"NEW-ENVIRON", func(c *Config) { c.NoNewEnviron = true }, "<DO NEW-ENVIRON>"},
		{"ECHO", func(c *Config) { c.NoEcho = true }, "<WILL ECHO>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			tc.set(&cfg)
			_, addr := startServer(t, cfg)
			c := dialClient(t, addr, acceptAll())
			c.login("bob", "pw")
			s := c.text()
			if strings.Contains(s, tc.token) {
				t.Errorf("%s offered although switched off: %q", tc.token, s)
			}
			// The other offers are still made: count them.
			all := []string{"<WILL SGA>", "<WILL EOR>", "<WILL GMCP>", "<WILL MSDP>", "<WILL MSSP>", "<WILL MCCP2>",
				"<DO TTYPE>", "<DO NAWS>", "<DO CHARSET>", "<DO NEW-ENVIRON>", "<WILL ECHO>"}
			for _, tok := range all {
				if tok != tc.token && !strings.Contains(s, tok) {
					t.Errorf("%s missing with only %s off", tok, tc.name)
				}
			}
		})
	}
}

func TestSwitchedOffOptionIsRefusedWhenAsked(t *testing.T) {
	_, addr := startServer(t, Config{NoGMCP: true, NoNAWS: true})
	c := dialClient(t, addr, acceptAll())
	c.waitFor("What is your name? ")
	c.send([]byte{cmdIAC, cmdDO, optGMCP, cmdIAC, cmdWILL, optNAWS, cmdIAC, cmdDO, 91 /* MXP */})
	c.waitFor("<WONT GMCP>")
	c.waitFor("<DONT NAWS>")
	c.waitFor("<WONT 91>")
}

func TestPromptMarks(t *testing.T) {
	cases := []struct {
		name   string
		accept map[byte]bool
		want   string
	}{
		{"EOR", map[byte]bool{optEOR: true, optSGA: true}, "What is your name? <EOR>"},
		{"GA", map[byte]bool{}, "What is your name? <GA>"},
		// SGA without EOR: no mark, so the next thing after the prompt is
		// the password step.
		{"none", map[byte]bool{optSGA: true, optECHO: true}, "What is your name? <WILL ECHO>Password: <WILL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, Config{})
			c := dialClient(t, addr, clientOptions{accept: tc.accept})
			c.waitFor("What is your name? ")
			c.sendLine("carol")
			c.sendLine("pw")
			if tc.name == "none" {
				// Refuse nothing more: wait for the welcome instead.
				s := c.waitFor("Welcome, Carol")
				if !strings.Contains(s, "What is your name? <WILL ECHO>Password: ") {
					t.Errorf("want unmarked prompts, got %q", s)
				}
				return
			}
			c.waitFor(tc.want)
		})
	}
}

func TestSilentClientStillGetsTheBanner(t *testing.T) {
	_, addr := startServer(t, Config{NegotiationWait: 20 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("What is your name? ")) {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read: %v; got %q", err, got)
		}
	}
	if !bytes.HasPrefix(got, []byte{cmdIAC, cmdWILL, optSGA}) {
		t.Errorf("offers should come first, got %q", got)
	}
	// Nobody agreed to anything, so the prompt is marked the classic way.
	if !bytes.HasSuffix(got, []byte("What is your name? \xff\xf9")) {
		t.Errorf("want IAC GA after the prompt, got %q", got)
	}
}

func TestClientFactsShowInLookAndWho(t *testing.T) {
	_, addr := startServer(t, Config{})
	o := acceptAll()
	o.ip = "203.0.113.7"
	a := dialClient(t, addr, o)
	a.login("dora", "pw")
	b := dialClient(t, addr, clientOptions{accept: map[byte]bool{optEOR: true}})
	b.login("egon", "pw")

	s := a.do("look", "We speak UTF-8.")
	for _, want := range []string{
		"Your window is 100x30.",
		"Your client calls itself TESTCLIENT / XTERM-256COLOR / MTTS 2825.",
		"Also here: \x1b[1mEgon",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("look lacks %q: %q", want, s)
		}
	}
	b.do("look", "Your window size is unknown.")

	s = a.do("who", "> ")
	if !regexp.MustCompile(`Dora +203\.0\.113\.7\r\n`).MatchString(s) {
		t.Errorf("who should show Dora's MNES address: %q", s)
	}
	if !regexp.MustCompile(`Egon +-\r\n`).MatchString(s) {
		t.Errorf("who should show - for Egon: %q", s)
	}
}

func TestTTYPECycleStopsOnRepeat(t *testing.T) {
	_, addr := startServer(t, Config{})
	o := acceptAll()
	o.ttypes = []string{"ANSI"} // a client that does not cycle
	c := dialClient(t, addr, o)
	s := c.waitFor("What is your name? ")
	if n := strings.Count(s, sbToken(optTTYPE, []byte{ttypeSEND})); n != 2 {
		t.Errorf("TTYPE SEND sent %d times, want 2 (the repeat ends the cycle)", n)
	}
}

func TestReturningPlayerNeedsSamePassword(t *testing.T) {
	srv, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("fay", "right")
	c.sendLine("quit")
	c.waitFor("<EOF>")
	waitForValue(t, "Players()", func() int { return len(srv.Players()) }, 0)

	c = dialClient(t, addr, acceptAll())
	c.waitFor("What is your name? ")
	c.sendLine("Fay")
	c.waitFor("Password: ")
	c.sendLine("wrong")
	c.waitFor("Wrong password.")
	c.waitCount("What is your name? ", 2)
	c.sendLine("fay")
	c.waitCount("Password: ", 2)
	c.sendLine("right")
	c.waitFor("Welcome back, Fay.")
}

func TestThreeWrongPasswordsHangUp(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("gus", "right")
	c2 := dialClient(t, addr, acceptAll())
	for i := 1; i <= maxLoginTries; i++ {
		c2.waitCount("What is your name? ", i)
		c2.sendLine("gus")
		c2.waitCount("Password: ", i)
		c2.sendLine("wrong")
	}
	s := c2.waitFor("<EOF>")
	if !strings.Contains(s, "Wrong password. Goodbye.") {
		t.Errorf("no goodbye: %q", s)
	}
}

func TestSecondLoginTakesOver(t *testing.T) {
	srv, addr := startServer(t, Config{})
	a := dialClient(t, addr, acceptAll())
	a.login("hal", "pw")
	b := dialClient(t, addr, acceptAll())
	b.login("hal", "pw")
	a.waitFor("Someone logged in as you from elsewhere.")
	s := a.waitFor("<EOF>")
	if !strings.HasSuffix(s, "<MCCP2 end><EOF>") {
		t.Errorf("want a clean hang-up, got tail %q", s[max(0, len(s)-100):])
	}
	if strings.Contains(b.text(), "Hal leaves.") {
		t.Error("the new Hal was told that Hal left")
	}
	waitForValue(t, "Conns()", srv.Conns, 1)
	if got := srv.Players(); !slices.Equal(got, []string{"Hal"}) {
		t.Errorf("Players() = %v, want [Hal]", got)
	}
}

func TestSayReachesOthersInTheRoom(t *testing.T) {
	_, addr := startServer(t, Config{})
	a := dialClient(t, addr, acceptAll())
	a.login("ann", "pw")
	b := dialClient(t, addr, acceptAll())
	b.login("ben", "pw")
	a.waitFor("Ben arrives.")

	a.sendLine("say hello   there")
	a.waitFor("You say: hello   there\r\n> ")
	// The listener's prompt is redrawn after the interruption.
	b.waitFor("\r\nAnn says: hello   there\r\n> <EOR>")

	b.sendLine("say")
	b.waitFor("Say what?")
	b.sendLine("quit")
	a.waitFor("Ben leaves.")
}

func TestQuietKeepsArrivalsToThemselves(t *testing.T) {
	_, addr := startServer(t, Config{Quiet: true})
	a := dialClient(t, addr, acceptAll())
	a.login("ann", "pw")
	b := dialClient(t, addr, acceptAll())
	b.login("ben", "pw")
	b.sendLine("quit")
	b.waitFor("<EOF>")
	// What Ann hears next is the last thing said to her: had Ben's
	// arrival or departure been told, it would come before.
	c := dialClient(t, addr, acceptAll())
	c.login("cal", "pw")
	c.sendLine("say marker")
	a.waitFor("Cal says: marker")
	if txt := a.text(); strings.Contains(txt, "arrives.") || strings.Contains(txt, "leaves.") {
		t.Errorf("a quiet game told Ann of an arrival or a departure:\n%s", txt)
	}
}

func TestEchoIsVerbatim(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("ida", "pw")
	c.sendLine("echo  two  spaces \x1b[31mred\x1b[0m \xff done")
	c.waitFor(" two  spaces \x1b[31mred\x1b[0m \xff done\r\n> ")
}

func TestCommands(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("jon", "pw")
	for _, tc := range []struct{ cmd, want string }{
		{"look", "You are alone here."},
		{"help", "flood <n> [bytes]"},
		{"colors", "\x1b[38;5;255m 255\x1b[0m"},
		{"colors", "\x1b[38;2;255;128;0m"},
		{"dance", "Huh?\r\n> "},
		{"fight", `<GMCP Char.Vitals {"hp":93,"maxhp":100,"mp":47,"maxmp":50,"mv":75,"maxmv":80}>`},
		{"vitals", "HP 93/100  MP 47/50  MV 75/80"},
		{"rest", `<GMCP Char.Vitals {"hp":100,`},
		{"flood x", "Usage: flood"},
	} {
		c.do(tc.cmd, tc.want)
	}
	c.send(appendSubneg(nil, optGMCP, []byte("Core.Ping")))
	c.waitFor("<GMCP Core.Ping>")
	c.send([]byte{cmdIAC, cmdAYT})
	c.waitFor("[Trellis Demo: yes]")
}

// floodLines checks that s holds exactly n flood lines numbered 1..n, each
// size bytes long including CR LF.
func checkFlood(t *testing.T, s string, n, size int) {
	t.Helper()
	i := strings.Index(s, "flood 000001")
	if i < 0 {
		t.Fatalf("no flood in %q", s)
	}
	lines := strings.SplitAfter(s[i:], "\r\n")
	got := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "flood ") {
			break
		}
		got++
		want := floodLine(got, size)
		if l != string(want) {
			t.Fatalf("line %d = %q, want %q", got, l, want)
		}
	}
	if got != n {
		t.Errorf("got %d flood lines, want %d", got, n)
	}
}

func TestFloodCountAndNumbering(t *testing.T) {
	_, addr := startServer(t, Config{NoMCCP2: true})
	c := dialClient(t, addr, acceptAll())
	c.login("kim", "pw")
	for _, tc := range []struct{ n, size int }{{3000, 100}, {5, 10}, {1, 15}, {0, 80}} {
		before := len(c.text())
		c.sendLine(fmt.Sprintf("flood %d %d", tc.n, tc.size))
		s := c.waitUntil("flood end", func(s string) bool { return strings.Contains(s[before:], "> <EOR>") })[before:]
		if tc.n == 0 {
			if strings.Contains(s, "flood 0") {
				t.Errorf("flood 0 sent lines: %q", s)
			}
			continue
		}
		checkFlood(t, s, tc.n, tc.size)
	}
}

func TestFloodLine(t *testing.T) {
	for _, tc := range []struct {
		i, size int
		want    string
	}{
		{1, 20, "flood 000001 xxxxx\r\n"},
		{42, 14, "flood 000042\r\n"},
		{42, 15, "flood 000042 \r\n"},
		{42, 3, "flood 000042\r\n"},
		{1_000_000, 20, "flood 1000000 xxxx\r\n"},
	} {
		if got := string(floodLine(tc.i, tc.size)); got != tc.want {
			t.Errorf("floodLine(%d, %d) = %q, want %q", tc.i, tc.size, got, tc.want)
		}
	}
}

func TestParseFloodClamps(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want floodArgs
		ok   bool
	}{
		{"10", floodArgs{10, defaultFloodLen}, true},
		{"10 200", floodArgs{10, 200}, true},
		{"5000000 99999", floodArgs{maxFloodLines, maxFloodBytes}, true},
		{"", floodArgs{}, false},
		{"-1", floodArgs{}, false},
		{"1 -1", floodArgs{}, false},
		{"1 2 3", floodArgs{}, false},
		{"lots", floodArgs{}, false},
	} {
		got, ok := parseFlood(strings.Fields(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseFlood(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMCCP2StreamDecodes(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	s := c.waitFor("What is your name? ")
	iStart := strings.Index(s, "<MCCP2 start>")
	iBanner := strings.Index(s, "Welcome to Trellis Demo!")
	iPrompt := strings.Index(s, "What is your name? ")
	if iStart < 0 || iBanner < 0 || !(iBanner < iStart && iStart < iPrompt) {
		t.Fatalf("want banner, then MCCP2 start, then the prompt; got %q", s)
	}
	c.login("lea", "pw")
	c.sendLine("flood 2000 200")
	c.waitFor("flood 002000")
	s = c.waitUntil("prompt after flood", func(s string) bool { return strings.HasSuffix(s, "> <EOR>") })
	checkFlood(t, s, 2000, 200)
	c.sendLine("quit")
	s = c.waitFor("<EOF>")
	if !strings.Contains(s, "Goodbye, Lea.") || !strings.HasSuffix(s, "<MCCP2 end><EOF>") {
		t.Errorf("want goodbye, a clean zlib end, then EOF; got tail %q", s[max(0, len(s)-200):])
	}
}

func TestMCCP2StopsWhenClientSaysDONT(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("max", "pw")
	c.send([]byte{cmdIAC, cmdDONT, optMCCP2})
	c.waitFor("<MCCP2 end>")
	c.do("look", "The Trellis Garden") // plain telnet again after the stream end
}

func TestBenchModeEchoesExactBytes(t *testing.T) {
	srv, addr := startServer(t, Config{Bench: true})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitTimeout))

	// IAC IAC is one data byte 255, and comes back doubled again.
	in := "hello\r\n  spaced  out \r\nbyte \xff\xff here\r\nlf only\nlast\r\x00"
	want := "hello\r\n  spaced  out \r\nbyte \xff\xff here\r\nlf only\r\nlast\r\n"
	if _, err := io.WriteString(conn, in); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read: %v; got %q", err, got)
	}
	if string(got) != want {
		t.Errorf("echo = %q, want %q", got, want)
	}

	io.WriteString(conn, "flood 3 20\r\n")
	want = "flood 000001 xxxxx\r\nflood 000002 xxxxx\r\nflood 000003 xxxxx\r\n"
	got = make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read flood: %v", err)
	}
	if string(got) != want {
		t.Errorf("flood = %q, want %q", got, want)
	}
	if len(srv.Players()) != 0 {
		t.Errorf("bench mode logged someone in: %v", srv.Players())
	}
}

func TestConnsCountsOpenConnections(t *testing.T) {
	srv, addr := startServer(t, Config{Bench: true})
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitForValue(t, "Conns()", srv.Conns, 3)
	conns[0].Close()
	conns[1].Close()
	waitForValue(t, "Conns()", srv.Conns, 1)
	if got := srv.Accepted(); got != 3 {
		t.Errorf("Accepted() = %d, want 3", got)
	}
}

func TestShutdownClosesConnectionsAndReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := New(Config{Logger: quietLogger, NegotiationWait: time.Minute})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	a := dialClient(t, ln.Addr().String(), acceptAll())
	a.login("ned", "pw")
	b := dialClient(t, ln.Addr().String(), acceptAll())
	b.waitFor("What is your name? ")
	a.sendLine("flood 1000000 4096") // still flooding when the server stops
	a.waitFor("flood 000001")

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v, want nil after cancel", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return after cancel")
	}
	// Shutdown hangs up at once, so a compressed stream ends torn.
	for _, c := range []*testClient{a, b} {
		c.waitUntil("the end", func(s string) bool { return strings.Contains(s, "<EOF>") || strings.Contains(s, "<ERR") })
	}
	if srv.Conns() != 0 {
		t.Errorf("Conns() = %d after Serve returned", srv.Conns())
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after Serve returned")
	}
}

// TestGarbageDoesNotCrash throws random bytes and malformed telnet at the
// server, before and after login, then checks it still plays normally.
func TestGarbageDoesNotCrash(t *testing.T) {
	srv, addr := startServer(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	nasty := [][]byte{
		{cmdIAC},
		{cmdIAC, cmdSB},
		{cmdIAC, cmdSB, optNAWS, 1, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optTTYPE, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optNEWENVIRON, envIS, envVAR, envESC},
		{cmdIAC, cmdSB, optNEWENVIRON, envIS, envVALUE, 'x', envVAR, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optCHARSET, charsetREQUEST, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optCHARSET, charsetREQUEST, '[', 'T', 'T', 'A', 'B', 'L', 'E', ']', cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optCHARSET, charsetREQUEST, ';', 'U', 'T', 'F', '-', '8', cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optGMCP, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optMCCP2, cmdIAC, cmdSE},
		{cmdIAC, cmdSB, optGMCP, cmdIAC, cmdWILL, optECHO}, // SB cut short by a command
		bytes.Repeat([]byte{'a'}, 3*maxLine),
		append([]byte{cmdIAC, cmdSB, optGMCP}, bytes.Repeat([]byte{'b'}, maxSubneg+10)...),
		{cmdIAC, cmdSE, '\r', '\r', '\n', 0, '\n'},
	}
	for _, stage := range []string{"before login", "after login"} {
		c := dialClient(t, addr, acceptAll())
		if stage == "after login" {
			c.login("olga", "pw")
		}
		for i := range 200 {
			if i%10 == 0 {
				c.send(nasty[rng.IntN(len(nasty))])
			}
			junk := make([]byte, rng.IntN(512))
			for j := range junk {
				junk[j] = byte(rng.IntN(256))
			}
			c.send(junk)
		}
		c.send([]byte{cmdIAC, cmdSE, '\r', '\n'}) // resynchronise on a possibly open SB
		c.close()
	}
	c := dialClient(t, addr, acceptAll())
	c.login("pia", "pw")
	c.sendLine("look")
	c.waitFor("The Trellis Garden")
	waitForValue(t, "Conns()", srv.Conns, 1)
}

// TestManyPlayers logs in a few hundred players at once and has one speak.
func TestManyPlayers(t *testing.T) {
	const n = 200
	srv, addr := startServer(t, Config{})
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = dialClient(t, addr, clientOptions{accept: map[byte]bool{optEOR: true, optSGA: true}})
	}
	// Each step for all clients at once, so the server has many
	// connections in the same phase.
	for i, c := range clients {
		c.waitFor("What is your name? ")
		c.sendLine(fmt.Sprintf("p%c%c", 'a'+i%26, 'a'+i/26))
	}
	for _, c := range clients {
		c.waitFor("Password: ")
		c.sendLine("pw")
	}
	for _, c := range clients {
		c.waitFor("> <EOR>")
	}
	waitForValue(t, "players", func() int { return len(srv.Players()) }, n)
	clients[0].sendLine("say roll call")
	for _, c := range clients[1:] {
		c.waitFor("says: roll call")
	}
}

// MSDP: a REPORT sends the variables at once and again when they change
// (fight hurts); UNREPORT stops one; SEND sends once; LIST lists; names the
// game does not know and malformed blocks are ignored.
func TestMSDPReport(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("mira", "pw")
	msdp := func(parts ...string) {
		var b []byte
		for _, p := range parts {
			switch p {
			case "VAR":
				b = append(b, msdpVAR)
			case "VAL":
				b = append(b, msdpVAL)
			case "[":
				b = append(b, msdpARRAYOPEN)
			case "]":
				b = append(b, msdpARRAYCLOSE)
			default:
				b = append(b, p...)
			}
		}
		c.send(appendSubneg(nil, optMSDP, b))
	}
	msdp("VAR", "REPORT", "VAL", "HEALTH", "VAL", "HEALTH_MAX", "VAL", "NOPE")
	c.waitFor("<MSDP ;HEALTH=100>")
	c.waitFor("<MSDP ;HEALTH_MAX=100>")
	out := c.do("fight", "<MSDP ;HEALTH=93>")
	if strings.Contains(out, "HEALTH_MAX") {
		t.Errorf("an unchanged HEALTH_MAX was sent again: %q", out)
	}
	msdp("VAR", "UNREPORT", "VAL", "HEALTH")
	msdp("VAR", "SEND", "VAL", "[", "VAL", "HEALTH", "VAL", "MANA", "]")
	c.waitFor("<MSDP ;MANA=47>")
	// The MSDP variables go before Char.Vitals: once that is in, any
	// report would be too.
	out = c.do("fight", `"hp":86`)
	if strings.Contains(out, "<MSDP") {
		t.Errorf("unreported HEALTH was sent after UNREPORT: %q", out)
	}
	msdp("VAR", "LIST", "VAL", "REPORTED_VARIABLES")
	c.waitFor("<MSDP ;REPORTED_VARIABLES=[=HEALTH_MAX]>")
	msdp("\x02garbage", "VAR") // ignored
	msdp("VAR", "LIST", "VAL", "COMMANDS")
	c.waitFor("<MSDP ;COMMANDS=[=LIST=REPORT=RESET=SEND=UNREPORT]>")
}
