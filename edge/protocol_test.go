package edge

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

func TestBadMessagesGetErrorsAndKeepTheConnection(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxMessage = 1024; c.MaxLine = 100 })
	c := e.hello(newUser(), "demo", "")
	cases := []struct {
		name string
		mt   int
		body string
		code string
	}{
		{"invalid JSON", websocket.TextMessage, `{"type":`, wire.ErrBadRequest},
		{"JSON not an object", websocket.TextMessage, `[1,2]`, wire.ErrBadRequest},
		{"binary frame", websocket.BinaryMessage, `{"type":"input","text":"x"}`, wire.ErrBadRequest},
		{"unknown type", websocket.TextMessage, `{"type":"teleport"}`, wire.ErrBadRequest},
		{"oversize frame", websocket.TextMessage, `{"type":"input","text":"` + strings.Repeat("a", 2000) + `"}`, wire.ErrBadRequest},
		{"line too long", websocket.TextMessage, `{"type":"input","text":"` + strings.Repeat("a", 101) + `"}`, wire.ErrLineTooLong},
		{"two lines", websocket.TextMessage, `{"type":"input","text":"a\nb"}`, wire.ErrBadRequest},
		{"input without text", websocket.TextMessage, `{"type":"input"}`, wire.ErrBadRequest},
		{"gmcp bad package", websocket.TextMessage, `{"type":"gmcp","package":"no spaces","data":{}}`, wire.ErrBadRequest},
		{"resize out of range", websocket.TextMessage, `{"type":"resize","cols":0,"rows":10}`, wire.ErrBadRequest},
		{"msdp without var", websocket.TextMessage, `{"type":"msdp","val":"HEALTH"}`, wire.ErrBadRequest},
		{"msdp without val", websocket.TextMessage, `{"type":"msdp","var":"REPORT"}`, wire.ErrBadRequest},
		{"msdp control byte", websocket.TextMessage, `{"type":"msdp","var":"REPORT","val":"HE\u0001ALTH"}`, wire.ErrBadRequest},
		{"msdp boolean", websocket.TextMessage, `{"type":"msdp","var":"X","val":true}`, wire.ErrBadRequest},
		{"msdp too deep", websocket.TextMessage, `{"type":"msdp","var":"D","val":` + strings.Repeat("[", 33) + `"x"` + strings.Repeat("]", 33) + `}`, wire.ErrBadRequest},
		{"msdp too long", websocket.TextMessage, `{"type":"msdp","var":"SEND","val":"` + strings.Repeat("a", 95) + `"}`, wire.ErrLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tc.mt, []byte(tc.body))
			c.expectError(tc.code)
		})
	}
	c.t = t
	// The reason names the fault, never the value.
	c.send(map[string]any{"type": "msdp", "var": "REPORT", "val": "secret\u0002"})
	if f := c.expectError(wire.ErrBadRequest); !strings.Contains(f.Message, "byte 2") || strings.Contains(f.Message, "secret") {
		t.Errorf("msdp error message %q: want the reason without the value", f.Message)
	}
	c.send(map[string]any{"type": "msdp", "var": "REPORT", "val": []string{"HEALTH"}})
	c.expectError(wire.ErrNoSession) // valid: it got as far as the session
	// Still up: a valid message is handled.
	c.send(map[string]any{"type": "input", "text": "look"})
	c.expectError(wire.ErrNoSession)
}

func TestHardLimitClosesWith1009(t *testing.T) {
	e := newEnv(t, nil)
	c := e.hello(newUser(), "demo", "")
	big := make([]byte, hardMessageLimit+1)
	for i := range big {
		big[i] = 'a'
	}
	_ = c.conn.WriteMessage(websocket.TextMessage, big) // may fail once the edge closed
	c.expectClose(websocket.CloseMessageTooBig)
}

func TestProtocolViolationsClose4000(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HelloTimeout = 200 * time.Millisecond })
	t.Run("input before hello", func(t *testing.T) {
		c := e.dial(nil)
		c.t = t
		c.send(map[string]any{"type": "input", "text": "look"})
		c.expectError(wire.ErrBadRequest)
		c.expectClose(wire.CloseProtocol)
	})
	t.Run("hello twice", func(t *testing.T) {
		c := e.hello(newUser(), "demo", "")
		c.t = t
		c.send(map[string]any{"type": "hello", "game": "demo", "token": e.token("x")})
		c.expectError(wire.ErrBadRequest)
		c.expectClose(wire.CloseProtocol)
	})
	t.Run("no hello in time", func(t *testing.T) {
		c := e.dial(nil)
		c.t = t
		c.expectError(wire.ErrBadRequest)
		c.expectClose(wire.CloseProtocol)
	})
}

func TestHelloRefusals(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerUser = 1 })
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	sign := func(m jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	busy := newUser()
	e.worker("w-busy", store.SessionKey{User: busy, Game: "other"})

	cases := []struct {
		name  string
		hello map[string]any
		code  string
		close int
	}{
		{"no token", map[string]any{"game": "demo"}, wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"forged token", map[string]any{"game": "demo",
			"token": sign(jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-!!"), jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})},
			wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"expired token", map[string]any{"game": "demo",
			"token": sign(jwt.SigningMethodHS256, testSecret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))})},
			wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"alg none", map[string]any{"game": "demo",
			"token": sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})},
			wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"alg RS256", map[string]any{"game": "demo",
			"token": sign(jwt.SigningMethodRS256, rsaKey, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})},
			wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"bad user id", map[string]any{"game": "demo",
			"token": sign(jwt.SigningMethodHS256, testSecret, jwt.RegisteredClaims{Subject: "a}b{c", ExpiresAt: exp})},
			wire.ErrUnauthorized, wire.CloseUnauthorized},
		{"unknown game", map[string]any{"game": "nope", "token": e.token("alice")}, wire.ErrUnknownGame, wire.CloseUnknownGame},
		{"game id garbage", map[string]any{"game": "../x", "token": e.token("alice")}, wire.ErrUnknownGame, wire.CloseUnknownGame},
		{"too many sessions", map[string]any{"game": "demo", "token": e.token(busy)}, wire.ErrTooManySessions, wire.CloseTooManySessions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial(nil)
			c.t = t
			tc.hello["type"] = "hello"
			c.send(tc.hello)
			c.expectError(tc.code)
			c.expectClose(tc.close)
		})
	}
	// The game being attached does not count against the limit: busy may
	// re-attach "other".
	c := e.dial(nil)
	c.send(map[string]any{"type": "hello", "game": "other", "token": e.token(busy)})
	if f := c.next(); f.Type != "welcome" {
		t.Fatalf("re-attach of the held game: %+v", f)
	}
}

// A flood of 10,000 messages: the edge drops what is over the rate, says
// so at most once a second, relays at most what the bucket allows, keeps
// no queue per message, and the connection survives.
func TestFloodIsRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InputRate = 20; c.InputBurst = 40 })
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	msg, _ := json.Marshal(map[string]any{"type": "input", "text": "flood"})
	start := time.Now()
	for range 10_000 {
		c.sendRaw(websocket.TextMessage, msg)
	}
	elapsed := time.Since(start)
	c.expectError(wire.ErrRateLimited)

	// Count what reached the worker; the bucket allows burst + rate*time.
	relayed := 0
	deadline := time.After(time.Second)
count:
	for {
		select {
		case <-w.inputs:
			relayed++
		case <-deadline:
			break count
		}
	}
	allowed := 40 + int(20*(elapsed+time.Second).Seconds()) + 1
	if relayed == 0 || relayed > allowed {
		t.Fatalf("%d of 10000 flood lines relayed, want 1..%d", relayed, allowed)
	}
	// Error frames are not one per dropped message.
	errs := 0
	for {
		f, err := c.read(200 * time.Millisecond)
		if err != nil {
			break
		}
		if f.Code == wire.ErrRateLimited {
			errs++
		}
	}
	if maxErrs := int(elapsed.Seconds()) + 2; errs > maxErrs {
		t.Fatalf("%d rate_limited frames, want at most %d", errs, maxErrs)
	}
	// The connection survives: once tokens are back, a line goes through.
	waitFor(t, "a line after the flood", func() bool {
		c.send(map[string]any{"type": "input", "text": "after"})
		select {
		case m := <-w.inputs:
			return strings.Contains(m.Payload, `"after"`)
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
}

func TestOriginChecks(t *testing.T) {
	t.Run("same host by default", func(t *testing.T) {
		e := newEnv(t, nil)
		if _, err := e.tryDial(http.Header{"Origin": {"http://" + e.addr}}); err != nil {
			t.Fatalf("same-host origin refused: %v", err)
		}
		_, err := e.tryDial(http.Header{"Origin": {"https://evil.example"}})
		if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
			t.Fatalf("foreign origin: %v, want HTTP 403", err)
		}
	})
	t.Run("configured list", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://play.example.com"} })
		if _, err := e.tryDial(http.Header{"Origin": {"https://play.example.com"}}); err != nil {
			t.Fatalf("listed origin refused: %v", err)
		}
		for _, o := range []string{"http://" + e.addr, "http://play.example.com", "https://play.example.com.evil"} {
			if _, err := e.tryDial(http.Header{"Origin": {o}}); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
				t.Fatalf("origin %s: %v, want HTTP 403", o, err)
			}
		}
	})
}

func TestGuestMode(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Guest = true })
	resp, _ := httpGet(t, "http://"+e.addr+"/play/demo", nil)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "trellis_guest" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly {
		t.Fatalf("no HttpOnly guest cookie on /play/demo: %v", resp.Cookies())
	}
	h := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	var users []string
	for range 2 { // a reload keeps the identity
		c := e.dial(h)
		c.send(map[string]any{"type": "hello", "game": "demo"})
		f := c.next()
		if f.Type != "welcome" || !strings.HasPrefix(f.User, "guest-") {
			t.Fatalf("guest hello: %+v", f)
		}
		users = append(users, f.User)
	}
	if users[0] != users[1] {
		t.Fatalf("guest identity changed across reloads: %v", users)
	}
	// A forged cookie is no identity.
	c := e.dial(http.Header{"Cookie": {cookie.Name + "=guest-0000000000000000.AAAA"}})
	c.send(map[string]any{"type": "hello", "game": "demo"})
	c.expectError(wire.ErrUnauthorized)
	c.expectClose(wire.CloseUnauthorized)
}

func TestGuestModeOffNeedsToken(t *testing.T) {
	e := newEnv(t, nil)
	resp, _ := httpGet(t, "http://"+e.addr+"/play/demo", nil)
	if len(resp.Cookies()) != 0 {
		t.Fatalf("cookies set without guest mode: %v", resp.Cookies())
	}
}

func TestSlowBrowserIsCut(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SendQueue = 16; c.WriteTimeout = 30 * time.Second })
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	c := e.hello(user, "demo", "")
	// The browser reads nothing while the game floods: the socket buffers
	// fill, the writer blocks, the queue overflows.
	chunk := strings.Repeat("x", 16<<10)
	for range 100 {
		batch := make([]store.Append, 40)
		for i := range batch {
			w.seq++
			batch[i] = store.Append{Key: key, Out: store.Output{Kind: store.OutText, Text: chunk, Fence: w.lease.Fence, Seq: w.seq}}
		}
		if _, err := e.st.AppendOutputs(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if counterValue(t, e.srv.m.closes.WithLabelValues("4008")) > 0 {
			break
		}
	}
	waitFor(t, "the slow close", func() bool { return counterValue(t, e.srv.m.closes.WithLabelValues("4008")) > 0 })
	c.expectClose(wire.CloseTooSlow)
}

// A ping is answered with a pong, before and after hello: a client waking
// up learns at once whether its socket survived.
func TestPingPong(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial(nil)
	c.send(map[string]any{"type": "ping"})
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("answer to ping before hello: %+v, want pong", f)
	}
	c = e.hello(newUser(), "demo", "")
	c.send(map[string]any{"type": "ping"})
	for range 20 {
		f := c.next()
		if f.Type == "pong" {
			return
		}
		if f.Type == "error" {
			t.Fatalf("ping answered with %+v", f)
		}
	}
	t.Fatal("no pong after hello")
}

// Frames thrown away while a connection closes are bounded like frames in
// use: past hardMessageLimit the edge stops reading and drops the socket.
func TestDiscardIsBounded(t *testing.T) {
	if err := discard(strings.NewReader("small frame")); err != nil {
		t.Fatalf("small frame: %v", err)
	}
	huge := io.LimitReader(zeroReader{}, hardMessageLimit+10)
	if err := discard(huge); !errors.Is(err, errOverHardLimit) {
		t.Fatalf("huge frame: %v, want errOverHardLimit", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
