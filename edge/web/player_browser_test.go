package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/edge/web"
	"github.com/trellis-mud/trellis/internal/browsertest"
)

// playerGames is the /api/games of the player tests: a plain game, a
// character-mode one and one whose vitals need the registry's mapping.
const playerGames = `[
 {"id":"demo","name":"Trellis Demo","players":3},
 {"id":"charmode","name":"Char Mode","players":null,"echo":"character"},
 {"id":"mapped","name":"Mapped","players":null,
  "vitals":[{"label":"Body","package":"Char.Status","value":"body.now","max":"body.top","kind":"hp"},
            {"label":"Focus","package":"msdp","value":"FOCUS","max":"100"}]}
]`

// newPlayerEdge is newScriptedEdge with the player tests' games and a
// settings endpoint keeping documents by bearer token in memory, with the
// edge's contract (edge/settings.go): 401 without a token, {} when none.
func newPlayerEdge(t *testing.T) *scriptedEdge {
	t.Helper()
	e := &scriptedEdge{sockets: make(chan *websocket.Conn, 8)}
	var mu sync.Mutex
	docs := map[string]string{}
	upgrader := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web.Static(), "index.html")
	})
	mux.HandleFunc("GET /play/{game}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("game") == "nope" { // as the edge answers a game it does not know
			b, _ := fs.ReadFile(web.Static(), "unknown.html")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write(b)
			return
		}
		http.ServeFileFS(w, r, web.Static(), "play.html")
	})
	mux.HandleFunc("GET /api/games", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, playerGames)
	})
	mux.HandleFunc("/api/settings", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			http.Error(w, `{"error":"sign in"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodGet:
			doc, ok := docs[tok]
			if !ok {
				doc = "{}"
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, doc)
		case http.MethodPut:
			b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if !json.Valid(b) {
				http.Error(w, `{"error":"not JSON"}`, http.StatusBadRequest)
				return
			}
			docs[tok] = string(b)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		e.sockets <- c
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		close(e.sockets)
		for c := range e.sockets {
			c.Close()
		}
	})
	return e
}

// openGame opens a play page in ctx, answers the hello and returns the socket.
func openGame(t *testing.T, ctx context.Context, e *scriptedEdge, path string) *websocket.Conn {
	t.Helper()
	do(t, ctx, "open "+path, chromedp.Navigate(e.srv.URL+path))
	c := e.accept(t)
	read(t, c, "hello")
	send(t, c,
		`{"type":"welcome","user":"u1","game":"g","resumed":false}`,
		`{"type":"status","id":"1-0","state":"connected","message":"connected to The Game"}`,
	)
	waitFor(t, ctx, "connected", `document.querySelector('#status').dataset.state === 'connected'`)
	// The game info (echo mode, vitals mapping) arrives with /api/games.
	waitFor(t, ctx, "game info", `document.querySelector('#game-name').textContent !== location.pathname.split('/').pop()`)
	return c
}

func gaugeTexts(t *testing.T, ctx context.Context) string {
	return eval[string](t, ctx, `[...document.querySelectorAll('.vitals .gauge')].map(g => g.dataset.name + '=' + g.querySelector('.gauge-text').textContent).join(' ')`)
}

func TestVitalsShapesInBrowser(t *testing.T) {
	for _, size := range []struct{ w, h int }{{1280, 800}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			// The edge is made first so the browser stops before it: no page
			// reconnects into a closed edge.
			e := newPlayerEdge(t)
			ctx := browsertest.Start(t, browsertest.Options{Width: size.w, Height: size.h})
			defer browsertest.ScreenshotIfFailed(t, ctx, fmt.Sprintf("player-vitals-failure-%d.png", size.w))
			c := openGame(t, ctx, e, "/play/demo")
			if got := eval[string](t, ctx, `document.querySelector('#status').textContent`); got != "Connected to The Game" {
				t.Errorf("status = %q, want %q", got, "Connected to The Game")
			}
			// Shape 1: x / x_max, as in the issue.
			send(t, c, `{"type":"gmcp","id":"2-0","package":"Char.Vitals","data":{"hp":6,"hp_max":6,"sp":5,"sp_max":5}}`)
			waitFor(t, ctx, "hp/hp_max gauges", `document.querySelectorAll('.vitals .gauge').length === 2`)
			if got := gaugeTexts(t, ctx); got != "hp=6/6 sp=5/5" {
				t.Errorf("x/x_max gauges = %q", got)
			}
			// Shape 2: strings, and the maxima in a package of their own.
			send(t, c,
				`{"type":"gmcp","id":"3-0","package":"Char.Vitals","data":{"hp":"1000","mana":"40"}}`,
				`{"type":"gmcp","id":"4-0","package":"Char.MaxStats","data":{"maxhp":"1200","maxmana":"50"}}`,
			)
			waitFor(t, ctx, "split-package gauges", `document.querySelector('.vitals').textContent.includes('1000/1200')`)
			if got := gaugeTexts(t, ctx); !strings.Contains(got, "hp=1000/1200") || !strings.Contains(got, "mana=40/50") {
				t.Errorf("split-package gauges = %q", got)
			}
			// Gauges are even: every bar as wide as the others.
			if !eval[bool](t, ctx, `(() => { const w = [...document.querySelectorAll('.vitals .gauge-bar')].map(b => Math.round(b.getBoundingClientRect().width)); return w.length > 1 && Math.max(...w) - Math.min(...w) <= 2; })()`) {
				t.Errorf("gauge bars are uneven: %s", eval[string](t, ctx, `JSON.stringify([...document.querySelectorAll('.vitals .gauge-bar')].map(b => b.getBoundingClientRect().width))`))
			}
			// Nothing in the header overflows the window.
			if !eval[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth && [...document.querySelectorAll('.bar > *')].every(el => el.getBoundingClientRect().right <= window.innerWidth + 1)`) {
				t.Error("the header overflows the window")
			}
			if !eval[bool](t, ctx, `(() => { const s = document.querySelector('#status'); return s.scrollWidth <= s.clientWidth + 1; })()`) {
				t.Error("the status is cut off")
			}
			browsertest.Screenshot(t, ctx, fmt.Sprintf("player-play-%dx%d.png", size.w, size.h))

			// Shape 3: the registry's mapping, GMCP key paths and MSDP.
			tab := browsertest.NewTab(t, ctx)
			c3 := openGame(t, tab, e, "/play/mapped")
			send(t, c3,
				`{"type":"gmcp","id":"2-0","package":"Char.Status","data":{"body":{"now":"30","top":60}}}`,
				`{"type":"msdp","id":"3-0","var":"FOCUS","val":"70"}`,
			)
			waitFor(t, tab, "mapped gauges", `document.querySelectorAll('.vitals .gauge').length === 2`)
			if got := gaugeTexts(t, tab); got != "Body=30/60 Focus=70/100" {
				t.Errorf("mapped gauges = %q", got)
			}
			if !eval[bool](t, tab, `document.querySelector('.vitals .gauge').classList.contains('gauge-hp')`) {
				t.Error("the mapping's kind did not colour the gauge")
			}

			// The client panel, and a real page for a game that is not there.
			do(t, ctx, "open the client panel", chromedp.Click(`[data-panel="client-panel"]`))
			waitFor(t, ctx, "client panel", `!document.querySelector('#client-panel').hidden`)
			browsertest.Screenshot(t, ctx, fmt.Sprintf("player-client-panel-%dx%d.png", size.w, size.h))
		})
	}
}

func TestEchoModesInBrowser(t *testing.T) {
	// The edge is made first so the browser stops before it: no page
	// reconnects into a closed edge.
	e := newPlayerEdge(t)
	ctx := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 800})
	defer browsertest.ScreenshotIfFailed(t, ctx, "player-echo-failure.png")

	// A password prompt: masked, and the line stays out of the history.
	c := openGame(t, ctx, e, "/play/demo")
	send(t, c, `{"type":"output","id":"2-0","text":"Name: ","prompt":true}`)
	do(t, ctx, "type the name", chromedp.SendKeys("#input", "alice"+kb.Enter))
	read(t, c, "input")
	send(t, c,
		`{"type":"input","id":"3-0","text":"alice"}`,
		`{"type":"output","id":"4-0","text":"\r\nPassword: ","prompt":true}`,
		`{"type":"echo","id":"5-0","server":true}`,
	)
	waitFor(t, ctx, "masked at the password prompt", `document.querySelector('#input').type === 'password'`)
	do(t, ctx, "type the password", chromedp.SendKeys("#input", "hunter2"+kb.Enter))
	if f := read(t, c, "input"); f["text"] != "hunter2" {
		t.Fatalf("password frame = %v", f)
	}
	send(t, c,
		`{"type":"input","id":"6-0","redacted":true}`,
		`{"type":"echo","id":"7-0","server":false}`,
		`{"type":"output","id":"8-0","text":"\r\nWelcome!\r\n> ","prompt":true}`,
	)
	waitFor(t, ctx, "unmasked after the login", `document.querySelector('#input').type === 'text'`)
	do(t, ctx, "walk back the history", chromedp.Focus("#input"), chromedp.KeyEvent(kb.ArrowUp))
	if got := eval[string](t, ctx, `document.querySelector('#input').value`); got != "alice" {
		t.Errorf("history after the password = %q, want alice (the password never recorded)", got)
	}
	if eval[bool](t, ctx, `document.querySelector('#output').textContent.includes('hunter2')`) {
		t.Error("the password shows in the output")
	}

	// A character-mode server (auto): WILL ECHO for good, every line printed back.
	tab := browsertest.NewTab(t, ctx)
	c2 := openGame(t, tab, e, "/play/demo")
	send(t, c2, `{"type":"echo","id":"2-0","server":true}`, `{"type":"output","id":"3-0","text":"> ","prompt":true}`)
	waitFor(t, tab, "masked at first", `document.querySelector('#input').type === 'password'`)
	do(t, tab, "type look", chromedp.SendKeys("#input", "look"+kb.Enter))
	read(t, c2, "input")
	send(t, c2,
		`{"type":"input","id":"4-0","redacted":true}`,
		`{"type":"output","id":"5-0","text":"look\r\nA quiet room.\r\n> ","prompt":true}`,
	)
	waitFor(t, tab, "unmasked once the game printed the line back", `document.querySelector('#input').type === 'text'`)
	do(t, tab, "type north", chromedp.SendKeys("#input", "north"+kb.Enter))
	read(t, c2, "input")
	send(t, c2,
		`{"type":"input","id":"6-0","text":"north"}`,
		`{"type":"output","id":"7-0","text":"north\r\nA road.\r\n> ","prompt":true}`,
	)
	do(t, tab, "walk back the history", chromedp.Focus("#input"), chromedp.KeyEvent(kb.ArrowUp))
	if got := eval[string](t, tab, `document.querySelector('#input').value`); got != "north" {
		t.Errorf("history on a character-mode server = %q, want north", got)
	}
	if got := eval[string](t, tab, `document.querySelector('#input').type`); got != "text" {
		t.Errorf("input type on a character-mode server = %q, want text", got)
	}
	// A password prompt there still masks.
	send(t, c2, `{"type":"output","id":"8-0","text":"\r\nOld password: ","prompt":true}`)
	waitFor(t, tab, "masked at a password prompt in character mode", `document.querySelector('#input').type === 'password'`)

	// The registry says character mode: never masked by echo alone.
	tab3 := browsertest.NewTab(t, ctx)
	c3 := openGame(t, tab3, e, "/play/charmode")
	send(t, c3, `{"type":"echo","id":"2-0","server":true}`, `{"type":"output","id":"3-0","text":"> ","prompt":true}`)
	waitFor(t, tab3, "the echo frame to land", `document.querySelector('#output').textContent.includes('>')`)
	if got := eval[string](t, tab3, `document.querySelector('#input').type`); got != "text" {
		t.Errorf("registry character mode: input type %q, want text", got)
	}
}

// setRules fills the client panel and saves it.
func setRules(t *testing.T, ctx context.Context, aliases, triggers string) {
	t.Helper()
	js, _ := json.Marshal([]string{aliases, triggers})
	do(t, ctx, "open the client panel", chromedp.Click(`[data-panel="client-panel"]`))
	eval[bool](t, ctx, fmt.Sprintf(`(() => { const [a, t] = %s; document.querySelector('#client-aliases').value = a; document.querySelector('#client-triggers').value = t; return true; })()`, js))
	do(t, ctx, "save the rules", chromedp.Click(`#client-form button[type="submit"]`))
}

func TestAliasAndTriggerInBrowser(t *testing.T) {
	// The edge is made first so the browser stops before it: no page
	// reconnects into a closed edge.
	e := newPlayerEdge(t)
	ctx := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 800})
	defer browsertest.ScreenshotIfFailed(t, ctx, "player-alias-failure.png")
	c := openGame(t, ctx, e, "/play/demo")
	setRules(t, ctx, "k = kill $1 with $2\ngo = north;k $1 sword", "highlight /dragon/ red\ngag /^spam/")

	do(t, ctx, "fire the alias", chromedp.SendKeys("#input", "go orc; say a\\;b"+kb.Enter))
	for _, want := range []string{"north", "kill orc with sword", " say a;b"} {
		if f := read(t, c, "input"); f["text"] != want {
			t.Fatalf("input frame = %v, want %q", f, want)
		}
	}
	send(t, c, `{"type":"output","id":"2-0","text":"A red dragon is here.\r\nspam spam spam\r\nA door.\r\n","prompt":false}`)
	waitFor(t, ctx, "the trigger's highlight", `[...document.querySelectorAll('#output span.bg-1')].some(s => s.textContent === 'dragon')`)
	out := eval[string](t, ctx, `document.querySelector('#output').textContent`)
	if strings.Contains(out, "spam") || !strings.Contains(out, "A door.") || !strings.Contains(out, "A red dragon is here.") {
		t.Errorf("output after triggers = %q: want the spam line gagged and the rest kept", out)
	}
	// The keypad sends directions from the number pad.
	eval[bool](t, ctx, `document.querySelector('#input').dispatchEvent(new KeyboardEvent('keydown', {code: 'Numpad8', key: '8', bubbles: true, cancelable: true}))`)
	if f := read(t, c, "input"); f["text"] != "north" {
		t.Fatalf("numpad 8 sent %v, want north", f)
	}
	browsertest.Screenshot(t, ctx, "player-triggers-1280x800.png")
}

// Two browser profiles (a desktop and a phone, say) signed in as the same
// player share their aliases through the edge.
func TestSettingsFollowPlayerInBrowser(t *testing.T) {
	e := newPlayerEdge(t)
	desk := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 800})
	defer browsertest.ScreenshotIfFailed(t, desk, "player-sync-desk-failure.png")
	openGame(t, desk, e, "/play/demo?token=tok-alice")
	setRules(t, desk, "k = kill $1", "")
	waitFor(t, desk, "saved to the account", `document.querySelector('#client-status').textContent === 'Saved to your account.'`)

	phone := browsertest.Start(t, browsertest.Options{Width: 390, Height: 844})
	defer browsertest.ScreenshotIfFailed(t, phone, "player-sync-phone-failure.png")
	c := openGame(t, phone, e, "/play/demo?token=tok-alice")
	waitFor(t, phone, "settings loaded", `document.querySelector('#client-status').textContent === 'Settings loaded from your account.'`)
	if got := eval[string](t, phone, `document.querySelector('#client-aliases').value`); got != "k = kill $1" {
		t.Errorf("aliases on the other profile = %q", got)
	}
	do(t, phone, "fire the synced alias", chromedp.SendKeys("#input", "k rat"+kb.Enter))
	if f := read(t, c, "input"); f["text"] != "kill rat" {
		t.Fatalf("input frame = %v, want kill rat", f)
	}
	// Another player's profile does not see them.
	other := browsertest.NewTab(t, phone)
	do(t, other, "clear the first player's local copy", chromedp.Navigate(e.srv.URL+"/static/style.css"))
	eval[bool](t, other, `(localStorage.clear(), sessionStorage.clear(), true)`)
	openGame(t, other, e, "/play/demo?token=tok-bob")
	waitFor(t, other, "bob's first visit", `document.querySelector('#client-status').textContent !== ''`)
	time.Sleep(0) // the status is set once the GET answered
	if got := eval[string](t, other, `document.querySelector('#client-aliases').value`); got != "" {
		t.Errorf("another player sees aliases %q", got)
	}
}

// The games list and the page for an unknown game, at a desktop's and a
// phone's size.
func TestPlayerScreensInBrowser(t *testing.T) {
	e := newPlayerEdge(t)
	for _, size := range []struct{ w, h int }{{1280, 800}, {390, 844}} {
		ctx := browsertest.Start(t, browsertest.Options{Width: size.w, Height: size.h})
		do(t, ctx, "open the games list", chromedp.Navigate(e.srv.URL+"/"))
		waitFor(t, ctx, "the games", `document.querySelectorAll('#games li').length === 3`)
		badge := eval[string](t, ctx, `document.querySelector('.game-players').textContent + ' | ' + document.querySelector('.game-players').title`)
		if !strings.Contains(badge, "3 players in the game") || !strings.Contains(badge, "not only Trellis") {
			t.Errorf("players badge = %q: want it to say what it counts", badge)
		}
		if !eval[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth`) {
			t.Errorf("%dx%d: the games list overflows", size.w, size.h)
		}
		browsertest.Screenshot(t, ctx, fmt.Sprintf("player-games-%dx%d.png", size.w, size.h))

		do(t, ctx, "open an unknown game", chromedp.Navigate(e.srv.URL+"/play/nope"))
		waitFor(t, ctx, "the unknown-game page", `document.querySelector('#unknown-game') !== null`)
		if got := eval[string](t, ctx, `document.querySelector('main a').getAttribute('href')`); got != "/" {
			t.Errorf("unknown-game page links to %q, want the list", got)
		}
		browsertest.Screenshot(t, ctx, fmt.Sprintf("player-unknown-game-%dx%d.png", size.w, size.h))
	}
}
