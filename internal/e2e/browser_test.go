package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/browsertest"
	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var secret = []byte("e2e-secret-e2e-secret-e2e-secret")

// stack is Redis + demo game + worker + edge, all on loopback.
type stack struct {
	st      *store.Store
	edgeURL string
}

// stackOption changes the demo game's configuration and its registry entry.
type stackOption func(*demogame.Config, *store.Game)

func startStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	tgt := redistest.Isolated(t)
	st := store.New(tgt.Client, store.WithNamespace(tgt.Namespace))

	gameCfg, game := demogame.Config{Logger: logger}, store.Game{ID: "demo", Name: "Trellis Demo"}
	for _, o := range opts {
		o(&gameCfg, &game)
	}
	_, gameAddr, stopGame, err := demogame.Start(ctx, gameCfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(gameAddr)
	game.Host = host
	game.Port, _ = strconv.Atoi(port)
	if err := st.PutGame(ctx, game); err != nil {
		t.Fatal(err)
	}

	w, err := worker.New(worker.Config{Name: "e2e-worker", AdminListen: "", AllowNetworks: []string{"127.0.0.0/8", "::1/128"}}, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(ctx) }()

	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(edge.Config{ID: "e2e-edge", Listen: "127.0.0.1:0"}, v, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	edgeDone := make(chan error, 1)
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
		stopGame()
	})
	return &stack{st: st, edgeURL: "http://" + ln.Addr().String()}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitOutput waits until #output contains text.
func waitOutput(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.querySelector('#output') && document.querySelector('#output').textContent.includes(`+jsString(text)+`)`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// typeLine types a line into #input and presses Enter.
func typeLine(line string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#input`)),
		chromedp.SendKeys(chromedp.CSS(`#input`), line+"\r"),
	)
}

func TestBrowserPlaysReloadsAndSeesColours(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1200, Height: 900, Timeout: 90 * time.Second})
	s := startStack(t)

	tok, err := auth.Mint(secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer browsertest.ScreenshotIfFailed(t, ctx, "browser-failure.png")

	// Log in to the game: name, then the password under a masked field.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.edgeURL+"/play/demo?token="+tok),
		waitOutput("What is your name?"),
		typeLine("Alice"),
		waitOutput("Password:"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#input').type === 'password'`, chromedp.WithPollingTimeout(10*time.Second)),
		typeLine("sekrit"),
		waitOutput("> "),
		typeLine("say hello"),
		waitOutput("You say: hello"),
	)
	if err != nil {
		t.Fatalf("login and say: %v", err)
	}

	// Reload: the earlier output comes back from the transcript, and the
	// game connection is the same one (no name prompt, commands work).
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		waitOutput("You say: hello"),
		typeLine("say again"),
		waitOutput("You say: again"),
	)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#output`)))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text, "What is your name?"); n != 1 {
		t.Fatalf("the name prompt appears %d times after the reload, want 1 (from the transcript): a second login happened", n)
	}
	if strings.Contains(text, "sekrit") {
		t.Fatal("the password is visible in the output")
	}

	// Colours are rendered as styled elements, not as escape codes.
	const colourSpans = `document.querySelectorAll('#output span[class*="fg-"], #output span[style*="color"]').length`
	err = chromedp.Do(ctx,
		typeLine("colors"),
		chromedp.Poll[chromedp.Void](colourSpans+` > 8`, chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		t.Fatalf("colors: %v", err)
	}
	styled, err := chromedp.Run(ctx, chromedp.Evaluate[int](colourSpans))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#output').textContent.includes('\x1b[')`))
	if err != nil {
		t.Fatal(err)
	}
	if raw {
		t.Fatal("raw escape sequences in the output")
	}
	t.Logf("%d styled colour spans", styled)
	browsertest.Screenshot(t, ctx, "browser-colors.png")
}

// The "MSDP-driven gauge", end to end: the demo game offers MSDP,
// the page sends a REPORT, the game's HEALTH / HEALTH_MAX come back through
// worker, Redis and edge, and the gauge follows a fight; after a reload the
// gauge is drawn from the MSDP state the edge replays.
func TestBrowserDrawsAnMSDPGauge(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1200, Height: 900, Timeout: 90 * time.Second})
	s := startStack(t)
	tok, err := auth.Mint(secret, "mira", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(text string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`document.querySelector('.vitals .gauge[data-name="HEALTH"] .gauge-text')?.textContent === `+jsString(text),
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.edgeURL+"/play/demo?token="+tok),
		waitOutput("What is your name?"),
		typeLine("Mira"),
		waitOutput("Password:"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#input').type === 'password'`, chromedp.WithPollingTimeout(10*time.Second)),
		typeLine("pw"),
		waitOutput("> "),
		gauge("100/100"),
		typeLine("fight"),
		gauge("93/100"),
	)
	if err != nil {
		t.Fatalf("login and fight: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		waitOutput("You spar"),
		gauge("93/100"),
		typeLine("fight"),
		gauge("86/100"),
	)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// TestBrowserFollowsAnMXPSendLink: the demo game with MXP on, through the
// real worker (which turns <send> into a command link and <color> into
// SGR) and edge: the page shows a link that, clicked, sends its command,
// and the coloured word in colour; no markup reaches the page.
func TestBrowserFollowsAnMXPSendLink(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1200, Height: 900, Timeout: 90 * time.Second})
	s := startStack(t, func(c *demogame.Config, g *store.Game) { c.MXP, g.MXP = true, true })
	tok, err := auth.Mint(secret, "mxpa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	type linkInfo struct {
		Text   string
		Golden string
		Markup bool
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.edgeURL+"/play/demo?token="+tok),
		waitOutput("What is your name?"),
		typeLine("Mxpa"),
		waitOutput("Password:"),
		typeLine("pw"),
		waitOutput("> "),
		typeLine("look"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#output .cmd-link') !== null`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		t.Fatalf("login and look: %v", err)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[linkInfo](`(() => {
		const b = document.querySelector('#output .cmd-link');
		const gold = [...document.querySelectorAll('#output span')].find((e) => e.textContent === 'golden');
		const out = document.querySelector('#output');
		const plain = getComputedStyle(out).color;
		return { Text: b.textContent, Golden: gold && getComputedStyle(gold).color !== plain ? getComputedStyle(gold).color : '',
			Markup: out.textContent.includes('<send') || out.textContent.includes('<color') || out.querySelector('send, color') !== null };
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if link.Text != "north" || link.Markup || link.Golden == "" {
		t.Fatalf("link %+v: want a command link reading north, the word golden in a colour of its own, and no MXP markup in the page", link)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#output .cmd-link`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#output .input, #output .line')].some((e) => /(^|\s)north\s*$/.test(e.textContent)) && document.querySelector('#output').textContent.split('north').length > 3`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		out, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#output').textContent.slice(-600)`))
		t.Fatalf("click the link: %v; output ends:\n%s", err, out)
	}
}
