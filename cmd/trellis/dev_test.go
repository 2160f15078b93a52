package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startDev runs `trellis dev` in this process, as `make run` does, on the
// embedded Redis and free ports, and returns the edge's base URL and what
// dev printed at start-up (its stderr, up to "Press Ctrl-C").
func startDev(t *testing.T) (base, banner string) {
	t.Helper()
	unsetEnv(t, "TRELLIS_REDIS_URL") // embedded
	// dev's own default lets the worker dial the demo game on loopback.
	unsetEnv(t, "TRELLIS_WORKER_ALLOW_NETWORKS")
	for k, v := range map[string]string{
		"TRELLIS_DEV_LISTEN":           "127.0.0.1:0",
		"TRELLIS_DEV_REDIS_LISTEN":     "127.0.0.1:0",
		"TRELLIS_EDGE_LISTEN":          "127.0.0.1:0",
		"TRELLIS_EDGE_GUEST":           "true",
		"TRELLIS_EDGE_ADMIN_LISTEN":    "",
		"TRELLIS_CONSOLE_LISTEN":       "127.0.0.1:0",
		"TRELLIS_AUTH_SECRET":          "",
		"TRELLIS_WORKER_ADMIN_LISTEN":  "",
		"TRELLIS_WORKER_IDLE_GRACE":    "10m",
		"TRELLIS_WORKER_DRAIN_TIMEOUT": "1s",
		"TRELLIS_LOG_LEVEL":            "warn",
	} {
		t.Setenv(k, v)
	}
	// dev prints to os.Stderr: read it through a pipe, kept open (and
	// drained) until dev has stopped, since dev logs until then.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var printed syncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&printed, r); close(copied) }()
	t.Cleanup(func() { w.Close(); <-copied; r.Close() })
	saved := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = saved }()

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
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		os.Stderr = saved
		t.Fatalf("dev stopped before serving: %v\n%s", err, printed.String())
	case <-time.After(20 * time.Second):
		os.Stderr = saved
		t.Fatalf("dev not serving after 20s:\n%s", printed.String())
	}
	// The banner is written before dev says it listens; the pipe may
	// still hold it.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(printed.String(), "Press Ctrl-C") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return base, printed.String()
}

// `make run` is one of the two commands a newcomer types: the whole stack
// on the embedded Redis (miniredis) must let a guest log in and play, and
// the operator commands, run in another terminal with the
// TRELLIS_REDIS_URL dev prints, must see what runs.
func TestDevStackOnEmbeddedRedis(t *testing.T) {
	base, banner := startDev(t)
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

	// Another terminal: the ops commands with the URL dev printed.
	m := regexp.MustCompile(`TRELLIS_REDIS_URL=(redis://\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("dev printed no TRELLIS_REDIS_URL=... line for the ops commands:\n%s", banner)
	}
	t.Setenv("TRELLIS_REDIS_URL", m[1])
	code, out, errs := captureAll(t, "sessions", "ls")
	if code != 0 || !regexp.MustCompile(`guest-\S+\s+demo\s+connected\s+1\s`).MatchString(out) {
		t.Fatalf("sessions ls against dev's Redis (%s): exit %d, want the guest's demo session:\n%s%s", m[1], code, out, errs)
	}
	for _, args := range [][]string{{"games", "ls"}, {"ops", "lag"}, {"replay", "events", "-type", "session.started"}} {
		code, out, errs := captureAll(t, args...)
		if code != 0 || !strings.Contains(out, "demo") && args[0] != "ops" {
			t.Errorf("%v against dev's Redis: exit %d:\n%s%s", args, code, out, errs)
		}
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
