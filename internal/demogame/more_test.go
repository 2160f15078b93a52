package demogame

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegisterFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("demo-game", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{"-name", "Test MUD", "-bench", "-no-gmcp", "-no-mccp2",
		"-no-new-environ", "-negotiation-wait", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "Test MUD" || !cfg.Bench || !cfg.NoGMCP || !cfg.NoMCCP2 || !cfg.NoNewEnviron ||
		cfg.NoEcho || cfg.NoSGA || cfg.NegotiationWait != time.Second || cfg.WriteTimeout != Defaults().WriteTimeout {
		t.Errorf("flags parsed into %+v", cfg)
	}
}

func TestMCCP2CanStartAfterTheBanner(t *testing.T) {
	_, addr := startServer(t, Config{})
	o := acceptAll()
	o.accept[optMCCP2] = false
	c := dialClient(t, addr, o)
	c.login("quinn", "pw")
	if strings.Contains(c.text(), "<MCCP2 start>") {
		t.Fatal("compression started although the client refused it")
	}
	c.ask(cmdDO, optMCCP2)
	c.waitFor("<WILL MCCP2><MCCP2 start>")
	c.do("flood 50 50", "flood 000050")
}

func TestEnvironmentUpdateAfterLoginShowsInWho(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.login("rosa", "pw")
	c.send(appendSubneg(nil, optNEWENVIRON, []byte{envINFO, envVAR}, []byte("IPADDRESS"),
		[]byte{envVALUE}, []byte("198.51.100.9")))
	s := c.do("who", "> ")
	if !regexp.MustCompile(`Rosa +198\.51\.100\.9\r\n`).MatchString(s) {
		t.Errorf("who after NEW-ENVIRON INFO: %q", s)
	}
}

func TestClientCharsetRequestIsAnswered(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialClient(t, addr, acceptAll())
	c.waitFor("What is your name? ")
	c.send(appendSubneg(nil, optCHARSET, []byte{charsetREQUEST}, []byte(" latin1 utf-8")))
	c.waitFor(sbToken(optCHARSET, []byte("\x02utf-8")))
	c.send(appendSubneg(nil, optCHARSET, []byte{charsetREQUEST}, []byte(";CP437")))
	c.waitFor(sbToken(optCHARSET, []byte{charsetREJECTED}))
}

// TestSlowListenerIsCutNotBuffered has a player who never reads while
// another talks: the silent one is disconnected, and the talker goes on.
func TestSlowListenerIsCutNotBuffered(t *testing.T) {
	srv, addr := startServer(t, Config{WriteTimeout: 100 * time.Millisecond, NegotiationWait: -1})
	silent, _ := rawLogin(t, addr, "sid")
	silent.(*net.TCPConn).SetReadBuffer(4 << 10)

	talker, r := rawLogin(t, addr, "tess")
	talker.SetWriteDeadline(time.Now().Add(waitTimeout)) // a server that never cuts Sid fails, not hangs
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, r)
	}()
	defer func() {
		talker.Close()
		<-drained
	}()
	msg := []byte("say " + strings.Repeat("blah ", 800) + "\r\n")
	for i := 0; i < 50_000 && slices.Contains(srv.Players(), "Sid"); i++ {
		if _, err := talker.Write(msg); err != nil {
			t.Fatalf("talker cut off: %v", err)
		}
	}
	waitForValue(t, "Sid online", func() bool { return slices.Contains(srv.Players(), "Sid") }, false)
	if !slices.Contains(srv.Players(), "Tess") {
		t.Error("the talker was disconnected too")
	}
}

// rawLogin logs in over a bare connection that answers no negotiation.
func rawLogin(t *testing.T, addr, name string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	defer conn.SetReadDeadline(time.Time{})
	r := bufio.NewReader(conn)
	for _, step := range []struct{ want, send string }{{"name? ", name + "\r\n"}, {"Password: ", "pw\r\n"}, {"> ", ""}} {
		var seen []byte
		for !bytes.HasSuffix(bytes.TrimRight(seen, "\xff\xf9"), []byte(step.want)) {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatalf("login of %s: %v after %q", name, err, seen)
			}
			seen = append(seen, b)
		}
		conn.Write([]byte(step.send))
	}
	return conn, r
}
