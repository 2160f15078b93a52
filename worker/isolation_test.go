package worker

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"fmt"
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

// The dial guard refuses a game registered at Trellis's own Redis, even
// with loopback allowed, and a loopback game when loopback is not allowed.
// The player reads a short reason; the event log has the full one.
func TestDialGuardRefusesRedisAndLoopback(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	port := e.redisPort()
	if err := e.st.PutGame(e.ctx, store.Game{ID: "redis", Name: "Not a game", Host: "127.0.0.1", Port: port}); err != nil {
		t.Fatal(err)
	}
	e.startWorker(testConfig())
	user := e.user("mallory")
	e.attachTo(user, "redis")
	var outs []store.Output
	waitFor(t, 10*time.Second, "session failed", func() bool {
		outs = e.outputsOf(user, "redis")
		return hasState(outs, store.StateFailed)
	})
	last := outs[len(outs)-1]
	if !strings.Contains(last.Text, "not allowed") {
		t.Fatalf("player was told %q", last.Text)
	}
	for _, o := range outs {
		if o.Kind == store.OutText {
			t.Fatalf("text from Redis reached the stream: %q", o.Text)
		}
	}
	waitFor(t, 10*time.Second, "a session.failed event naming the refusal", func() bool {
		for _, ev := range e.events("") {
			if ev.Type == store.EvSessionFailed && strings.Contains(string(ev.Data), "Trellis's own Redis") {
				return true
			}
		}
		return false
	})

	// Without AllowNetworks the demo game on loopback is refused too.
	cfg := testConfig()
	cfg.AllowNetworks = nil
	e2 := newEnv(t, demogame.Config{})
	e2.startWorker(cfg)
	v := e2.user("bob")
	e2.attach(v, "v1", "", "")
	outs = e2.waitState(v, store.StateFailed)
	if last := outs[len(outs)-1]; !strings.Contains(last.Text, "not allowed") {
		t.Fatalf("loopback game: player was told %q", last.Text)
	}
	if e2.game.Conns() != 0 {
		t.Fatal("the demo game saw a connection")
	}
}

// Name and password sent back to back at the name prompt: the password
// reaches the worker before the game has shown "Password:" or turned echo
// on, and must still never be stored. The "slow" game makes the race
// certain: it asks for the password only once both lines have arrived.
func TestPasswordTypedAheadIsRedacted(t *testing.T) {
	const password = "typed-ahead-secret"
	for _, game := range []string{"slow", "slow-noecho", "demo", "demo-noecho"} {
		t.Run(game, func(t *testing.T) {
			e := newEnv(t, demogame.Config{NoEcho: game == "demo-noecho"})
			id := "demo"
			if strings.HasPrefix(game, "slow") {
				id = "slow"
				echo := game == "slow"
				e.fakeGame(id, func(c net.Conn) {
					c.Write([]byte("What is your name? "))
					c.Write([]byte{telnet.IAC, telnet.GA})
					r := bufio.NewReader(c)
					for range 2 { // the name and the password, both already sent
						if _, err := r.ReadString('\n'); err != nil {
							return
						}
					}
					if echo {
						c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptEcho})
					}
					c.Write([]byte("Password: "))
					c.Write([]byte{telnet.IAC, telnet.GA})
					if echo {
						r.Read(make([]byte, 3)) // DO ECHO
						c.Write([]byte{telnet.IAC, telnet.WONT, telnet.OptEcho})
					}
					c.Write([]byte("\r\nWelcome back.\r\n> "))
					c.Write([]byte{telnet.IAC, telnet.GA})
					io.Copy(io.Discard, r)
				})
			}
			e.startWorker(testConfig())
			u := e.user("fast")
			e.attachTo(u, id)
			k := store.SessionKey{User: u, Game: id}
			waitFor(t, 10*time.Second, "the name prompt", func() bool {
				return strings.Contains(text(e.outputsOf(u, id)), "What is your name?")
			})
			l, _, _ := e.st.GetLease(e.ctx, k)
			for i, line := range []string{"Fasttypist", password} {
				err := e.st.SendInput(e.ctx, l.Owner, store.Command{Type: store.CmdInput, User: u, Game: id,
					Fence: l.Fence, Text: line, Viewer: "v1", Seq: uint64(i + 1)})
				if err != nil {
					t.Fatal(err)
				}
			}
			var inputs []store.Output
			waitFor(t, 10*time.Second, "welcome and both lines recorded", func() bool {
				inputs = inputs[:0]
				outs := e.outputsOf(u, id)
				for _, o := range outs {
					if o.Kind == store.OutInput {
						inputs = append(inputs, o)
					}
				}
				return len(inputs) >= 2 && strings.Contains(text(outs), "Welcome")
			})
			raw, err := e.rdb.XRange(e.ctx, e.st.OutputChannel(store.SessionKey{User: u, Game: id}), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range raw {
				if strings.Contains(fmt.Sprint(m.Values), password) {
					t.Fatalf("the password is in Redis: %v", m.Values)
				}
			}
			if inputs[0].Text != "Fasttypist" || inputs[0].Redacted || !inputs[1].Redacted || inputs[1].Text != "" {
				t.Fatalf("input records %+v", inputs)
			}
			if inputs[0].Viewer != "v1" || inputs[0].InputSeq != 1 || inputs[1].InputSeq != 2 {
				t.Fatalf("input records do not name their viewer and seq: %+v", inputs)
			}
		})
	}
}

// A game that sends thousands of distinct GMCP packages keeps a bounded
// state hash (and every attach a bounded replay).
func TestGMCPFloodStateIsBounded(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	const packages = 2000
	e.fakeGame("gmcp", func(c net.Conn) {
		c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptGMCP})
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil { // IAC DO GMCP
			return
		}
		var b bytes.Buffer
		for i := range packages {
			b.Write([]byte{telnet.IAC, telnet.SB, telnet.OptGMCP})
			fmt.Fprintf(&b, `Flood.P%d {"n":%d}`, i, i)
			b.Write([]byte{telnet.IAC, telnet.SE})
		}
		b.WriteString("done\r\n")
		c.Write(b.Bytes())
		io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	cfg.GMCPMaxPackages = 16
	e.startWorker(cfg)
	u := e.user("g")
	e.attachTo(u, "gmcp")
	waitFor(t, 10*time.Second, "the flood written", func() bool {
		return strings.Contains(text(e.outputsOf(u, "gmcp")), "done")
	})
	state, err := e.st.GMCPState(e.ctx, store.SessionKey{User: u, Game: "gmcp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != 16 {
		t.Fatalf("GMCP state holds %d packages, want the 16 newest", len(state))
	}
	for _, o := range state {
		if n, _ := strconv.Atoi(strings.TrimPrefix(o.Package, "Flood.P")); n < packages-16 {
			t.Fatalf("kept an old package %s", o.Package)
		}
	}
	if n := countEvents(e.events(""), store.EvSessionGMCPTrimmed); n != 1 {
		t.Fatalf("%d gmcp_trimmed events, want 1", n)
	}
}

// A zip bomb: a few KB of MCCP2 that inflate to megabytes. No entry may
// exceed FLUSH_BYTES, whatever one read inflates to.
func TestZipBombIsWrittenInBoundedEntries(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	const inflated = 8 << 20
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	line := bytes.Repeat([]byte("A"), 199)
	for i := 0; i < inflated/200; i++ {
		zw.Write(line)
		zw.Write([]byte{'\n'})
	}
	zw.Write([]byte("END\n"))
	zw.Flush()
	bomb := z.Bytes()
	e.fakeGame("bomb", func(c net.Conn) {
		c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptMCCP2})
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil { // IAC DO MCCP2
			return
		}
		c.Write(append([]byte{telnet.IAC, telnet.SB, telnet.OptMCCP2, telnet.IAC, telnet.SE}, bomb...))
		io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	cfg.FlushBytes = 4096
	cfg.SessionBuffer = 16 * cfg.FlushBytes
	cfg.OutputRate = -1 // entry bounds are under test, not the rate cap
	e.startWorker(cfg)
	u := e.user("z")
	e.attachTo(u, "bomb")
	var outs []store.Output
	waitFor(t, 30*time.Second, "the bomb written", func() bool {
		outs = e.outputsOf(u, "bomb")
		return strings.Contains(text(outs), "END")
	})
	t.Logf("%d compressed bytes; %d entries kept", len(bomb), len(outs))
	for _, o := range outs {
		if len(o.Text) > cfg.FlushBytes {
			t.Fatalf("an entry of %d bytes, FLUSH_BYTES %d", len(o.Text), cfg.FlushBytes)
		}
	}
}

// NUL, ESC and other C0 controls typed in the browser do not reach the
// game (TAB does), unless the game's registry entry keeps them.
func TestInputControlsAreDropped(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			e := newEnv(t, demogame.Config{})
			got := make(chan []byte, 1)
			addr := e.fakeGame("raw", func(c net.Conn) {
				c.Write([]byte("> "))
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				got <- buf[:n]
				io.Copy(io.Discard, c)
			})
			host, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			if err := e.st.PutGame(e.ctx, store.Game{ID: "raw", Name: "Raw", Host: host, Port: p, KeepControls: keep}); err != nil {
				t.Fatal(err)
			}
			e.startWorker(testConfig())
			u := e.user("c")
			e.attachTo(u, "raw")
			k := store.SessionKey{User: u, Game: "raw"}
			waitFor(t, 10*time.Second, "connected", func() bool { return hasState(e.outputsOf(u, "raw"), store.StateConnected) })
			l, _, _ := e.st.GetLease(e.ctx, k)
			if err := e.st.SendInput(e.ctx, l.Owner, store.Command{Type: store.CmdInput, User: u, Game: "raw", Fence: l.Fence, Text: "a\x00b\x1bc\td\x01"}); err != nil {
				t.Fatal(err)
			}
			want := "abc\td\r\n"
			if keep {
				want = "ab\x1bc\td\x01\r\n" // NUL never: C servers read it as the end of the line
			}
			select {
			case b := <-got:
				if string(b) != want {
					t.Fatalf("game read %q, want %q", b, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the game read nothing")
			}
		})
	}
}

// A redial tells the player why the last connection failed, not
// "(no error)": restart events carry no reason of their own.
func TestRestartStatusSaysWhy(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused
	e.addGame("down", addr)
	e.startWorker(testConfig())
	u := e.user("r")
	e.attachTo(u, "down")
	var msg string
	waitFor(t, 10*time.Second, "a retry status", func() bool {
		for _, o := range e.outputsOf(u, "down") {
			if o.Kind == store.OutStatus && strings.Contains(o.Text, "retrying") {
				msg = o.Text
				return true
			}
		}
		return false
	})
	if !strings.Contains(msg, "refused") || strings.Contains(msg, "no error") {
		t.Fatalf("retry status %q", msg)
	}
}

// A session whose lease is taken while it floods leaves a gap entry, with
// its old fence, for the output it read but could not store.
func TestLostLeaseLeavesGap(t *testing.T) {
	e := newEnv(t, demogame.Config{Bench: true})
	w := e.startWorker(testConfig())
	u := e.user("flood")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	e.input(u, "flood 200000 200")
	e.waitText(u, "flood 000100")
	l, _ := e.lease(u)
	if err := e.st.ReleaseLease(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AcquireLease(e.ctx, key(u), "other-worker", "s2", time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "session stopped", func() bool { return w.Sessions() == 0 })
	var gap store.Output
	waitFor(t, 10*time.Second, "a gap entry for the lost output", func() bool {
		for _, o := range e.outputs(u) {
			if o.Kind == store.OutGap && o.Fence == l.Fence {
				gap = o
				return true
			}
		}
		return false
	})
	if !strings.Contains(gap.Text, "bytes of output were lost") || gap.Seq != 0 {
		t.Fatalf("gap entry %+v", gap)
	}
}

// A renewal round that starts too late to renew in time (the previous one
// took most of the TTL: Redis blocked behind a huge script, the process
// starved) self-fences; it used to do so without a word, so operators saw
// every session of a worker stop with no warning. Now the log says why
// first, and the event carries the reason.
func TestLateRenewalRoundWarnsBeforeSelfFence(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	w := e.startWorker(testConfig())
	u := e.user("late")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	w.mu.Lock()
	s := w.sessions[key(u)]
	w.mu.Unlock()
	// As if the last successful renewal were long ago. Stored again at
	// each poll: a round in flight may overwrite it once.
	waitFor(t, 10*time.Second, "the session self-fenced", func() bool {
		s.validUntil.Store(time.Now().Add(-time.Second).UnixNano())
		return w.Sessions() == 0
	})
	logs := e.logs.String()
	late, fenced := strings.Index(logs, "lease renewal late"), strings.Index(logs, "self-fenced")
	if late < 0 || fenced < 0 || late > fenced {
		t.Fatalf("want a late-renewal warning before the self-fence; logs:\n%s", logs)
	}
	waitFor(t, 10*time.Second, "a self_fenced event with a reason", func() bool {
		for _, ev := range e.events("") {
			if ev.Type == store.EvWorkerSelfFenced && strings.Contains(string(ev.Data), "renewal round started") {
				return true
			}
		}
		return false
	})
}

// A session's output is capped in bytes per second: past it the game is
// read more slowly (TCP flow control), so one flood cannot take its
// neighbours' CPU. The cap is checked as an upper bound on what the
// stream received in a window, not as a timing of anything.
func TestOutputRateCapsAFlood(t *testing.T) {
	e := newEnv(t, demogame.Config{Bench: true})
	cfg := testConfig()
	cfg.OutputRate = 64 << 10
	e.st = store.New(e.rdb, store.WithNamespace(e.ns), store.WithOutputMaxBytes(64<<20))
	w := e.startWorker(cfg)
	u := e.user("rate")
	e.attach(u, "v1", "", "")
	e.waitState(u, store.StateConnected)
	start := time.Now()
	e.input(u, "flood 100000 200") // 20 MB
	e.waitText(u, "flood 000001")
	time.Sleep(2 * time.Second)
	got := len(text(e.outputs(u)))
	elapsed := time.Since(start)
	// burst + rate × elapsed, with room for the slice that was in flight.
	burst := telnet.MaxSliceText(w.Config().FlushBytes) + 6*w.Config().MaxSubneg
	limit := burst + int(elapsed.Seconds()*float64(cfg.OutputRate)) + 2*w.Config().FlushBytes
	if got > limit {
		t.Fatalf("%d bytes stored in %s; the cap allows at most %d", got, elapsed, limit)
	}
	if got < 64<<10 {
		t.Fatalf("only %d bytes in %s: the flood did not flow at all", got, elapsed)
	}
}
