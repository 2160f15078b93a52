package edge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/edge/web"
	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

func TestPagesAndAPI(t *testing.T) {
	e := newEnv(t, nil)
	base := "http://" + e.addr
	if err := e.st.SetGameMSSP(context.Background(), "demo", map[string][]string{"PLAYERS": {"3"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path   string
		status int
		has    string
	}{
		{"/", 200, "/static/index.js"},
		{"/play/demo", 200, `id="output"`},
		{"/play/nope", 404, `href="/"`},
		{"/play/..%2f", 404, ""},
		{"/static/app.js", 200, "import"},
		{"/static/missing.js", 404, ""},
		{"/healthz", 200, "ok"},
		{"/metrics", 404, ""}, // on the admin listener only (admin_test.go)
		{"/nothing", 404, ""},
	}
	for _, c := range cases {
		resp, body := httpGet(t, base+c.path, nil)
		if resp.StatusCode != c.status || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d %.80q, want %d containing %q", c.path, resp.StatusCode, body, c.status, c.has)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			resp.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: security headers missing: %v", c.path, resp.Header)
		}
	}

	resp, body := httpGet(t, base+"/api/games", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/api/games: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var games []map[string]any
	if err := json.Unmarshal([]byte(body), &games); err != nil {
		t.Fatal(err)
	}
	want := `[{"description":"the demo","id":"demo","name":"Trellis Demo","players":3},{"description":"","id":"other","name":"Other","players":null}]`
	got, _ := json.Marshal(games)
	if string(got) != want {
		t.Fatalf("/api/games = %s\nwant %s", got, want)
	}

	waitFor(t, "ready", e.srv.Ready)
	if resp, _ := httpGet(t, base+"/readyz", nil); resp.StatusCode != 200 {
		t.Fatalf("/readyz %d while ready", resp.StatusCode)
	}
}

func TestShutdownClosesBrowsersAndCleansUp(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	c := e.hello(user, "demo", "")
	waitFor(t, "heartbeat", func() bool {
		live, err := e.st.LiveEdges(context.Background(), []string{"edge-test"})
		return err == nil && live["edge-test"]
	})
	e.stop()
	c.expectClose(wire.CloseGoingAway)
	live, err := e.st.LiveEdges(context.Background(), []string{"edge-test"})
	if err != nil || live["edge-test"] {
		t.Fatalf("heartbeat still there after shutdown: %v %v", live, err)
	}
	var detached bool
	for _, cmd := range e.controlCommands() {
		detached = detached || (cmd.Type == store.CmdDetach && cmd.User == user)
	}
	if !detached {
		t.Fatal("no detach published for the viewer on shutdown")
	}
	if e.srv.Ready() {
		t.Fatal("Ready after shutdown")
	}
}

func TestWatchdogReattachesWhenOwnerVanishes(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	w.write(store.Output{Kind: store.OutStatus, State: store.StateConnected})
	c.next()
	waitFor(t, "the watchdog to learn the lease", func() bool {
		sess := e.srv.hub.snapshot()
		for s := range sess {
			s.mu.Lock()
			ok := s.watched == w.lease.Fence
			s.mu.Unlock()
			if ok {
				return true
			}
		}
		return false
	})
	// The worker dies: its lease goes, with no final status.
	w.release()
	waitFor(t, "a failover attach", func() bool {
		for _, cmd := range e.controlCommands() {
			if cmd.Type == store.CmdAttach && cmd.Reason == "failover" && cmd.User == user {
				return true
			}
		}
		return false
	})
}

func TestWatchdogLeavesEndedSessionsAlone(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	waitFor(t, "the watchdog to learn the lease", func() bool {
		for s := range e.srv.hub.snapshot() {
			s.mu.Lock()
			ok := s.watched == w.lease.Fence
			s.mu.Unlock()
			if ok {
				return true
			}
		}
		return false
	})
	// The game hung up: final status, then the lease is released.
	w.write(store.Output{Kind: store.OutStatus, State: store.StateDisconnected})
	w.release()
	if f := c.next(); f.State != store.StateDisconnected {
		t.Fatalf("frame %+v", f)
	}
	before := e.srv.watchdogPasses.Load()
	waitFor(t, "five watchdog passes", func() bool { return e.srv.watchdogPasses.Load() >= before+5 })
	for _, cmd := range e.controlCommands() {
		if cmd.Reason == "failover" {
			t.Fatalf("failover attach for a session that ended normally: %+v", cmd)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{}.withDefaults()
	if err := good.Validate(); err != nil || good.ID == "" {
		t.Fatalf("defaults: %v (id %q)", err, good.ID)
	}
	cases := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.InputRate = -1 }, "TRELLIS_EDGE_INPUT_RATE=-1"},
		{func(c *Config) { c.InputBurst = 0; c.InputRate = 1 }, "TRELLIS_EDGE_INPUT_BURST=0"},
		{func(c *Config) { c.MaxMessage = 2 << 20 }, "TRELLIS_EDGE_MAX_MESSAGE=2097152"},
		{func(c *Config) { c.MaxLine = 70000 }, "TRELLIS_EDGE_MAX_LINE=70000"},
		{func(c *Config) { c.SendQueue = 3 }, "TRELLIS_EDGE_SEND_QUEUE=3"},
		{func(c *Config) { c.MaxSessionsPerUser = -2 }, "TRELLIS_EDGE_MAX_SESSIONS_PER_USER=-2"},
		{func(c *Config) { c.AllowedOrigins = []string{"play.example.com"} }, "TRELLIS_EDGE_ALLOWED_ORIGINS"},
		{func(c *Config) { c.LeaseCheck = time.Microsecond }, "TRELLIS_EDGE_LEASE_CHECK=1µs"},
	}
	for _, tc := range cases {
		c := Config{}.withDefaults()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want mention of %s", err, tc.want)
		}
	}
}

// Connections past MaxConnections, counted before hello, are refused with
// 503 and /readyz says not ready, until one leaves.
func TestMaxConnections(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConnections = 2 })
	a := e.dial(nil)
	e.dial(nil)
	if _, err := e.tryDial(nil); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("third connection: %v, want HTTP 503", err)
	}
	if e.srv.Ready() {
		t.Error("a full edge reports ready")
	}
	a.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := e.tryDial(nil)
		if err == nil {
			c.conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An owner can lose its lease before this edge ever read it (it
// self-fenced while Redis was away, within the first lease check). The
// edge relayed its output, so it knows a fence; the lease is gone: that is
// a failover too. The watchdog's ticker is kept out of the way (an hour)
// and one pass is run by hand, so the order of events is exact.
func TestWatchdogReattachesWhenALeaseItNeverReadIsGone(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LeaseCheck = time.Hour })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	w.write(store.Output{Kind: store.OutStatus, State: store.StateConnected})
	if f := c.next(); f.State != store.StateConnected {
		t.Fatalf("frame %+v", f)
	}
	w.release() // no final status: the owner lost it
	e.srv.checkLeases(context.Background())
	found := false
	for _, cmd := range e.controlCommands() {
		if cmd.Type == store.CmdAttach && cmd.Reason == "failover" && cmd.User == user {
			found = true
		}
	}
	if !found {
		t.Fatal("no failover attach for a session whose owner lost a lease this edge never read")
	}
}
