package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// `make run` is one of the two commands a newcomer types: the whole stack
// on the embedded Redis (miniredis) must let a guest log in and play.
func TestDevStackOnEmbeddedRedis(t *testing.T) {
	t.Setenv("TRELLIS_REDIS_URL", "")
	os.Unsetenv("TRELLIS_REDIS_URL") // embedded; t.Setenv restores it
	// dev's own default lets the worker dial the demo game on loopback.
	t.Setenv("TRELLIS_WORKER_ALLOW_NETWORKS", "")
	os.Unsetenv("TRELLIS_WORKER_ALLOW_NETWORKS")
	for k, v := range map[string]string{
		"TRELLIS_DEV_LISTEN":           "127.0.0.1:0",
		"TRELLIS_EDGE_LISTEN":          "127.0.0.1:0",
		"TRELLIS_EDGE_GUEST":           "true",
		"TRELLIS_AUTH_SECRET":          "",
		"TRELLIS_WORKER_ADMIN_LISTEN":  "",
		"TRELLIS_WORKER_IDLE_GRACE":    "10m",
		"TRELLIS_WORKER_DRAIN_TIMEOUT": "1s",
		"TRELLIS_LOG_LEVEL":            "warn",
	} {
		t.Setenv(k, v)
	}
	addr := make(chan string, 1)
	devListening = func(a string) { addr <- a }
	t.Cleanup(func() { devListening = nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop within 20s of cancel")
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("dev stopped before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("dev not serving after 20s")
	}
	if got := os.Getenv("TRELLIS_WORKER_ALLOW_NETWORKS"); got != "127.0.0.0/8,::1/128" {
		t.Errorf("dev ran the worker with TRELLIS_WORKER_ALLOW_NETWORKS=%q, want loopback", got)
	}

	// A guest gets a cookie from the play page and plays over /ws with it.
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(base + "/play/demo")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /play/demo: %v %v", resp, err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base)
	h := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send := func(v map[string]any) {
		if err := ws.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "hello", "game": "demo", "cols": 100, "rows": 30})
	var text strings.Builder
	var redacted bool
	waitText := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(text.String(), want) {
			_ = ws.SetReadDeadline(deadline)
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %q: %v (have %q)", want, err, text.String())
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			switch f["type"] {
			case "output":
				text.WriteString(f["text"].(string))
			case "input":
				if f["redacted"] == true {
					redacted = true
				}
				if s, _ := f["text"].(string); strings.Contains(s, "hunter2") {
					t.Fatal("the password came back as input")
				}
			case "error":
				t.Fatalf("error frame %s", data)
			}
		}
	}
	waitText("What is your name?")
	send(map[string]any{"type": "input", "text": "Newbie"})
	waitText("Password:")
	send(map[string]any{"type": "input", "text": "hunter2"})
	waitText("> ")
	send(map[string]any{"type": "input", "text": "say hello from dev"})
	waitText("You say: hello from dev")
	if !redacted {
		t.Error("the password line was not recorded as redacted input")
	}
}

// dev runs the demo game on this host, which the worker's dial guard
// refuses by default: dev allows loopback (and the demo's own address)
// unless the operator said otherwise.
func TestDevAllowsTheDemoGamesNetwork(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:0":     "127.0.0.0/8,::1/128",
		"[::1]:4000":      "127.0.0.0/8,::1/128",
		"0.0.0.0:4000":    "127.0.0.0/8,::1/128",
		":4000":           "127.0.0.0/8,::1/128",
		"192.168.1.5:400": "127.0.0.0/8,::1/128,192.168.1.5",
		"demo.local:4000": "127.0.0.0/8,::1/128",
	} {
		if got := devAllowNetworks(listen); got != want {
			t.Errorf("devAllowNetworks(%q) = %q, want %q", listen, got, want)
		}
	}
}
