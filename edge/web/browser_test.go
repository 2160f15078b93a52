package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/edge/web"
	"github.com/trellis-mud/trellis/internal/browsertest"
)

// scriptedEdge serves the client the way the edge does (play.html for
// /play/<game>, the tree under /static/, /api/games) and hands every
// WebSocket to the test, which plays the edge's side of the protocol by hand.
type scriptedEdge struct {
	srv     *httptest.Server
	sockets chan *websocket.Conn
}

func newScriptedEdge(t *testing.T) *scriptedEdge {
	t.Helper()
	e := &scriptedEdge{sockets: make(chan *websocket.Conn, 8)}
	upgrader := websocket.Upgrader{} // same origin only, as the edge
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	mux.HandleFunc("GET /play/{game}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web.Static(), "play.html")
	})
	mux.HandleFunc("GET /api/games", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":"demo","name":"Trellis Demo","description":"<i>A demo</i>","players":3},{"id":"quiet","name":"Quiet","players":null}]`)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the request
		}
		e.sockets <- c // the test owns and closes it
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

// accept returns the next WebSocket the page opened.
func (e *scriptedEdge) accept(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-e.sockets:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("the page opened no WebSocket")
		return nil
	}
}

type frame map[string]any

// read returns the next frame of type want, skipping resize frames (the page
// sends one whenever its layout settles, at a time the test does not
// control) and, unless want is msdp, the MSDP REPORT the page sends after
// a welcome (TestMSDPGaugeInBrowser checks those with readOnly).
func read(t *testing.T, c *websocket.Conn, want string) frame {
	t.Helper()
	return readSkipping(t, c, want, "resize", "msdp")
}

// readOnly is read skipping resize frames only.
func readOnly(t *testing.T, c *websocket.Conn, want string) frame {
	t.Helper()
	return readSkipping(t, c, want, "resize")
}

func readSkipping(t *testing.T, c *websocket.Conn, want string, skip ...string) frame {
	t.Helper()
	for range 20 {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for a %q frame: %v", want, err)
		}
		if f["type"] == want {
			return f
		}
		if !slices.Contains(skip, fmt.Sprint(f["type"])) {
			t.Fatalf("got frame %v, want a %q frame", f, want)
		}
	}
	t.Fatalf("no %q frame among 20", want)
	return nil
}

func send(t *testing.T, c *websocket.Conn, frames ...string) {
	t.Helper()
	for _, f := range frames {
		if !json.Valid([]byte(f)) {
			t.Fatalf("test frame is not JSON: %s", f)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatalf("send %s: %v", f, err)
		}
	}
}

func closeWith(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	msg := websocket.FormatCloseMessage(code, "test")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("close with %d: %v", code, err)
	}
}

// waitFor polls a JavaScript expression until it is true.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#status').textContent + ' | ' + document.querySelector('#output').textContent.slice(-300)`))
		t.Fatalf("waiting for %s (%s): %v\npage status and output tail: %s", what, expr, err, got)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestPlayPageInBrowser drives the real client in a real browser against a
// scripted edge: hello, rendering, input echo, password mode, history,
// errors, reconnect with resume, reload with resume, and a fatal close.
func TestPlayPageInBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1000, Height: 700}) // the size the layout checks assume
	defer browsertest.ScreenshotIfFailed(t, ctx, "web-play-failure.png")
	edge := newScriptedEdge(t)

	do(t, ctx, "open the play page", chromedp.Navigate(edge.srv.URL+"/play/demo?token=tok-1"))
	c1 := edge.accept(t)
	hello := read(t, c1, "hello")
	if hello["game"] != "demo" || hello["token"] != "tok-1" || hello["resume"] != "" {
		t.Fatalf("first hello = %v, want game demo, token tok-1, no resume", hello)
	}
	cols, _ := hello["cols"].(float64)
	rows, _ := hello["rows"].(float64)
	if cols < 20 || rows < 5 {
		t.Errorf("hello size %vx%v, want a measured size of at least 20x5", cols, rows)
	}
	waitFor(t, ctx, "the token to leave the address bar", `location.search === ''`)

	send(t, c1,
		`{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":false}`,
		`{"type":"status","id":"1-0","state":"connected","message":""}`,
		`{"type":"output","id":"2-0","text":"\u001b[31mred\u001b[0m <b>not bold</b> \u001b[38;5;196mX\u001b[0m\u001b[A\n","prompt":false}`,
		`{"type":"output","id":"3-0","text":"> ","prompt":true}`,
		`{"type":"gmcp","id":"4-0","package":"Char.Vitals","data":{"hp":50,"maxhp":100,"mp":"7","maxmp":"10"}}`,
	)
	waitFor(t, ctx, "status connected", `document.querySelector('#status').dataset.state === 'connected'`)
	waitFor(t, ctx, "red text", `document.querySelector('#output span.fg-1')?.textContent === 'red'`)
	if !eval[bool](t, ctx, `document.querySelector('#output b') === null && document.querySelector('#output').textContent.includes('<b>not bold</b>')`) {
		t.Error("game text that looks like HTML was not shown as text")
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll('#output span')].find(s => s.textContent === 'X')?.style.color ?? ''`); got != "rgb(255, 0, 0)" {
		t.Errorf("256-colour span colour = %q, want rgb(255, 0, 0)", got)
	}
	waitFor(t, ctx, "vitals gauges", `document.querySelectorAll('.vitals .gauge').length === 2 && !document.querySelector('.vitals').hidden`)
	if got := eval[string](t, ctx, `document.querySelector('.vitals').textContent`); !strings.Contains(got, "50/100") || !strings.Contains(got, "7/10") {
		t.Errorf("vitals text = %q, want 50/100 and 7/10", got)
	}

	// Input goes to the edge and shows only when the edge echoes it.
	do(t, ctx, "type look", chromedp.SendKeys("#input", "look"+kb.Enter))
	if f := read(t, c1, "input"); f["text"] != "look" {
		t.Fatalf("input frame = %v, want text look", f)
	}
	waitFor(t, ctx, "the input box to clear", `document.querySelector('#input').value === ''`)
	if eval[bool](t, ctx, `document.querySelector('#output').textContent.includes('look')`) {
		t.Error("the client echoed input locally; it must wait for the edge's echo")
	}
	send(t, c1, `{"type":"input","id":"5-0","text":"look"}`)
	waitFor(t, ctx, "the echoed line after the prompt",
		`[...document.querySelectorAll('#output .line')].some(l => l.textContent === '> look' && l.querySelector('.input-echo'))`)

	// Password mode: masked field, nothing in history or output.
	send(t, c1, `{"type":"echo","id":"6-0","server":true}`)
	waitFor(t, ctx, "a masked input", `document.querySelector('#input').type === 'password'`)
	do(t, ctx, "type a password", chromedp.SendKeys("#input", "hunter2"+kb.Enter))
	if f := read(t, c1, "input"); f["text"] != "hunter2" {
		t.Fatalf("input frame = %v, want text hunter2", f)
	}
	send(t, c1,
		`{"type":"input","id":"7-0","redacted":true}`,
		`{"type":"echo","id":"8-0","server":false}`,
	)
	waitFor(t, ctx, "an unmasked input", `document.querySelector('#input').type === 'text'`)
	if got := eval[string](t, ctx, `JSON.stringify(localStorage) + document.querySelector('#output').textContent`); strings.Contains(got, "hunter2") {
		t.Error("the password reached localStorage or the output")
	}

	// A line the edge could not deliver comes back to the input box.
	do(t, ctx, "type north", chromedp.SendKeys("#input", "north"+kb.Enter))
	if f := read(t, c1, "input"); f["text"] != "north" {
		t.Fatalf("input frame = %v, want text north", f)
	}
	send(t, c1, `{"type":"error","code":"no_session","message":"The game is not connected right now."}`)
	waitFor(t, ctx, "the line back in the box", `document.querySelector('#input').value === 'north'`)
	waitFor(t, ctx, "the error shown", `!document.querySelector('#notice').hidden && document.querySelector('#notice').textContent.includes('not connected')`)

	// Lines lost with a worker that stopped: told in the output, where it
	// happened; the box keeps what it has, and the page goes on.
	send(t, c1, `{"type":"error","code":"input_lost","message":"2 lines you typed did not reach the game: the server holding it stopped. Type them again."}`)
	waitFor(t, ctx, "the loss in the output", `document.querySelector('#output .notice-lost')?.textContent.includes('2 lines you typed did not reach the game')`)
	if got := eval[string](t, ctx, `document.querySelector('#input').value`); got != "north" {
		t.Errorf("input box = %q after input_lost, want north left alone", got)
	}

	// History: Up walks back over north and look, never the password.
	do(t, ctx, "clear the box", chromedp.Evaluate[chromedp.Void](`document.querySelector('#input').value = ''`))
	do(t, ctx, "press Up", chromedp.SendKeys("#input", kb.ArrowUp))
	waitFor(t, ctx, "north from history", `document.querySelector('#input').value === 'north'`)
	do(t, ctx, "press Up twice", chromedp.SendKeys("#input", kb.ArrowUp+kb.ArrowUp))
	waitFor(t, ctx, "look from history", `document.querySelector('#input').value === 'look'`)
	do(t, ctx, "press Down twice", chromedp.SendKeys("#input", kb.ArrowDown+kb.ArrowDown))
	waitFor(t, ctx, "the empty draft back", `document.querySelector('#input').value === ''`)

	// The edge goes away: the page reconnects and resumes from the last id.
	closeWith(t, c1, websocket.CloseGoingAway)
	c2 := edge.accept(t)
	hello = read(t, c2, "hello")
	if hello["resume"] != "8-0" || hello["token"] != "tok-1" {
		t.Fatalf("hello after reconnect = %v, want resume 8-0 and token tok-1", hello)
	}
	send(t, c2,
		`{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":true}`,
		`{"type":"gap","message":"Some output was lost."}`,
		`{"type":"status","id":"9-0","state":"reconnected","message":"The game connection was re-established."}`,
	)
	waitFor(t, ctx, "status reconnected", `document.querySelector('#status').dataset.state === 'reconnected'`)
	waitFor(t, ctx, "the gap marker", `document.querySelector('#output .notice-gap')?.textContent.includes('Some output was lost')`)

	// A reload resumes too, with the token from session storage.
	do(t, ctx, "reload", chromedp.Reload())
	c3 := edge.accept(t)
	hello = read(t, c3, "hello")
	if hello["resume"] != "9-0" || hello["token"] != "tok-1" {
		t.Fatalf("hello after reload = %v, want resume 9-0 and token tok-1", hello)
	}
	send(t, c3, `{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":true}`)
	waitFor(t, ctx, "the remembered state after reload", `document.querySelector('#status').dataset.state === 'reconnected'`)
	// The output from before the reload is back, drawn from the page's own copy.
	waitFor(t, ctx, "the restored output", `document.querySelector('#output span.fg-1')?.textContent === 'red'`)
	if !eval[bool](t, ctx, `[...document.querySelectorAll('#output .line')].some(l => l.textContent === '> look')`) {
		t.Error("the typed line was not restored after the reload")
	}
	if eval[bool](t, ctx, `JSON.stringify(sessionStorage).includes('hunter2') || document.querySelector('#output').textContent.includes('hunter2')`) {
		t.Error("the password reached sessionStorage or the restored output")
	}
	if !eval[bool](t, ctx, `document.querySelector('#input').type === 'text'`) {
		t.Error("the input is masked after the reload, though the game stopped echoing before it")
	}

	// A smaller window is reported to the game as a resize.
	do(t, ctx, "shrink the window", chromedp.EmulateViewport(500, 400))
	var resized frame
	for range 20 {
		c3.SetReadDeadline(time.Now().Add(15 * time.Second))
		if err := c3.ReadJSON(&resized); err != nil {
			t.Fatalf("waiting for a resize frame: %v", err)
		}
		if resized["type"] == "resize" && resized["cols"].(float64) < cols {
			break
		}
	}
	if resized["type"] != "resize" || resized["cols"].(float64) >= cols || resized["rows"].(float64) < 5 {
		t.Errorf("after shrinking the window got %v, want a resize below %v columns", resized, cols)
	}

	// The edge cannot place the resume point (a gap with reset): the page
	// forgets it, so the next hello resumes from what came after, even
	// though those ids sort before the old point.
	closeWith(t, c3, websocket.CloseGoingAway)
	c4 := edge.accept(t)
	if hello = read(t, c4, "hello"); hello["resume"] != "9-0" {
		t.Fatalf("hello = %v, want resume 9-0", hello)
	}
	send(t, c4,
		`{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":false}`,
		`{"type":"gap","message":"your saved place in the output was not found; what follows is the kept output from its start","reset":true}`,
		`{"type":"output","id":"3-0","text":"from the start\n","prompt":false}`,
	)
	waitFor(t, ctx, "the backlog after the reset", `document.querySelector('#output').textContent.includes('from the start')`)
	closeWith(t, c4, websocket.CloseGoingAway)
	c5 := edge.accept(t)
	if hello = read(t, c5, "hello"); hello["resume"] != "3-0" {
		t.Fatalf("hello after a reset gap = %v, want resume 3-0", hello)
	}

	// A fatal close stops the client and says why.
	closeWith(t, c5, 4004)
	waitFor(t, ctx, "status closed", `document.querySelector('#status').dataset.state === 'closed'`)
	waitFor(t, ctx, "the reason shown", `document.querySelector('#notice').textContent.includes('no such game')`)
}

func TestGamesPageInBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1000, Height: 700}) // the size the layout checks assume
	defer browsertest.ScreenshotIfFailed(t, ctx, "web-games-failure.png")
	edge := newScriptedEdge(t)
	do(t, ctx, "open the games page", chromedp.Navigate(edge.srv.URL+"/static/index.html"))
	waitFor(t, ctx, "the game list", `document.querySelectorAll('#games li').length === 2`)
	link := eval[string](t, ctx, `document.querySelector('#games a').getAttribute('href')`)
	if link != "/play/demo" {
		t.Errorf("first game links to %q, want /play/demo", link)
	}
	text := eval[string](t, ctx, `document.querySelector('#games').textContent`)
	for _, want := range []string{"Trellis Demo", "3 players", "<i>A demo</i>", "Quiet"} {
		if !strings.Contains(text, want) {
			t.Errorf("games page text %q lacks %q", text, want)
		}
	}
	if eval[bool](t, ctx, `document.querySelector('#games i') !== null`) {
		t.Error("a game description was parsed as HTML")
	}
}

// TestMSDPGaugeInBrowser: the page asks for the gauge variables with an
// MSDP REPORT once the game speaks after a welcome (and again after a
// reconnection), draws a gauge from HEALTH / HEALTH_MAX next to the GMCP
// ones, and keeps tables out of the gauges.
func TestMSDPGaugeInBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1000, Height: 700})
	edge := newScriptedEdge(t)

	do(t, ctx, "open the play page", chromedp.Navigate(edge.srv.URL+"/play/demo?token=tok-1"))
	c := edge.accept(t)
	read(t, c, "hello")
	send(t, c,
		`{"type":"welcome","user":"guest-1a2b","game":"demo","resumed":false}`,
		`{"type":"status","id":"1-0","state":"connected","message":""}`,
		`{"type":"output","id":"2-0","text":"Welcome\n","prompt":false}`,
	)
	report := readOnly(t, c, "msdp")
	if report["var"] != "REPORT" || fmt.Sprint(report["val"]) != "[HEALTH HEALTH_MAX MANA MANA_MAX MOVEMENT MOVEMENT_MAX]" {
		t.Fatalf("msdp frame %v, want a REPORT of the gauge variables", report)
	}
	send(t, c,
		`{"type":"gmcp","id":"3-0","package":"Char.Vitals","data":{"hp":50,"maxhp":100}}`,
		`{"type":"msdp","id":"4-0","var":"HEALTH","val":"93"}`,
		`{"type":"msdp","id":"4-1","var":"HEALTH_MAX","val":"100"}`,
		`{"type":"msdp","id":"4-2","var":"ROOM","val":{"VNUM":"6008","NAME":"<b>Temple</b>"}}`,
	)
	const health = `document.querySelector('.vitals .gauge[data-name="HEALTH"]')`
	waitFor(t, ctx, "the MSDP gauge", health+`?.textContent === 'HEALTH93/100'`)
	if got := eval[string](t, ctx, health+`.className + ' ' + `+health+`.getAttribute('aria-valuenow')`); got != "gauge gauge-hp 93" {
		t.Errorf("MSDP gauge class and value %q, want gauge gauge-hp 93", got)
	}
	if got := eval[int](t, ctx, `document.querySelectorAll('.vitals .gauge').length`); got != 2 {
		t.Errorf("%d gauges, want the GMCP hp and the MSDP HEALTH", got)
	}
	if eval[bool](t, ctx, `document.querySelector('.vitals b') !== null`) {
		t.Error("an MSDP value became markup")
	}
	send(t, c, `{"type":"msdp","id":"5-0","var":"HEALTH","val":"40"}`)
	waitFor(t, ctx, "the MSDP gauge to follow", health+`.getAttribute('aria-valuenow') === '40'`)

	// A new game connection forgets the REPORT: it is sent again once the
	// game speaks, and only once.
	send(t, c,
		`{"type":"status","id":"6-0","state":"reconnected","message":""}`,
		`{"type":"output","id":"7-0","text":"Welcome back\n","prompt":false}`,
		`{"type":"output","id":"7-1","text":"> ","prompt":true}`,
	)
	if f := readOnly(t, c, "msdp"); f["var"] != "REPORT" {
		t.Fatalf("msdp frame after reconnecting %v, want REPORT", f)
	}
	do(t, ctx, "type look", chromedp.SendKeys("#input", "look"+kb.Enter))
	if f := readOnly(t, c, "input"); f["text"] != "look" {
		t.Fatalf("frame %v, want the input (one REPORT per connection)", f)
	}
}
