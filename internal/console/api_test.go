package console_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/edge/web"

	"github.com/trellis-mud/trellis/internal/ops"
	"github.com/trellis-mud/trellis/store"
)

func TestAuthRefusesWithoutOperatorCredential(t *testing.T) {
	s := startStack(t, false)
	c := newClient(t, s.consoleURL)

	// No cookie: every API call is 401, and the page itself still loads
	// (it shows the sign-in form).
	for _, path := range []string{"/api/me", "/api/sessions", "/api/games", "/api/events", "/api/control", "/api/cluster", "/api/events/live"} {
		if status, _ := c.do("GET", path, nil); status != http.StatusUnauthorized {
			t.Errorf("GET %s without a cookie: HTTP %d, want 401", path, status)
		}
	}
	if status, _ := c.do("POST", "/api/sessions/kill", map[string]string{"user": "a", "game": "b"}); status != http.StatusUnauthorized {
		t.Errorf("POST kill without a cookie: HTTP %d, want 401", status)
	}
	if status, _ := c.do("GET", "/", nil); status != http.StatusOK {
		t.Errorf("GET /: HTTP %d", status)
	}

	// A player token is refused, and says why.
	status, body := c.do("POST", "/api/login", map[string]string{"token": playerToken(t, "olga")})
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "player token") {
		t.Errorf("login with a player token: HTTP %d %s; want 401 naming the player token", status, body)
	}
	// So is a player token planted as the cookie.
	u := mustURL(t, s.consoleURL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "trellis_operator", Value: playerToken(t, "olga")}})
	if status, _ := c.do("GET", "/api/sessions", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /api/sessions with a player token as the cookie: HTTP %d, want 401", status)
	}

	// Sign-in itself needs the console's Origin (no login CSRF).
	op := operatorToken(t, "olga")
	for _, origin := range []string{"", "http://evil.example"} {
		c.origin = origin
		if status, _ := c.do("POST", "/api/login", map[string]string{"token": op}); status != http.StatusForbidden {
			t.Errorf("login with Origin %q: HTTP %d, want 403", origin, status)
		}
	}
	c.origin = s.consoleURL
	req, _ := http.NewRequest("POST", s.consoleURL+"/api/login", strings.NewReader(`{"token":"`+op+`"}`))
	req.Header.Set("Origin", s.consoleURL)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: HTTP %d", res.StatusCode)
	}
	var ck *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == "trellis_operator" {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.MaxAge <= 0 {
		t.Fatalf("sign-in cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, with a max age", ck)
	}
	var me struct{ Operator string }
	c.must(http.StatusOK, "GET", "/api/me", nil, &me)
	if me.Operator != "olga" {
		t.Errorf("me = %q, want olga", me.Operator)
	}

	// Behind a TLS proxy the cookie is Secure.
	req, _ = http.NewRequest("POST", s.consoleURL+"/api/login", strings.NewReader(`{"token":"`+op+`"}`))
	req.Header.Set("Origin", s.consoleURL)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Proto", "https")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cs := res.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie behind a TLS proxy: %+v; want Secure", cs)
	}

	// Signed in, a state change still needs the Origin and a JSON body.
	c.origin = "http://evil.example"
	if status, _ := c.do("POST", "/api/sessions/kill", map[string]string{"user": "a", "game": "b"}); status != http.StatusForbidden {
		t.Errorf("kill from another origin: HTTP %d, want 403", status)
	}
	c.origin = ""
	if status, _ := c.do("DELETE", "/api/games/demo", map[string]string{}); status != http.StatusForbidden {
		t.Errorf("remove without an Origin: HTTP %d, want 403", status)
	}
	c.origin = s.consoleURL
	req, _ = http.NewRequest("POST", s.consoleURL+"/api/sessions/kill", strings.NewReader("user=a&game=b"))
	req.Header.Set("Origin", s.consoleURL)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("kill as a form post: HTTP %d, want 403", res.StatusCode)
	}
	// The same request done right reaches the handler (no such session).
	if status, body := c.do("POST", "/api/sessions/kill", map[string]string{"user": "a", "game": "b"}); status != http.StatusNotFound {
		t.Errorf("kill of a session that does not run: HTTP %d %s, want 404", status, body)
	}

	// Every page and asset is served under the player client's CSP.
	for _, path := range []string{"/", "/assets/console.js", "/assets/player/ansi.js", "/api/me"} {
		req, _ := http.NewRequest("GET", s.consoleURL+path, nil)
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if csp := res.Header.Get("Content-Security-Policy"); csp != web.ContentSecurityPolicy || res.Header.Get("X-Frame-Options") != "DENY" ||
			res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: HTTP %d, headers %v; want the player client's (web.SecurityHeaders)", path, res.StatusCode, res.Header)
		}
	}

	// Sign-out forgets the cookie.
	c.must(http.StatusNoContent, "POST", "/api/logout", map[string]string{}, nil)
	if status, _ := c.do("GET", "/api/me", nil); status != http.StatusUnauthorized {
		t.Errorf("after sign-out: HTTP %d, want 401", status)
	}
}

func TestSessionsTranscriptAndKill(t *testing.T) {
	s := startStack(t, true)
	c := newClient(t, s.consoleURL)
	c.login(operatorToken(t, "olga"))

	p := dialPlayer(t, s.edgeAddr, "alice", "demo")
	p.signIn("Alice", "sekrit-pass")
	p.input("say hello there")
	p.text("You say: hello there")

	var list []map[string]any
	eventually(t, "alice/demo listed with a viewer", func() bool {
		c.must(http.StatusOK, "GET", "/api/sessions", nil, &list)
		return len(list) == 1 && list[0]["viewers"] == 1.0
	})
	// The CLI's keys, the same spelling (internal/ops builds both).
	got := list[0]
	for _, k := range []string{"user", "game", "state", "viewers", "worker", "session_id", "fence", "started"} {
		if _, ok := got[k]; !ok {
			t.Errorf("session %v lacks %q", got, k)
		}
	}
	if got["user"] != "alice" || got["game"] != "demo" || got["state"] != "connected" || got["worker"] == "" {
		t.Errorf("session = %v", got)
	}

	var show ops.SessionShow
	c.must(http.StatusOK, "GET", "/api/session"+query("user", "alice", "game", "demo"), nil, &show)
	if !show.Running || show.Lease == nil || show.Lease.Owner != got["worker"] {
		t.Errorf("session show = %+v", show)
	}

	// The transcript: game text, the lines typed, the password hidden.
	var tr struct {
		Entries []ops.Output `json:"entries"`
		Next    string       `json:"next"`
		More    bool         `json:"more"`
	}
	eventually(t, "the transcript holds the say", func() bool {
		c.must(http.StatusOK, "GET", "/api/transcript"+query("user", "alice", "game", "demo"), nil, &tr)
		for _, e := range tr.Entries {
			if e.Kind == "input" && e.Text == "say hello there" {
				return true
			}
		}
		return false
	})
	var text strings.Builder
	var inputs []string
	redacted := 0
	for _, e := range tr.Entries {
		switch {
		case e.Kind == "text":
			text.WriteString(e.Text)
		case e.Kind == "input" && e.Redacted:
			redacted++
		case e.Kind == "input":
			inputs = append(inputs, e.Text)
		}
	}
	if !strings.Contains(text.String(), "What is your name?") || redacted != 1 || strings.Join(inputs, "|") != "Alice|say hello there" {
		t.Errorf("transcript: inputs %q, %d redacted, text %q", inputs, redacted, text.String())
	}
	raw, _ := json.Marshal(tr)
	if strings.Contains(string(raw), "sekrit") {
		t.Error("the transcript shows the password")
	}
	// Paging on from next returns nothing new (yet).
	var rest struct{ Entries []ops.Output }
	c.must(http.StatusOK, "GET", "/api/transcript"+query("user", "alice", "game", "demo", "after", tr.Next), nil, &rest)
	for _, e := range rest.Entries {
		if e.ID <= tr.Next && store.CompareIDs(e.ID, tr.Next) <= 0 {
			t.Errorf("page after %s holds %s", tr.Next, e.ID)
		}
	}

	// Kill: the player is told, and the log says who did it.
	var killed struct {
		ControlID   string `json:"control_id"`
		Correlation string `json:"correlation"`
	}
	c.must(http.StatusOK, "POST", "/api/sessions/kill", map[string]string{"user": "alice", "game": "demo", "reason": "maintenance at noon"}, &killed)
	f := p.until(func(f frame) bool { return f.Type == "status" && strings.Contains(f.Message, "maintenance at noon") })
	t.Logf("the player was told: %+v", f)

	var evs struct{ Events []ops.Event }
	c.must(http.StatusOK, "GET", "/api/events"+query("type", "operator.session_killed"), nil, &evs)
	if len(evs.Events) != 1 || evs.Events[0].Subject != "alice/demo" || evs.Events[0].Correlation != killed.Correlation ||
		!strings.Contains(string(evs.Events[0].Data), `"operator":"olga"`) {
		t.Errorf("kill events = %+v", evs.Events)
	}
	// Filters: by session and by correlation.
	c.must(http.StatusOK, "GET", "/api/events"+query("correlation", killed.Correlation), nil, &evs)
	if len(evs.Events) == 0 {
		t.Error("no event under the kill's correlation id")
	}
	for _, e := range evs.Events {
		if e.Correlation != killed.Correlation {
			t.Errorf("correlation filter let %+v through", e)
		}
	}
	c.must(http.StatusOK, "GET", "/api/events"+query("user", "alice", "game", "demo", "type", "session"), nil, &evs)
	if len(evs.Events) == 0 {
		t.Error("no session events for alice/demo")
	}
	for _, e := range evs.Events {
		if e.Subject != "alice/demo" || !strings.HasPrefix(e.Type, "trellis.session.") {
			t.Errorf("session filter let %+v through", e)
		}
	}
	// Killing it again: nothing runs.
	eventually(t, "the session ended", func() bool {
		status, _ := c.do("POST", "/api/sessions/kill", map[string]string{"user": "alice", "game": "demo"})
		return status == http.StatusNotFound
	})
}

func TestGamesAddEditRemoveImport(t *testing.T) {
	s := startStack(t, true)
	c := newClient(t, s.consoleURL)
	c.login(operatorToken(t, "olga"))

	var games []map[string]any
	c.must(http.StatusOK, "GET", "/api/games", nil, &games)
	if len(games) != 1 || games[0]["id"] != "demo" {
		t.Fatalf("games = %v", games)
	}
	for _, k := range []string{"id", "name", "description", "host", "port", "tls", "tls_insecure", "charset", "mnes", "password_prompt", "keep_controls"} {
		if _, ok := games[0][k]; !ok {
			t.Errorf("game %v lacks %q", games[0], k)
		}
	}
	g := ops.Game{ID: "other", Name: "Other", Host: "127.0.0.1", Port: 4100}
	c.must(http.StatusCreated, "POST", "/api/games", g, nil)
	c.must(http.StatusConflict, "POST", "/api/games", g, nil)
	bad := map[string]any{"id": "x", "name": "X", "host": "127.0.0.1", "port": 1, "tls-insecure": true}
	if status, body := c.do("POST", "/api/games", bad); status != http.StatusBadRequest || !strings.Contains(string(body), "tls-insecure") {
		t.Errorf("add with a misspelt field: HTTP %d %s; want 400 naming it", status, body)
	}
	if status, _ := c.do("POST", "/api/games", ops.Game{ID: "Bad Id", Name: "X", Host: "h", Port: 1}); status != http.StatusBadRequest {
		t.Errorf("add with a bad id: HTTP %d, want 400", status)
	}
	// A game at Trellis's own Redis is refused, as by `games add`.
	redisHost, redisPort, _ := strings.Cut(s.st.Endpoints()[0], ":")
	port, _ := strconv.Atoi(redisPort)
	if status, body := c.do("POST", "/api/games", ops.Game{ID: "redis", Name: "R", Host: redisHost, Port: port}); status != http.StatusBadRequest ||
		!strings.Contains(string(body), "Trellis's own Redis") {
		t.Errorf("add a game at Trellis's Redis: HTTP %d %s; want 400", status, body)
	}
	g.Name = "Other, renamed"
	var ch struct{ Stopped int }
	c.must(http.StatusOK, "PUT", "/api/games/other", g, &ch)
	c.must(http.StatusBadRequest, "PUT", "/api/games/demo", g, nil) // ids differ
	c.must(http.StatusNotFound, "PUT", "/api/games/nope", ops.Game{ID: "nope", Name: "N", Host: "h", Port: 1}, nil)

	// Moving a game stops its sessions, as `games update` does.
	p := dialPlayer(t, s.edgeAddr, "bob", "demo")
	p.text("What is your name?")
	demo, err := s.st.GetGame(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	moved := ops.FromGame(demo)
	moved.Port++
	c.must(http.StatusOK, "PUT", "/api/games/demo", moved, &ch)
	if ch.Stopped != 1 {
		t.Errorf("moving demo stopped %d sessions, want 1", ch.Stopped)
	}
	p.until(func(f frame) bool { return f.Type == "status" && strings.Contains(f.Message, "address changed") })

	c.must(http.StatusOK, "DELETE", "/api/games/other", map[string]string{}, nil)
	c.must(http.StatusNotFound, "DELETE", "/api/games/other", map[string]string{}, nil)

	c.must(http.StatusBadRequest, "POST", "/api/games/import", map[string]string{"file": "- id: a\n  name: A\n  host: h\n  port: 0\n"}, nil)
	var imp struct{ Games []string }
	c.must(http.StatusOK, "POST", "/api/games/import", map[string]string{"file": "- id: a\n  name: A\n  host: 127.0.0.1\n  port: 4200\n- id: b\n  name: B\n  host: 127.0.0.1\n  port: 4201\n"}, &imp)
	if strings.Join(imp.Games, ",") != "a,b" {
		t.Errorf("imported %v", imp.Games)
	}
	c.must(http.StatusOK, "GET", "/api/games", nil, &games)
	if len(games) != 3 {
		t.Errorf("after import: %d games, want 3 (a, b, demo)", len(games))
	}
	var evs struct{ Events []ops.Event }
	c.must(http.StatusOK, "GET", "/api/events"+query("type", "operator.games_changed"), nil, &evs)
	var actions []string
	for _, e := range evs.Events {
		var d struct{ Action, Operator string }
		_ = json.Unmarshal(e.Data, &d)
		if d.Operator != "olga" {
			t.Errorf("event %+v lacks the operator", e)
		}
		actions = append(actions, d.Action)
	}
	if strings.Join(actions, ",") != "import,remove,update,update,add" {
		t.Errorf("registry events (newest first) = %v", actions)
	}
}

func TestLiveEventsFollowTheLog(t *testing.T) {
	// Every stream's goroutines, and the hub's, end with their requests
	// and the console (cleanups run last-registered first: this one last).
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// The shared redis-server's waiter starts with the package's
		// first Redis client, and belongs to the package.
		goleak.VerifyNone(t, leaks, goleak.IgnoreAnyFunction("github.com/trellis-mud/trellis/internal/redistest.launch.func1"))
	})
	s := startStack(t, false)
	c := newClient(t, s.consoleURL)
	c.login(operatorToken(t, "olga"))
	ctx := t.Context()
	old, err := s.st.AppendEvent(ctx, store.NewEvent(store.EvEdgeStarted, "edge/before", store.SessionKey{}, "", nil))
	if err != nil {
		t.Fatal(err)
	}

	live := c.stream("/api/events/live" + query("type", "session", "user", "ann"))
	start := live.next()
	if start.event != "start" || start.data != `"`+old+`"` {
		t.Fatalf("first frame %+v; want start at %s (the last event there was)", start, old)
	}
	// Only what the filter asks for arrives, in order.
	for _, e := range []store.Event{
		store.NewEvent(store.EvSessionStarted, "worker/w1", store.SessionKey{User: "bob", Game: "demo"}, "c1", nil),
		store.NewEvent(store.EvEdgeStopped, "edge/x", store.SessionKey{}, "", nil),
		store.NewEvent(store.EvSessionStarted, "worker/w1", store.SessionKey{User: "ann", Game: "demo"}, "c2", nil),
		store.NewEvent(store.EvSessionEnded, "worker/w1", store.SessionKey{User: "ann", Game: "demo"}, "c3", map[string]string{"reason": "stop"}),
	} {
		if _, err := s.st.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"c2", "c3"} {
		e := live.next()
		var ev ops.Event
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Correlation != want || ev.Subject != "ann/demo" || e.id != ev.ID {
			t.Errorf("live event %+v; want correlation %s for ann/demo", ev, want)
		}
	}
	live.close()

	// The history before the start is the page's to fetch, newest first.
	var page struct {
		Events []ops.Event
		Before string
	}
	c.must(http.StatusOK, "GET", "/api/events"+query("until", old), nil, &page)
	if len(page.Events) == 0 || page.Events[0].ID != old {
		t.Errorf("history until %s starts %+v", old, page.Events)
	}

	// Streams are bounded: past the limit the console says so.
	var streams []*sse
	cfg := defaultConfig(t)
	for range cfg.MaxStreams {
		st := c.stream("/api/events/live")
		if e := st.next(); e.event != "start" {
			t.Fatalf("first frame %+v", e)
		}
		streams = append(streams, st)
	}
	// Open streams hold no Redis connection each (one follower feeds
	// them all), so the rest of the console still answers: more streams
	// than the client's pool has connections must not starve it.
	for _, path := range []string{"/api/sessions", "/api/cluster", "/api/events"} {
		if status, body := c.do("GET", path, nil); status != http.StatusOK {
			t.Errorf("GET %s with %d streams open: HTTP %d %s", path, cfg.MaxStreams, status, body)
		}
	}
	if ps := s.st.Client().PoolStats(); ps.TotalConns > 8 || ps.Timeouts > 0 {
		t.Errorf("with %d streams open the console holds %d Redis connections (%d pool timeouts); want a few, whatever the streams",
			cfg.MaxStreams, ps.TotalConns, ps.Timeouts)
	}
	if status, _ := c.do("GET", "/api/events/live", nil); status != http.StatusServiceUnavailable {
		t.Errorf("stream %d: HTTP %d, want 503", cfg.MaxStreams+1, status)
	}
	for _, st := range streams {
		st.close()
	}
	eventually(t, "a stream slot is free again", func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.consoleURL+"/api/events/live", nil)
		hc := *c.http
		res, err := hc.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

func TestClusterAndControl(t *testing.T) {
	s := startStack(t, true)
	c := newClient(t, s.consoleURL)
	c.login(operatorToken(t, "olga"))
	p := dialPlayer(t, s.edgeAddr, "carol", "demo")
	p.text("What is your name?")

	var cl struct {
		Edges []struct {
			ID      string `json:"id"`
			Healthy bool   `json:"healthy"`
		} `json:"edges"`
		Workers []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			State    string `json:"state"`
			Consumer bool   `json:"consumer"`
			Sessions int    `json:"sessions"`
			Healthy  bool   `json:"healthy"`
		} `json:"workers"`
	}
	eventually(t, "the edge and the worker with its session", func() bool {
		c.must(http.StatusOK, "GET", "/api/cluster", nil, &cl)
		return len(cl.Edges) == 1 && len(cl.Workers) == 1 && cl.Workers[0].Sessions == 1 && cl.Workers[0].Consumer
	})
	if e := cl.Edges[0]; e.ID != "console-edge" || !e.Healthy {
		t.Errorf("edge %+v", e)
	}
	if w := cl.Workers[0]; w.Name != "console-worker" || w.ID == "" || w.State != "started" || !w.Healthy {
		t.Errorf("worker %+v", w)
	}

	var lag map[string]any
	c.must(http.StatusOK, "GET", "/api/control", nil, &lag)
	for _, k := range []string{"length", "lag", "pending", "dead_letters", "consumers", "dead_letter_entries"} {
		if _, ok := lag[k]; !ok {
			t.Errorf("control %v lacks %q (the keys of `ops lag -o json`)", lag, k)
		}
	}
	if cs, _ := lag["consumers"].([]any); len(cs) != 1 {
		t.Errorf("consumers = %v", lag["consumers"])
	}
}

// A live stream ends when the token that opened it expires, and the
// cookie stops working then too.
func TestLiveStreamEndsWithTheSignIn(t *testing.T) {
	s := startStack(t, false)
	c := newClient(t, s.consoleURL)
	tok, err := auth.MintOperator(secret, "olga", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.login(tok)
	live := c.stream("/api/events/live")
	if e := live.next(); e.event != "start" {
		t.Fatalf("first frame %+v", e)
	}
	live.ended()
	if status, _ := c.do("GET", "/api/me", nil); status != http.StatusUnauthorized {
		t.Errorf("after the token expired: HTTP %d, want 401", status)
	}
}

// TestGameFormCoversEveryField: the console's edit form builds the game it
// saves from its fields, so a registry field it does not know would be
// wiped by every edit (vitals, which the form does not show, is carried
// over from the game as loaded).
func TestGameFormCoversEveryField(t *testing.T) {
	js, err := os.ReadFile("static/games.js")
	if err != nil {
		t.Fatal(err)
	}
	listed := regexp.MustCompile(`(?s)const (TEXT_FIELDS|FLAGS) = \[(.*?)\];`).FindAllStringSubmatch(string(js), -1)
	fields := map[string]bool{"port": true, "vitals": true}
	for _, m := range listed {
		for _, q := range regexp.MustCompile(`'([a-z0-9_]+)'`).FindAllStringSubmatch(m[2], -1) {
			fields[q[1]] = true
		}
	}
	if !strings.Contains(string(js), "{ ...this.original }") {
		t.Error("games.js no longer starts an edit from the game as loaded: fields the form lacks would be wiped")
	}
	typ := reflect.TypeFor[ops.Game]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !fields[name] {
			t.Errorf("registry field %q is not in the console's game form (static/games.js TEXT_FIELDS or FLAGS)", name)
		}
	}
}
