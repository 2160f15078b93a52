package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Proxy is the baseline the stack is measured against: the least a
// WebSocket-to-telnet gateway can do. One WebSocket becomes one TCP
// connection to one fixed game, with a goroutine pair per connection and
// nothing in between: no Redis, no resume, no telnet engine. It speaks the
// subset of the browser protocol the benchmark uses (hello, input, output),
// so the same clients drive it and the stack.
type Proxy struct {
	game string
	log  *slog.Logger

	upgrader websocket.Upgrader

	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy returns a proxy to the game at gameAddr (host:port).
func NewProxy(gameAddr string, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.Default()
	}
	return &Proxy{
		game:     gameAddr,
		log:      log,
		conns:    make(map[*websocket.Conn]struct{}),
		upgrader: websocket.Upgrader{ReadBufferSize: 4 << 10, WriteBufferSize: 16 << 10},
	}
}

// Serve answers WebSocket upgrades on ln until ctx is done, then closes
// every connection and waits for their goroutines.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		_ = srv.Close() // hijacked connections are ours to close: below
		p.closeAll()
	})
	defer stop()
	err := srv.Serve(ln)
	p.closeAll()
	p.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return ctx.Err()
	}
	return fmt.Errorf("direct proxy: %w", err)
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) track(ws *websocket.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[ws] = struct{}{}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(ws *websocket.Conn) {
	p.mu.Lock()
	delete(p.conns, ws)
	p.mu.Unlock()
	p.wg.Done()
}

// ServeHTTP upgrades and relays. The handler goroutine carries game bytes
// to the browser; a second goroutine carries input to the game. Either
// side ending closes both.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := p.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	if !p.track(ws) {
		ws.Close()
		return
	}
	defer p.untrack(ws)
	defer ws.Close()

	ws.SetReadLimit(1 << 20)
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello struct {
		Type string `json:"type"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		p.log.Debug("direct proxy: no hello", "err", err)
		return
	}
	ws.SetReadDeadline(time.Time{})
	game, err := net.DialTimeout("tcp", p.game, 10*time.Second)
	if err != nil {
		_ = ws.WriteJSON(map[string]string{"type": "error", "code": "internal", "message": err.Error()})
		return
	}
	defer game.Close()
	if err := ws.WriteJSON(map[string]any{"type": "welcome", "game": p.game}); err != nil {
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer game.Close() // unblocks the game reader below
		p.toGame(ws, game)
	}()
	p.toBrowser(ws, game)
	ws.Close() // unblocks toGame's read
	<-done
}

// toGame turns input frames into CR LF terminated lines.
func (p *Proxy) toGame(ws *websocket.Conn, game net.Conn) {
	var in struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	buf := make([]byte, 0, 256)
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		in.Type, in.Text = "", ""
		if json.Unmarshal(data, &in) != nil || in.Type != "input" {
			continue
		}
		buf = append(append(buf[:0], in.Text...), '\r', '\n')
		if _, err := game.Write(buf); err != nil {
			return
		}
	}
}

// toBrowser sends whatever the game wrote as output frames. A read that
// ends inside a UTF-8 sequence keeps the tail for the next frame, as a real
// gateway must.
func (p *Proxy) toBrowser(ws *websocket.Conn, game net.Conn) {
	buf := make([]byte, 32<<10)
	var carry int
	for {
		n, err := game.Read(buf[carry:])
		if n > 0 {
			end := carry + n
			cut := validPrefix(buf[:end])
			out, merr := json.Marshal(struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}{"output", string(buf[:cut])})
			if merr != nil {
				return
			}
			if werr := ws.WriteMessage(websocket.TextMessage, out); werr != nil {
				return
			}
			carry = copy(buf, buf[cut:end])
		}
		if err != nil {
			return
		}
	}
}

// validPrefix is the length of p without an incomplete UTF-8 sequence at
// its end (at most 3 bytes are held back).
func validPrefix(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		b := p[i]
		if b < 0x80 {
			return len(p)
		}
		if utf8.RuneStart(b) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}
