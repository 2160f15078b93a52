package worker

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/telnet"
)

func newModeJudge(mode string) *typeAhead {
	j := newTypeAhead(mustPrompt(store.DefaultPasswordPrompt), 5*time.Second)
	j.setMode(mode)
	return j
}

// typeAt shows prompt, types text at it and returns whether its record is
// a secret (it must be recorded at once).
func typeAt(t *testing.T, j *typeAhead, prompt, text string, at time.Time) bool {
	t.Helper()
	j.text(prompt, at)
	j.prompt()
	recs := j.typed(line(text, 1, at), at)
	if len(recs) != 1 || recs[0].text != text {
		t.Fatalf("%q at %q: records %+v, want one at once", text, prompt, recs)
	}
	return recs[0].secret
}

func TestEchoAutoPasswordPrompt(t *testing.T) {
	j := newModeJudge(store.EchoAuto)
	t0 := time.Unix(1000, 0)
	if typeAt(t, j, "Name: ", "alice", t0) {
		t.Fatal("name recorded as a secret")
	}
	j.text("\n", t0)
	j.setEcho(true)
	if !typeAt(t, j, "Password: ", "hunter2", t0) {
		t.Fatal("password under echo recorded in plain text")
	}
	j.setEcho(false)
	j.text("\nWelcome back!\n", t0)
	if typeAt(t, j, "> ", "look", t0) {
		t.Fatal("a command after the login recorded as a secret")
	}
}

// A character-mode server: WILL ECHO from the first byte to the last, and
// the game prints every line back.
func TestEchoAutoCharacterServerEchoesBack(t *testing.T) {
	j := newModeJudge(store.EchoAuto)
	t0 := time.Unix(1000, 0)
	j.setEcho(true)
	// The first line is a guess that must err on the safe side.
	if !typeAt(t, j, "Name: ", "alice", t0) {
		t.Fatal("the first line under echo was recorded in plain text")
	}
	j.text("alice\nWelcome, alice.\n", t0) // the game echoes it back
	if typeAt(t, j, "> ", "look", t0) {
		t.Fatal("a command the game echoes back was recorded as a secret")
	}
	j.text("look\nA room.\n", t0)
	// A real password prompt is still a secret.
	if !typeAt(t, j, "Old password: ", "hunter2", t0) {
		t.Fatal("a password on a character-mode server recorded in plain text")
	}
	j.text("\n", t0)
	if typeAt(t, j, "> ", "north", t0) {
		t.Fatal("the command after the password recorded as a secret")
	}
}

// A server that keeps WILL ECHO on and does not print lines back: after
// two lines at ordinary prompts, the rest are commands.
func TestEchoAutoEchoNeverEnds(t *testing.T) {
	j := newModeJudge(store.EchoAuto)
	t0 := time.Unix(1000, 0)
	j.setEcho(true)
	for i, cmd := range []string{"alice", "look"} {
		if !typeAt(t, j, "\n> ", cmd, t0) {
			t.Fatalf("line %d under echo recorded in plain text", i+1)
		}
	}
	if typeAt(t, j, "\n> ", "north", t0) {
		t.Fatal("the third line at an ordinary prompt under unbroken echo is still a secret")
	}
	// Password-looking prompts never count toward the guess.
	j = newModeJudge(store.EchoAuto)
	j.setEcho(true)
	for i := range 4 {
		if !typeAt(t, j, "\nPassword: ", "wrong", t0) {
			t.Fatalf("password attempt %d recorded in plain text", i+1)
		}
	}
	// Echo turned off and on again starts the count again.
	j = newModeJudge(store.EchoAuto)
	j.setEcho(true)
	typeAt(t, j, "\n> ", "a", t0)
	j.setEcho(false)
	j.setEcho(true)
	if !typeAt(t, j, "\n> ", "b", t0) {
		t.Fatal("the count survived echo going off")
	}
}

func TestEchoEchoedBackIsAWord(t *testing.T) {
	for _, tc := range []struct {
		line, typed string
		want        bool
	}{
		{"> look", "look", true},
		{"look", "look", true},
		{"[HP:6/6]:look  ", "look", true},
		{"Welcome", "me", false},
		{"Password: ", "hunter2", false},
	} {
		if got := echoedBack(tc.line, tc.typed); got != tc.want {
			t.Errorf("echoedBack(%q, %q) = %v, want %v", tc.line, tc.typed, got, tc.want)
		}
	}
}

func TestEchoModeFromRegistry(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// password: the echo always hides, even printed back.
	j := newModeJudge(store.EchoPassword)
	j.setEcho(true)
	for i := range 4 {
		if !typeAt(t, j, "\n> ", "look", t0) {
			t.Fatalf("password mode: line %d recorded in plain text", i+1)
		}
		j.text("look\n", t0)
	}
	// character: echo means nothing; the password pattern still works.
	j = newModeJudge(store.EchoCharacter)
	j.setEcho(true)
	if typeAt(t, j, "Name: ", "alice", t0) {
		t.Fatal("character mode: the first line recorded as a secret")
	}
	if !typeAt(t, j, "\nPassword: ", "hunter2", t0) {
		t.Fatal("character mode: a password recorded in plain text")
	}
	// A line typed ahead is judged by its prompt, not by the echo.
	j = newModeJudge(store.EchoCharacter)
	j.text("> ", t0)
	j.prompt()
	j.typed(line("look", 1, t0), t0)
	if recs := j.typed(line("north", 2, t0), t0); len(recs) != 0 {
		t.Fatalf("typed-ahead line recorded early: %+v", recs)
	}
	if recs := j.setEcho(true); len(recs) != 0 {
		t.Fatalf("character mode: echo on redacted the held line: %+v", recs)
	}
	j.text("\n> ", t0.Add(time.Millisecond))
	j.prompt()
	recs := j.resolve(t0.Add(time.Millisecond))
	if len(recs) != 1 || recs[0].secret || recs[0].text != "north" {
		t.Fatalf("held line under character mode: %+v", recs)
	}
}

// charModeGame is a character-mode server: WILL ECHO from the start and
// for good, and every line read is printed back before the answer.
func charModeGame(c net.Conn) {
	c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptEcho, telnet.IAC, telnet.WILL, telnet.OptSGA})
	c.Write([]byte("Welcome.\r\n> "))
	r := bufio.NewReader(c)
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		switch {
		case b == telnet.IAC: // a negotiation answer: IAC verb option
			verb, _ := r.ReadByte()
			if verb >= telnet.WILL && verb <= telnet.DONT {
				r.ReadByte()
			} else if verb == telnet.SB {
				for {
					x, err := r.ReadByte()
					if err != nil || x == telnet.SE {
						break
					}
				}
			}
		case b == '\r':
		case b == '\n':
			l := string(line)
			line = line[:0]
			fmt.Fprintf(c, "%s\r\nYou typed %s.\r\n> ", l, l)
		default:
			line = append(line, b)
		}
	}
}

// inputRecords returns the transcript's input entries of (user, game).
func inputRecords(outs []store.Output) []store.Output {
	var in []store.Output
	for _, o := range outs {
		if o.Kind == store.OutInput {
			in = append(in, o)
		}
	}
	return in
}

// A real character-mode server over TCP: the first command is redacted
// (the guess errs on the safe side), the rest are recorded as the game
// printed them; with the registry saying "character", none is redacted.
func TestEchoCharacterServerTranscript(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	e.fakeGame("charauto", charModeGame)
	e.fakeGame("charset", charModeGame)
	g, err := e.st.GetGame(e.ctx, "charset")
	if err != nil {
		t.Fatal(err)
	}
	g.Echo = store.EchoCharacter
	if err := e.st.PutGame(e.ctx, g); err != nil {
		t.Fatal(err)
	}
	e.startWorker(testConfig())

	for _, tc := range []struct {
		game string
		want []string // the input records' text, "" for redacted
	}{
		{"charauto", []string{"", "north", "south"}},
		{"charset", []string{"look", "north", "south"}},
	} {
		u := e.user(tc.game)
		e.attachTo(u, tc.game)
		key := store.SessionKey{User: u, Game: tc.game}
		waitFor(t, 10*time.Second, "the welcome", func() bool { return strings.Contains(text(e.outputsOf(u, tc.game)), "> ") })
		l, ok, err := e.st.GetLease(e.ctx, key)
		if err != nil || !ok {
			t.Fatalf("lease of %s: %v, %v", key, ok, err)
		}
		for _, cmd := range []string{"look", "north", "south"} {
			if err := e.st.SendInput(e.ctx, l.Owner, store.Command{Type: store.CmdInput, User: u, Game: tc.game, Fence: l.Fence, Text: cmd}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the game's answer to "+cmd, func() bool {
				return strings.Contains(text(e.outputsOf(u, tc.game)), "You typed "+cmd+".")
			})
		}
		waitFor(t, 10*time.Second, "three input records", func() bool { return len(inputRecords(e.outputsOf(u, tc.game))) == 3 })
		var got []string
		for _, o := range inputRecords(e.outputsOf(u, tc.game)) {
			if o.Redacted != (o.Text == "") {
				t.Fatalf("%s: record %+v", tc.game, o)
			}
			got = append(got, o.Text)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: input records %q, want %q", tc.game, got, tc.want)
		}
	}
}

// On a character-mode server a password typed ahead of its prompt (a
// paste of name and password) waits for the prompt like any line, and is
// a secret once the prompt shows.
func TestEchoCharacterModeHoldsTypedAhead(t *testing.T) {
	j := newModeJudge(store.EchoCharacter)
	t0 := time.Unix(1000, 0)
	j.setEcho(true)
	j.text("Name: ", t0)
	j.prompt()
	if recs := j.typed(line("alice", 1, t0), t0); len(recs) != 1 || recs[0].secret {
		t.Fatalf("name: %+v", recs)
	}
	if recs := j.typed(line("hunter2", 2, t0), t0); len(recs) != 0 {
		t.Fatalf("a password typed ahead was recorded before its prompt: %+v", recs)
	}
	j.text("alice\r\nPassword: ", t0.Add(time.Millisecond))
	j.prompt()
	recs := j.resolve(t0.Add(time.Millisecond))
	if len(recs) != 1 || !recs[0].secret || recs[0].seq != 2 {
		t.Fatalf("typed-ahead password: %+v", recs)
	}
}
