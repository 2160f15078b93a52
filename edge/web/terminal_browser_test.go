package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/browsertest"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

// scriptGame is a TCP game that writes scripted bytes to its one player:
// the first part at once, each next part when the test calls step. It
// ignores what the worker sends (negotiation, typed lines).
type scriptGame struct {
	addr  string
	steps chan struct{}
}

func startScriptGame(t *testing.T, parts ...string) *scriptGame {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &scriptGame{addr: ln.Addr().String(), steps: make(chan struct{})}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return // the listener was closed: the test is over
		}
		defer c.Close()
		wg.Go(func() { io.Copy(io.Discard, c) }) // ends when c is closed
		for i, part := range parts {
			if i > 0 {
				select {
				case <-g.steps:
				case <-done:
					return
				}
			}
			if _, err := io.WriteString(c, part); err != nil {
				t.Errorf("game write: %v", err)
				return
			}
		}
		<-done
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return g
}

// step lets the game write its next part.
func (g *scriptGame) step(t *testing.T) {
	t.Helper()
	select {
	case g.steps <- struct{}{}:
	case <-time.After(15 * time.Second):
		t.Fatal("the game did not take the next step (no player connected?)")
	}
}

// startTermStack runs Redis, a worker and an edge on loopback with one game,
// "term", at addr; it returns the edge's URL.
func startTermStack(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(termLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := redistest.New(t, redistest.Options{})
	st := store.New(srv.Client(t))
	host, port, _ := net.SplitHostPort(addr)
	portNum, _ := strconv.Atoi(port)
	if err := st.PutGame(ctx, store.Game{ID: "term", Name: "Line editing", Host: host, Port: portNum}); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Name: "term-worker", AdminListen: "", AllowNetworks: []string{"127.0.0.0/8"}, DrainTimeout: time.Millisecond}, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(termSecret)
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(edge.Config{ID: "term-edge", Listen: "127.0.0.1:0", AdminListen: ""}, v, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	workerDone := make(chan error, 1)
	edgeDone := make(chan error, 1)
	go func() { workerDone <- w.Run(ctx) }()
	go func() { edgeDone <- e.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		for name, ch := range map[string]chan error{"edge": edgeDone, "worker": workerDone} {
			select {
			case err := <-ch:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", name)
			}
		}
	})
	return "http://" + ln.Addr().String()
}

type termLog struct{ t *testing.T }

func (w termLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var termSecret = []byte("term-secret-term-secret-term-sec")

const gameLines = `[...document.querySelectorAll('#output .line:not(.notice)')].map(l => l.textContent)`

// TestLineEditingLinksAndSearchInBrowser: a game that wipes its prompt
// with ESC[G ESC[2K and redraws a line with bare CRs, through worker, Redis
// and edge, renders as a terminal would; a URL in its text opens in a new
// tab with no opener and no referrer, the page staying where it is; the
// scrollback search finds a line far up, and the live pane keeps showing
// what the game prints meanwhile.
func TestLineEditingLinksAndSearchInBrowser(t *testing.T) {
	// Where the link goes: a loopback page that reports how it was opened.
	type visit struct{ referer, opener string }
	visits := make(chan visit, 4)
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/landing":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><title>landing</title><script>fetch('/opened?opener=' + (window.opener === null ? 'null' : 'set'))</script>`)
			visits <- visit{referer: r.Header.Get("Referer"), opener: "?"}
		case "/opened":
			visits <- visit{opener: r.URL.Query().Get("opener")}
		}
	}))
	defer landing.Close()

	const prompt = "[HP:6/6 MP:5/5]:"
	var fill strings.Builder
	for i := range 120 {
		fmt.Fprintf(&fill, "filler line %d\r\n", i)
	}
	game := startScriptGame(t,
		"Line-edit test\r\n"+prompt,
		"\x1b[G\x1b[2K(broadcast) someone: hello\r\n"+fill.String()+
			"Loading 10%\r\x00Loading 55%\rLoading 100%\r\n"+
			"Docs at "+landing.URL+"/landing?from=game, see you.\r\n"+
			"Progress 10%",
		"\rProgress 99%\r\n"+prompt,
		"\x1b[1G\x1b[K(broadcast) later: still here\r\n"+prompt,
	)
	url := startTermStack(t, game.addr)
	tok, err := auth.Mint(termSecret, "tess", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	ctx := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 800, Timeout: 3 * time.Minute})
	defer browsertest.ScreenshotIfFailed(t, ctx, "terminal-failure.png")
	do(t, ctx, "open the play page", chromedp.Navigate(url+"/play/term?token="+tok))
	waitFor(t, ctx, "the prompt", `document.querySelector('#output').textContent.includes('`+prompt+`')`)
	game.step(t)
	waitFor(t, ctx, "the first redraws", `document.querySelector('#output').textContent.includes('Progress 10%')`)
	game.step(t)
	waitFor(t, ctx, "the second prompt", gameLines+`.at(-1) === '`+prompt+`' && `+gameLines+`.includes('Progress 99%')`)

	got := eval[[]string](t, ctx, gameLines)
	want := []string{"Line-edit test", "(broadcast) someone: hello"}
	for i := range 120 {
		want = append(want, fmt.Sprintf("filler line %d", i))
	}
	want = append(want, "Loading 100%", "Docs at "+landing.URL+"/landing?from=game, see you.", "Progress 99%", prompt)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("game lines:\n%q\nwant:\n%q", got, want)
	}

	// The URL is a link, and only the URL.
	const link = `document.querySelector('#output a.link')`
	if got := eval[string](t, ctx, `[...document.querySelectorAll('#output a')].map(a => [a.textContent, a.getAttribute('href'), a.target, a.rel].join(' ')).join('|')`); got != landing.URL+"/landing?from=game "+landing.URL+"/landing?from=game _blank noopener noreferrer" {
		t.Errorf("links in the output: %q", got)
	}
	before := eval[string](t, ctx, `location.href`)
	do(t, ctx, "click the link", chromedp.Evaluate[chromedp.Void](link+`.scrollIntoView()`), chromedp.Click(chromedp.CSS(`#output a.link`)))
	var seen []visit
	for len(seen) < 2 {
		select {
		case v := <-visits:
			seen = append(seen, v)
		case <-time.After(15 * time.Second):
			t.Fatalf("the link's page reported %v, want a visit and how it was opened", seen)
		}
	}
	for _, v := range seen {
		if v.referer != "" {
			t.Errorf("the link sent Referer %q, want none", v.referer)
		}
		if v.opener == "set" {
			t.Error("the opened page can reach window.opener")
		}
	}
	// The link opened a tab in front; the play page's frames (and the
	// polls here) wait for animation frames, which a background tab lacks.
	if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
		t.Fatalf("bring the play page to the front: %v", err)
	}
	if after := eval[string](t, ctx, `location.href`); after != before {
		t.Errorf("the play page navigated to %s", after)
	}

	// Search: Ctrl+F, a query, the newest match marked and scrolled to.
	do(t, ctx, "focus the input", chromedp.Focus(chromedp.CSS("#input")))
	do(t, ctx, "press Ctrl+F", chromedp.KeyEvent("f", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	waitFor(t, ctx, "the search bar", `!document.querySelector('#search').hidden && document.activeElement.id === 'search-field'`)
	do(t, ctx, "type a query", chromedp.SendKeys(chromedp.CSS("#search-field"), "BROADCAST"))
	waitFor(t, ctx, "one match", `document.querySelector('#search-count').textContent === '1 of 1'`)
	if got := eval[string](t, ctx, `[...CSS.highlights.get('search-current')][0].toString()`); got != "broadcast" {
		t.Errorf("current match marks %q, want broadcast", got)
	}
	const matchInView = `(() => { const l = [...document.querySelectorAll('#output .line')].find(l => l.textContent.startsWith('(broadcast) someone')); const o = document.querySelector('#output').getBoundingClientRect(); const r = l.getBoundingClientRect(); return r.top >= o.top && r.bottom <= o.bottom; })()`
	waitFor(t, ctx, "the match in view", matchInView)
	waitFor(t, ctx, "the live pane under the scrolled-back view", `!document.querySelector('#output-live').hidden && document.querySelector('#output-live').textContent.includes('`+prompt+`')`)

	// Two matches once the game says more; Enter steps to the older one.
	game.step(t)
	waitFor(t, ctx, "new output in the live pane", `document.querySelector('#output-live').textContent.includes('(broadcast) later: still here')`)
	if !eval[bool](t, ctx, matchInView) {
		t.Error("new output moved the view off the match")
	}
	if !eval[bool](t, ctx, `!document.querySelector('#more-below').hidden`) {
		t.Error("no 'more below' while new output waits under the view")
	}
	do(t, ctx, "search again", chromedp.SendKeys(chromedp.CSS("#search-field"), kb.Backspace+"T"))
	waitFor(t, ctx, "two matches, the newest current", `document.querySelector('#search-count').textContent === '2 of 2'`)
	do(t, ctx, "Enter: the older match", chromedp.SendKeys(chromedp.CSS("#search-field"), kb.Enter))
	waitFor(t, ctx, "the older match", `document.querySelector('#search-count').textContent === '1 of 2'`)
	waitFor(t, ctx, "the older match in view", matchInView)
	do(t, ctx, "a 1280×800 window", chromedp.EmulateViewport(1280, 800))
	waitFor(t, ctx, "the layout at 1280px", `document.documentElement.clientHeight === 800`)
	browsertest.Screenshot(t, ctx, "terminal-1280x800.png")
	do(t, ctx, "a phone-sized window", chromedp.EmulateViewport(390, 844))
	waitFor(t, ctx, "the layout at 390px", `document.documentElement.clientWidth === 390`)
	do(t, ctx, "Enter: the older match again", chromedp.SendKeys(chromedp.CSS("#search-field"), kb.Enter))
	waitFor(t, ctx, "wrapped to the newest", `document.querySelector('#search-count').textContent === '2 of 2'`)
	browsertest.Screenshot(t, ctx, "terminal-390x844.png")
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %d px wide at 390 px: something overflows", w)
	}

	// Escape closes the search and clears its marks; the jump back to the
	// bottom hides the live pane.
	do(t, ctx, "Escape", chromedp.SendKeys(chromedp.CSS("#search-field"), kb.Escape))
	waitFor(t, ctx, "the search closed", `document.querySelector('#search').hidden && !CSS.highlights.has('search-current')`)
	do(t, ctx, "scroll to the bottom", chromedp.Evaluate[chromedp.Void](`document.querySelector('#output').scrollTop = 1e9`))
	waitFor(t, ctx, "the live pane hidden", `document.querySelector('#output-live').hidden`)
}

// TestCommandLinkInBrowser: an OSC 7701 command link, as the worker's MXP
// decoder writes it into the output, is a button; clicking it sends the
// command as typed; one with several commands opens a menu used from the
// keyboard; a prompt link fills the input box instead.
func TestCommandLinkInBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1000, Height: 700})
	defer browsertest.ScreenshotIfFailed(t, ctx, "command-link-failure.png")
	e := newScriptedEdge(t)
	do(t, ctx, "open the play page", chromedp.Navigate(e.srv.URL+"/play/demo?token=tok-1"))
	c := e.accept(t)
	read(t, c, "hello")
	osc := func(cmd map[string]any, text string) string {
		j, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return "\x1b]7701;" + string(j) + "\x1b\\" + text + "\x1b]7701;\x1b\\"
	}
	text := "Exits: " + osc(map[string]any{"cmds": []string{"north"}, "hints": []string{"go north"}}, "north") +
		". A " + osc(map[string]any{"cmds": []string{"look sign", "read sign"}, "hints": []string{"look at it", "read it"}}, "\x1b[33msign\x1b[0m") +
		" and a " + osc(map[string]any{"cmds": []string{"say "}, "prompt": true}, "guard") + ".\n"
	f, err := json.Marshal(map[string]any{"type": "output", "id": "2-0", "text": text, "prompt": false})
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, `{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":false}`, string(f))
	waitFor(t, ctx, "three command links", `document.querySelectorAll('#output button.cmd-link').length === 3`)
	if got := eval[string](t, ctx, `document.querySelector('#output .line').textContent`); got != "Exits: north. A sign and a guard." {
		t.Errorf("line text %q", got)
	}

	do(t, ctx, "click north", chromedp.Click(chromedp.CSS(`#output button.cmd-link[title="go north"]`)))
	if f := read(t, c, "input"); f["text"] != "north" {
		t.Fatalf("frame %v, want input north", f)
	}

	// The menu, by keyboard: focus the link, Enter, ArrowDown, Enter.
	do(t, ctx, "focus the sign", chromedp.Focus(chromedp.CSS(`#output button.cmd-link[aria-haspopup="menu"]`)))
	do(t, ctx, "open its menu", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "the menu, focused", `document.activeElement?.getAttribute('role') === 'menuitem' && document.activeElement.textContent === 'look at it'`)
	do(t, ctx, "ArrowDown", chromedp.KeyEvent(kb.ArrowDown))
	waitFor(t, ctx, "the second item", `document.activeElement?.textContent === 'read it'`)
	do(t, ctx, "choose it", chromedp.KeyEvent(kb.Enter))
	if f := read(t, c, "input"); f["text"] != "read sign" {
		t.Fatalf("frame %v, want input read sign", f)
	}
	waitFor(t, ctx, "the menu gone", `document.querySelector('.cmd-menu') === null`)

	do(t, ctx, "click the guard", chromedp.Click(chromedp.CSS(`#output button.cmd-link[title="say "]`)))
	waitFor(t, ctx, "the command in the input box", `document.querySelector('#input').value === 'say ' && document.activeElement.id === 'input'`)
}
