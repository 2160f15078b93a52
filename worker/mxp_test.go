package worker

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// readUntil reads from c until what it read contains want (or 10 s pass,
// or the connection fails), and returns all of it.
func readUntil(c net.Conn, want []byte) []byte {
	var got []byte
	buf := make([]byte, 256)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for !bytes.Contains(got, want) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got
		}
	}
	return got
}

// mxpGame registers a game on a real TCP listener that offers MXP and,
// once the client agrees (or at once if agree is false), sends text; what
// the client answers to <SUPPORT> is sent on answers.
func mxpGame(e *env, id string, optIn bool, text string, answers chan<- string) {
	addr := e.fakeGame(id, func(c net.Conn) {
		c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptMXP})
		want := []byte{telnet.IAC, telnet.DONT, telnet.OptMXP}
		if optIn {
			want = []byte{telnet.IAC, telnet.DO, telnet.OptMXP}
		}
		readUntil(c, want)
		c.Write([]byte{telnet.IAC, telnet.SB, telnet.OptMXP, telnet.IAC, telnet.SE})
		c.Write([]byte(text))
		if answers != nil {
			got := readUntil(c, []byte(">\r\n"))
			answers <- string(got)
		}
		io.Copy(io.Discard, c)
	})
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if err := e.st.PutGame(e.ctx, store.Game{ID: id, Name: "MXP " + id, Host: host, Port: p, MXP: optIn}); err != nil {
		e.t.Fatal(err)
	}
}

// A game that opted in to MXP: its <send> link, colour and <SUPPORT>
// travel as the inline spec's escapes in the stream entry text, and the
// game reads the SUPPORTS answer.
func TestMXPGameReachesTheStreamAsEscapes(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	answers := make(chan string, 1)
	mxpGame(e, "mxp", true, "\x1b[1z<SUPPORT send>\r\n"+
		"\x1b[1z<send href=\"go north\" hint=\"Go north\">north</send> and <color red>red</color> &lt;ok&gt;\r\n", answers)
	e.startWorker(testConfig())
	u := e.user("m")
	e.attachTo(u, "mxp")
	var got string
	waitFor(t, 10*time.Second, "the MXP line", func() bool {
		got = text(e.outputsOf(u, "mxp"))
		return strings.Contains(got, "<ok>")
	})
	link := "\x1b]7701;{\"cmds\":[\"go north\"],\"hints\":[\"Go north\"],\"prompt\":false}\x1b\\north\x1b]7701;\x1b\\"
	want := link + " and \x1b[38;2;255;0;0mred\x1b[39m <ok>\n"
	if !strings.Contains(got, want) {
		t.Errorf("stream text %q\nwant it to hold %q", got, want)
	}
	for _, leak := range []string{"<send", "<color", "\x1b[1z", "SUPPORT"} {
		if strings.Contains(got, leak) {
			t.Errorf("stream text %q carries %q", got, leak)
		}
	}
	select {
	case a := <-answers:
		if !strings.HasSuffix(a, "\x1b[1z<SUPPORTS +send>\r\n") {
			t.Errorf("game read %q, want the SUPPORTS answer", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the game got no SUPPORTS answer")
	}
}

// A game that did not opt in has MXP refused and its markup left as text,
// and no game, MXP or not, can put a command link of its own (a raw OSC
// 7701) into the stream.
func TestGamesCannotForgeCommandLinks(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	forged := "a\x1b]7701;{\"cmds\":[\"quit\"],\"prompt\":false}\x1b\\quit\x1b]7701;\x1b\\ <b>b</b>\r\n"
	mxpGame(e, "plain", false, forged, nil)
	mxpGame(e, "mxp", true, forged, nil)
	e.startWorker(testConfig())
	u := e.user("f")
	e.attachTo(u, "plain")
	e.attachTo(u, "mxp")
	for game, want := range map[string]string{"plain": "aquit <b>b</b>\n", "mxp": "aquit \x1b[1mb\x1b[22m\n"} {
		var got string
		waitFor(t, 10*time.Second, game+" text", func() bool {
			got = text(e.outputsOf(u, game))
			return strings.Contains(got, "quit")
		})
		if !strings.Contains(got, want) || strings.Contains(got, "7701") {
			t.Errorf("%s: stream text %q, want it to hold %q and no OSC 7701", game, got, want)
		}
	}
}

// The demo game's MXP line (look, with Config.MXP and the registry's mxp)
// reaches the stream as a command link and a 24-bit colour, which is what
// a browser test renders.
func TestDemoGameMXPLook(t *testing.T) {
	e := newEnv(t, demogame.Config{MXP: true})
	g, err := e.st.GetGame(e.ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	g.MXP = true
	if err := e.st.UpdateGame(e.ctx, g); err != nil {
		t.Fatal(err)
	}
	e.startWorker(testConfig())
	u := e.user("d")
	e.attach(u, "v1", "edge-1", "")
	e.login(u, "Mira", "pw")
	e.input(u, "look")
	got := text(e.waitText(u, "golden"))
	want := "Exits: \x1b]7701;{\"cmds\":[\"north\"],\"hints\":[\"Go north\"],\"prompt\":false}\x1b\\north\x1b]7701;\x1b\\. " +
		"The vines bear one \x1b[38;2;255;215;0mgolden\x1b[39m rose.\n"
	if !strings.Contains(got, want) {
		t.Errorf("stream text %q\nwant it to hold %q", got, want)
	}
}
