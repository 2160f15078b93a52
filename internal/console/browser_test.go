package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trellis-mud/trellis/internal/browsertest"
)

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// waitJS waits until a JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))
}

// waitText waits until the element sel's text contains s.
func waitText(sel, s string) chromedp.Action[chromedp.Void] {
	return waitJS(`(document.querySelector(` + jsString(sel) + `)?.textContent ?? '').includes(` + jsString(s) + `)`)
}

func typeLine(line string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#input`)),
		chromedp.SendKeys(chromedp.CSS(`#input`), line+"\r"),
	)
}

func TestBrowserConsole(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 860, Timeout: 120 * time.Second})
	s := startStack(t, true)
	defer browsertest.ScreenshotIfFailed(t, ctx, "console-failure.png")

	// The player, in a tab of their own: signs in to the game (a password
	// under a masked field) and shows some colours.
	playerCtx := browsertest.NewTab(t, ctx)
	err := chromedp.Do(playerCtx,
		chromedp.Navigate("http://"+s.edgeAddr+"/play/demo?token="+playerToken(t, "alice")),
		waitText("#output", "What is your name?"),
		typeLine("Alice"),
		waitText("#output", "Password:"),
		typeLine("sekrit-pass"),
		waitText("#output", "> "),
		typeLine("colors"),
		waitText("#output", "256 colours"),
		typeLine("say the console can see this"),
		waitText("#output", "You say: the console can see this"),
	)
	if err != nil {
		t.Fatalf("player: %v", err)
	}

	// The operator signs in with a token pasted into the page (never in a
	// URL) and sees the session.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SetValue(chromedp.CSS(`#token`), playerToken(t, "olga")),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
		waitText("#login-error", "player token"),
	)
	if err != nil {
		t.Fatalf("sign in with a player token: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-login.png")
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#token`), operatorToken(t, "olga")),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
		waitText("#operator", "olga"),
		waitJS(`document.querySelector('#sessions-table tr[data-user="alice"][data-game="demo"]') !== null`),
		waitText(`#sessions-table tr[data-user="alice"]`, "connected"),
	)
	if err != nil {
		t.Fatalf("sign in and list sessions: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-sessions.png")

	// The transcript, rendered by the player client's ANSI renderer:
	// colours as spans, typed lines shown, the password hidden.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#sessions-table tr[data-user="alice"] a.button`)),
		waitText("#transcript-output", "You say: the console can see this"),
		waitText("#transcript-output", "hidden: typed at a password prompt"),
		waitJS(`document.querySelectorAll('#transcript-output span[class*="fg-"], #transcript-output span[style*="color"]').length > 8`),
	)
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#transcript-output`)))
	if err != nil {
		t.Fatal(err)
	}
	typed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#transcript-output .input-echo')].map((e) => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "sekrit") || strings.Contains(text, "\x1b[") {
		t.Fatalf("the transcript shows the password or raw escapes:\n%s", text)
	}
	if len(typed) < 4 || typed[0] != "Alice" || typed[2] != "colors" {
		t.Errorf("typed lines shown: %q", typed)
	}
	browsertest.Screenshot(t, ctx, "console-transcript.png")
	// Its start: the name typed, the password line hidden.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#transcript-output').scrollTop = 0`)); err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, ctx, "console-transcript-start.png")

	// The event log, following live: what happens next shows up on its own.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#events"),
		waitText("#events-live", "live"),
		waitJS(`document.querySelector('#events-live').classList.contains('on')`),
		waitJS(`document.querySelector('#events-table tr[data-type="trellis.session.started"]') !== null`),
	)
	if err != nil {
		t.Fatalf("events: %v", err)
	}

	// Kill from the sessions page (two clicks: the first arms the button);
	// the player's page is told.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#sessions"),
		chromedp.WaitVisible(chromedp.CSS(`#sessions-table tr[data-user="alice"] button.danger`)),
		chromedp.SetValue(chromedp.CSS(`#kill-reason`), "back in five minutes"),
		chromedp.Click(chromedp.CSS(`#sessions-table tr[data-user="alice"] button.danger`)),
		waitText(`#sessions-table tr[data-user="alice"] button.danger`, "Really kill?"),
		chromedp.Click(chromedp.CSS(`#sessions-table tr[data-user="alice"] button.danger`)),
	)
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := chromedp.Do(playerCtx, waitText("#output", "session stopped: back in five minutes")); err != nil {
		t.Fatalf("the player was not told: %v", err)
	}
	browsertest.Screenshot(t, playerCtx, "console-player-told.png")

	// Follow live: the events page is open, then the player comes back,
	// and the new session's events arrive without a reload; the kill is
	// in the log with the operator's name.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#events"),
		waitJS(`document.querySelector('#events-live').classList.contains('on')`),
		waitJS(`document.querySelector('#events-table tr[data-type="trellis.operator.session_killed"]') !== null`),
		waitText(`#events-table tr[data-type="trellis.operator.session_killed"]`, `"operator":"olga"`),
	)
	if err != nil {
		t.Fatalf("the kill in the log: %v", err)
	}
	if err := chromedp.Do(playerCtx, chromedp.Reload(), waitText("#output", "What is your name?")); err != nil {
		t.Fatalf("player back: %v", err)
	}
	err = chromedp.Do(ctx,
		waitJS(`document.querySelector('#events-table tr.fresh[data-type="trellis.session.started"]') !== null`),
	)
	if err != nil {
		t.Fatalf("live events: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-events.png")

	// Filter on a correlation id by clicking it: only that chain stays.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#events-table tr[data-type="trellis.operator.session_killed"] td:nth-child(5) a`)),
		waitJS(`document.querySelector('#events-filter [name=correlation]').value !== ''`),
		waitJS(`document.querySelector('#events-table tr[data-type="trellis.operator.session_killed"]') !== null`),
	)
	if err != nil {
		t.Fatalf("correlation filter: %v", err)
	}
	types, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#events-table tbody tr')].map((r) => r.dataset.type)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		if typ == "trellis.session.started" || typ == "trellis.edge.started" {
			t.Errorf("the correlation filter shows %s (rows %q)", typ, types)
		}
	}

	// The other pages render what the API says.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#games"),
		waitText("#games-table", "Trellis Demo"),
	)
	if err != nil {
		t.Fatalf("games: %v", err)
	}
	// Edit a game through the form: the API's keys come back as sent.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#games-table tr[data-game="demo"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#game-form`)),
		chromedp.SetValue(chromedp.CSS(`#game-form [name=name]`), "Trellis Demo (edited)"),
		chromedp.SetValue(chromedp.CSS(`#game-form [name=description]`), "Edited from the console."),
	)
	if err != nil {
		t.Fatalf("edit a game: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-games.png")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#game-form button[type=submit]`)),
		waitText("#games-notice", "Saved demo."),
		waitText("#games-table", "Trellis Demo (edited)"),
	)
	if err != nil {
		t.Fatalf("save a game: %v", err)
	}
	if g, err := s.st.GetGame(ctx, "demo"); err != nil || g.Description != "Edited from the console." {
		t.Fatalf("after the edit: %+v, %v", g, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#control"),
		waitText("#consumers-table", "console-worker"),
	)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-control.png")
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.consoleURL+"/#cluster"),
		waitText("#edges-table", "console-edge"),
		waitText("#workers-table", "console-worker"),
		waitText("#workers-table", "healthy"),
	)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-cluster.png")
}
