package web_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/browsertest"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// The real edge on a real Redis: a player's aliases saved from one browser
// profile (a desktop) are in Redis under their user, and another profile
// (a phone) signed in as the same player loads them.
func TestSettingsFollowPlayerThroughRealEdge(t *testing.T) {
	rs := redistest.New(t, redistest.Options{})
	rdb := rs.Client(t)
	st := store.New(rdb)
	ctx := context.Background()
	if err := st.PutGame(ctx, store.Game{ID: "demo", Name: "Trellis Demo", Host: "127.0.0.1", Port: 4000}); err != nil {
		t.Fatal(err)
	}
	secret := []byte(strings.Repeat("s", 32))
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(edge.Config{Listen: "127.0.0.1:0", ID: "edge-web-test", AdminListen: ""}, v, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the edge did not stop")
		}
	})
	base := "http://" + ln.Addr().String()

	// No worker runs: the page stays "connecting", which the settings do
	// not need.
	desk := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 800})
	defer browsertest.ScreenshotIfFailed(t, desk, "player-edge-desk-failure.png")
	do(t, desk, "open the play page", chromedp.Navigate(base+"/play/demo?token="+tok))
	waitFor(t, desk, "the first save to the account", `document.querySelector('#client-status').textContent === 'Saved to your account.'`)
	setRules(t, desk, "k = kill $1", "highlight /orc/")
	var doc []byte
	for i := 0; i < 200; i++ {
		if doc, err = st.UserSettings(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(doc), "kill $1") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(doc), `"name":"k"`) || !strings.Contains(string(doc), `"pattern":"orc"`) {
		t.Fatalf("settings in Redis = %s, want the alias and the trigger", doc)
	}

	phone := browsertest.Start(t, browsertest.Options{Width: 390, Height: 844})
	defer browsertest.ScreenshotIfFailed(t, phone, "player-edge-phone-failure.png")
	do(t, phone, "open the play page on the phone", chromedp.Navigate(base+"/play/demo?token="+tok))
	waitFor(t, phone, "settings loaded", `document.querySelector('#client-status').textContent === 'Settings loaded from your account.'`)
	if got := eval[string](t, phone, `document.querySelector('#client-aliases').value + ' | ' + document.querySelector('#client-triggers').value`); got != "k = kill $1 | highlight /orc/" {
		t.Errorf("rules on the phone = %q", got)
	}
}
