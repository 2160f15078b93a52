package main

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/edge/auth"
)

// `trellis token -operator NAME` mints a console token: one the console
// takes and the edge refuses. -user and -operator are one or the other.
func TestTokenOperator(t *testing.T) {
	secret := strings.Repeat("s", 40)
	t.Setenv("TRELLIS_AUTH_SECRET", secret)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	code, out := run(t, "token", "-operator", "olga", "-ttl", "1h")
	os.Stdout = stdout
	w.Close()
	var tok bytes.Buffer
	_, _ = tok.ReadFrom(r)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	v, err := auth.NewVerifier([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	name, _, err := v.VerifyOperator(strings.TrimSpace(tok.String()))
	if err != nil || name != "olga" {
		t.Fatalf("operator token verifies as %q, %v", name, err)
	}
	if _, err := v.Verify(strings.TrimSpace(tok.String())); err == nil {
		t.Fatal("the edge accepts the operator token as a player's")
	}
	for _, args := range [][]string{{"token", "-user", "a", "-operator", "b"}, {"token", "-operator", ""}} {
		if code, out := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", args, code, out)
		}
	}
}

// `trellis dev` serves the console and prints its URL with a token that
// signs in there.
func TestDevServesTheConsole(t *testing.T) {
	_, banner := startDev(t)
	m := regexp.MustCompile(`Operator console: (http://\S+)/\n(?s:.*?)\n\s+(eyJ\S+)\n`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("dev printed no console URL and token:\n%s", banner)
	}
	base, tok := m[1], m[2]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	req, _ := http.NewRequest("POST", base+"/api/login", strings.NewReader(`{"token":"`+tok+`"}`))
	req.Header.Set("Origin", base)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign in with dev's token: HTTP %d", res.StatusCode)
	}
	res, err = c.Get(base + "/api/games")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(b.String(), `"id":"demo"`) {
		t.Fatalf("GET /api/games: HTTP %d %s", res.StatusCode, b.String())
	}
}
