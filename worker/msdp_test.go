package worker

import (
	"bytes"
	"encoding/json"
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

// msdpOf returns the MSDP outputs of outs as "VAR=value" in order.
func msdpOf(outs []store.Output) []string {
	var got []string
	for _, o := range outs {
		if o.Kind == store.OutMSDP {
			got = append(got, o.Package+"="+string(o.Data))
		}
	}
	return got
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// The demo game offers MSDP; a client REPORT reaches it over MSDP, and the
// variables it sends back (at once, then when fight hurts) become MSDP
// outputs and the session's MSDP state.
func TestMSDPFromTheDemoGame(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	e.startWorker(testConfig())
	u := e.user("msdp")
	e.attach(u, "v1", "edge-1", "")
	e.login(u, "Mira", "pw")
	l, ok := e.lease(u)
	if !ok {
		t.Fatal("no lease")
	}
	send := func(name, val string) {
		t.Helper()
		err := e.st.SendInput(e.ctx, l.Owner, store.Command{Type: store.CmdMSDP, User: u, Game: "demo",
			Fence: l.Fence, Package: name, Data: json.RawMessage(val)})
		if err != nil {
			t.Fatal(err)
		}
	}
	send("REPORT", `["HEALTH","HEALTH_MAX"]`)
	waitFor(t, 10*time.Second, "HEALTH and HEALTH_MAX reported", func() bool {
		return containsAll(msdpOf(e.outputs(u)), `HEALTH="100"`, `HEALTH_MAX="100"`)
	})
	e.input(u, "fight")
	waitFor(t, 10*time.Second, "HEALTH after a fight", func() bool {
		return containsAll(msdpOf(e.outputs(u)), `HEALTH="93"`)
	})
	state, err := e.st.MSDPState(e.ctx, key(u))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range state {
		got[o.Package] = string(o.Data)
	}
	if fmt.Sprint(got) != fmt.Sprint(map[string]string{"HEALTH": `"93"`, "HEALTH_MAX": `"100"`}) {
		t.Errorf("MSDP state %v", got)
	}
}

// A game that sends thousands of distinct MSDP variables keeps a bounded
// state hash; malformed blocks are counted by reason and logged once, and
// the connection stays up.
func TestMSDPFloodStateIsBoundedAndMalformedIsCounted(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	const vars = 1000
	e.fakeGame("msdp", func(c net.Conn) {
		c.Write([]byte{telnet.IAC, telnet.WILL, telnet.OptMSDP})
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil { // IAC DO MSDP
			return
		}
		var b []byte
		for i := range vars {
			var err error
			if b, err = telnet.AppendMSDP(b, fmt.Sprint("V", i), json.RawMessage(strconv.Quote(fmt.Sprint(i)))); err != nil {
				panic(err)
			}
		}
		// Two malformed blocks (a VAL without a VAR; a stray closer after
		// a good variable) and one nested too deep.
		b = append(b, telnet.IAC, telnet.SB, telnet.OptMSDP, 2, 'x', telnet.IAC, telnet.SE)
		b = append(b, telnet.IAC, telnet.SB, telnet.OptMSDP, 1, 'O', 'K', 2, 'y', 4, telnet.IAC, telnet.SE)
		b = append(b, telnet.IAC, telnet.SB, telnet.OptMSDP, 1, 'D', 2)
		b = append(b, bytes.Repeat([]byte{3, 1, 'k', 2}, 40)...)
		b = append(b, telnet.IAC, telnet.SE)
		b = append(b, "done\r\n"...)
		c.Write(b)
		io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	cfg.MSDPMaxVars = 16
	w := e.startWorker(cfg)
	u := e.user("m")
	e.attachTo(u, "msdp")
	waitFor(t, 10*time.Second, "the flood written", func() bool {
		return strings.Contains(text(e.outputsOf(u, "msdp")), "done")
	})
	state, err := e.st.MSDPState(e.ctx, store.SessionKey{User: u, Game: "msdp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != 16 {
		t.Fatalf("MSDP state holds %d variables, want the 16 newest", len(state))
	}
	for _, o := range state {
		if o.Package == "OK" {
			continue // the good variable before the stray closer is kept
		}
		if n, _ := strconv.Atoi(strings.TrimPrefix(o.Package, "V")); n < vars-16 {
			t.Fatalf("kept an old variable %s", o.Package)
		}
	}
	if n := countEvents(e.events(""), store.EvSessionMSDPTrimmed); n != 1 {
		t.Fatalf("%d msdp_trimmed events, want 1", n)
	}
	got := series(t, w.m.reg, "trellis_worker_msdp_dropped_total")
	if got[`{reason="malformed"}`] != 2 || got[`{reason="too_deep"}`] != 1 || got[`{reason="too_many"}`] != 0 {
		t.Errorf("msdp_dropped_total %v, want malformed 2, too_deep 1", got)
	}
	if n := strings.Count(e.logs.String(), "game sent malformed MSDP"); n != 1 {
		t.Errorf("malformed MSDP logged %d times, want once a session", n)
	}
	if hasState(e.outputsOf(u, "msdp"), store.StateDisconnected) {
		t.Error("malformed MSDP ended the connection")
	}
}
