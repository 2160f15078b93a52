package edge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// The edge passes a line on as typed, except for the newline that would
// make it two: TAB and the other C0 controls are the worker's to filter
// (per game), so nothing valid is refused here.
func TestInputKeepsTabsAndControls(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	for _, text := range []string{"say\ta\tb", "\x00\x01\x07\x1b[1mbold\x7f", "", " ", "\u2028 and \u0085", strings.Repeat("é", 2048)} {
		c.send(input(text))
		if in := w.nextInput(); in.Text != text {
			t.Fatalf("line %q reached the worker as %q", text, in.Text)
		}
	}
}

// neverInternal reads until the connection closes (with wantClose) or a
// pong answers a ping (wantClose 0), and fails on an internal error or a 1011 close: no value a browser sends is
// a failure of the edge.
func (c *wsClient) neverInternal(wantClose int) {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	for range 100 {
		f, err := c.read(5 * time.Second)
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			if ce.Code != wantClose {
				c.t.Fatalf("closed with %d (%q), want %d", ce.Code, ce.Text, wantClose)
			}
			return
		case err != nil:
			c.t.Fatalf("read: %v", err)
		case f.Type == "error" && f.Code == wire.ErrInternal:
			c.t.Fatalf("internal error %+v for a bad browser value", f)
		case f.Type == "pong" && wantClose == 0:
			return
		}
	}
	c.t.Fatal("no end")
}

func TestBadHelloValuesAreNeverInternal(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	for _, tc := range []struct {
		name  string
		hello string
		code  string
		close int
	}{
		{"game with a slash", `{"type":"hello","game":"no/such game","token":"TOKEN"}`, wire.ErrUnknownGame, wire.CloseUnknownGame},
		{"empty game", `{"type":"hello","game":"","token":"TOKEN"}`, wire.ErrUnknownGame, wire.CloseUnknownGame},
		{"long game", `{"type":"hello","game":"` + strings.Repeat("g", 5000) + `","token":"TOKEN"}`, wire.ErrUnknownGame, wire.CloseUnknownGame},
		{"game of the wrong type", `{"type":"hello","game":5,"token":"TOKEN"}`, wire.ErrBadRequest, wire.CloseProtocol},
		{"resume of the wrong type", `{"type":"hello","game":"demo","token":"TOKEN","resume":17}`, wire.ErrBadRequest, wire.CloseProtocol},
		{"fractional cols", `{"type":"hello","game":"demo","token":"TOKEN","cols":80.5}`, wire.ErrBadRequest, wire.CloseProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial(nil)
			c.t = t
			c.sendRaw(websocket.TextMessage, []byte(strings.Replace(tc.hello, "TOKEN", e.token(user), 1)))
			f := c.expectError(tc.code)
			if tc.code == wire.ErrBadRequest && !strings.Contains(f.Message, "must be") {
				t.Errorf("message %q does not say which field is wrong", f.Message)
			}
			c.neverInternal(tc.close)
		})
	}
}

func TestBadMessageValuesAreNeverInternal(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	c.send(input("x")) // learn the route: resize goes to the owner
	w.nextInput()
	for _, tc := range []struct {
		name, msg, code string // code "": accepted
	}{
		{"huge resize", `{"type":"resize","cols":1000000000000,"rows":1}`, ""},
		{"negative resize", `{"type":"resize","cols":-5,"rows":10}`, wire.ErrBadRequest},
		{"resize of the wrong type", `{"type":"resize","cols":"wide","rows":10}`, wire.ErrBadRequest},
		{"gmcp null data", `{"type":"gmcp","package":"Core.Ping","data":null}`, ""},
		{"gmcp without data", `{"type":"gmcp","package":"Core.Ping"}`, ""},
		{"gmcp longest package", `{"type":"gmcp","package":"A` + strings.Repeat("b", 127) + `","data":1}`, ""},
		{"gmcp package too long", `{"type":"gmcp","package":"A` + strings.Repeat("b", 128) + `","data":1}`, wire.ErrBadRequest},
		{"gmcp package of the wrong type", `{"type":"gmcp","package":["Core"],"data":1}`, wire.ErrBadRequest},
		{"input of the wrong type", `{"type":"input","text":5}`, wire.ErrBadRequest},
		{"input with invalid UTF-8 escape", `{"type":"input","text":"\udc00"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(websocket.TextMessage, []byte(tc.msg))
			if tc.code != "" {
				c.expectError(tc.code)
			}
			c.neverInternal(0)
		})
	}
}
