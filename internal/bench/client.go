package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/trellis-mud/trellis/internal/wire"
)

// Protocol is how a target frames a game's bytes on the WebSocket.
type Protocol int

const (
	// JSON is the browser protocol of Trellis (hello, input, output,
	// status...). The edge and the direct proxy speak it.
	JSON Protocol = iota
	// Raw relays the game's bytes unchanged in binary frames, the way
	// websockify does.
	Raw
)

// Target is one WebSocket endpoint to drive: the stack under test or a
// baseline.
type Target struct {
	Name string // shown in tables: "trellis", "direct", "websockify"
	URL  string // ws://host:port/path
	// URLs, when set, are equivalent endpoints (processes) the clients are
	// spread over by user name instead of URL: a direct proxy holds two
	// descriptors per session, so 10,000 of them need two processes.
	URLs     []string
	Protocol Protocol // JSON or Raw
	Game     string   // the game id sent in hello (JSON only)
	// Token mints a token for a user; nil sends none.
	Token func(user string) (string, error)
	// Resumable says the target keeps sessions across WebSocket
	// connections (only the real stack does).
	Resumable bool
}

// frame is one message from the target. Raw targets only produce
// "output" frames.
type frame = wire.Frame

// conn is one benchmark client connection. Its methods follow gorilla's
// rules: one goroutine reads, one goroutine writes.
type conn struct {
	ws     *websocket.Conn
	target *Target
	lines  lineSplitter
	lastID string // last stream id seen, for resume
	// entries counts frames that carried a stream id: output stream
	// entries the stack wrote and relayed.
	entries int64
	// inputs counts the input frames among them: records of typed lines.
	inputs int64
	// live, when set, counts the same frames for a watcher on another
	// goroutine (the saturation probe).
	live *atomic.Int64
	gaps int // gap frames: the stack reported lost output
}

var dialer = websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   16 << 10,
	WriteBufferSize:  4 << 10,
	NetDialContext:   (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}

// dial opens a connection as user and, for JSON targets, says hello with
// resume (empty for a fresh attach). It does not wait for the welcome.
func dial(ctx context.Context, t *Target, user, resume string) (*conn, error) {
	var hdr http.Header
	if t.Protocol == Raw {
		hdr = http.Header{"Sec-WebSocket-Protocol": {"binary"}}
	}
	url := t.URL
	if len(t.URLs) > 0 {
		h := fnv.New32a()
		h.Write([]byte(user))
		url = t.URLs[h.Sum32()%uint32(len(t.URLs))]
	}
	ws, resp, err := dialer.DialContext(ctx, url, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c := &conn{ws: ws, target: t, lastID: resume}
	if t.Protocol == Raw {
		return c, nil
	}
	hello := map[string]any{"type": "hello", "game": t.Game, "cols": 100, "rows": 30}
	if resume != "" {
		hello["resume"] = resume
	}
	if t.Token != nil {
		tok, err := t.Token(user)
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("token for %s: %w", user, err)
		}
		hello["token"] = tok
	}
	if err := ws.WriteJSON(hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello to %s: %w", t.URL, err)
	}
	return c, nil
}

// send writes one input line.
func (c *conn) send(line string) error {
	if c.target.Protocol == Raw {
		return c.ws.WriteMessage(websocket.BinaryMessage, []byte(line+"\r\n"))
	}
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"input", line})
	if err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// next reads one frame. Game text is also fed to the line splitter, so
// callers that want lines call lines.next() after an "output" frame.
func (c *conn) next() (frame, error) {
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if c.target.Protocol == Raw || typ == websocket.BinaryMessage {
		c.lines.add(data)
		return frame{Type: "output", Text: string(data)}, nil
	}
	f, ok := decodeOutputFrame(data)
	if !ok {
		if err := json.Unmarshal(data, &f); err != nil {
			return frame{}, fmt.Errorf("bad frame %.80q: %w", data, err)
		}
	}
	if f.ID != "" {
		c.lastID = f.ID
		c.entries++
		if c.live != nil {
			c.live.Add(1)
		}
	}
	switch f.Type {
	case "output":
		c.lines.add([]byte(f.Text))
	case "gap":
		c.gaps++
	case wire.TypeInput:
		if f.ID != "" {
			c.inputs++
		}
	}
	return f, nil
}

// waitReady reads until the session can take input: the welcome for the
// direct proxy (it dials the game before welcoming), the first connected
// status for the real stack, at once for raw targets.
func (c *conn) waitReady(deadline time.Time) error {
	if c.target.Protocol == Raw {
		return nil
	}
	c.ws.SetReadDeadline(deadline)
	defer c.ws.SetReadDeadline(time.Time{})
	for {
		f, err := c.next()
		if err != nil {
			return fmt.Errorf("wait for session: %w", err)
		}
		switch f.Type {
		case "welcome":
			if !c.target.Resumable {
				return nil
			}
		case "status":
			switch f.State {
			case "connected", "reconnected":
				return nil
			case "disconnected", "failed":
				return fmt.Errorf("session %s: %s", f.State, f.Message)
			}
		case "error":
			return fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		}
	}
}

func (c *conn) close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// lineSplitter turns a stream of game text into lines. Game output may be
// cut anywhere between frames (the worker coalesces by size and round trip), so a
// partial line waits for the rest.
type lineSplitter struct {
	buf   []byte
	ready []string
}

func (s *lineSplitter) add(p []byte) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.ready = append(s.ready, strings.TrimRight(string(s.buf[:i]), "\r"))
		s.buf = s.buf[i+1:]
	}
	if len(s.buf) == 0 {
		s.buf = s.buf[:0:0] // let a large consumed buffer go
	}
}

// take returns the complete lines seen so far and forgets them.
func (s *lineSplitter) take() []string {
	l := s.ready
	s.ready = nil
	return l
}
