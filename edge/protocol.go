package edge

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// The close codes, error codes and message types are package wire's
// (internal/wire), shared with the web client, the drills and the bench.

// hardMessageLimit is the size past which the edge stops reading a frame
// and closes with 1009. Frames between Config.MaxMessage and this are read,
// discarded and answered with an error, and the connection stays up.
const hardMessageLimit = 1 << 20

// inbound is every client message; Type says which fields matter.
type inbound struct {
	Type   string `json:"type"`
	Game   string `json:"game"`
	Token  string `json:"token"`
	Resume string `json:"resume"`
	Cols   int    `json:"cols"`
	Rows   int    `json:"rows"`
	// ScreenReader (hello): the page is in screen-reader mode.
	ScreenReader bool            `json:"screen_reader"`
	Text         *string         `json:"text"`
	Package      string          `json:"package"`
	Data         json.RawMessage `json:"data"`
	Var          string          `json:"var"`
	Val          json.RawMessage `json:"val"`
}

// pongFrame answers a ping.
var pongFrame = []byte(`{"type":"pong"}`)

var gmcpPackage = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,127}$`)

// maxWindow bounds the window size a browser may claim: NAWS carries 16
// bits, and nobody reads 1000 columns.
const maxWindow = 1000

func clampWindow(n int) int { return max(0, min(n, maxWindow)) }

// Frames the edge sends. Every frame that comes from the output stream
// carries the stream id; the browser sends back the last one as resume.
type (
	welcomeFrame struct {
		Type    string `json:"type"`
		User    string `json:"user"`
		Game    string `json:"game"`
		Resumed bool   `json:"resumed"`
	}
	outputFrame struct {
		Type   string `json:"type"`
		ID     string `json:"id"`
		Text   string `json:"text"`
		Prompt bool   `json:"prompt"`
	}
	inputFrame struct {
		Type     string `json:"type"`
		ID       string `json:"id"`
		Text     string `json:"text,omitempty"`
		Redacted bool   `json:"redacted,omitempty"`
	}
	gmcpFrame struct {
		Type    string          `json:"type"`
		ID      string          `json:"id,omitempty"` // absent on the state replayed at attach
		Package string          `json:"package"`
		Data    json.RawMessage `json:"data"`
	}
	msdpFrame struct {
		Type string          `json:"type"`
		ID   string          `json:"id,omitempty"` // absent on the state replayed at attach
		Var  string          `json:"var"`
		Val  json.RawMessage `json:"val"`
	}
	echoFrame struct {
		Type   string `json:"type"`
		ID     string `json:"id"`
		Server bool   `json:"server"`
	}
	statusFrame struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		State   string `json:"state"`
		Message string `json:"message,omitempty"`
	}
	gapFrame struct {
		Type    string `json:"type"`
		ID      string `json:"id,omitempty"`
		Message string `json:"message"`
		// Reset tells the browser to forget its resume point: the position
		// it had is not in the stream, and the ids that follow may be older
		// than ones it saw. Kept, it would come back on every reconnect.
		Reset bool `json:"reset,omitempty"`
	}
	errorFrame struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
)

func encodeWelcome(user, game string, resumed bool) []byte {
	return mustJSON(welcomeFrame{Type: wire.TypeWelcome, User: user, Game: game, Resumed: resumed})
}

func encodeError(code, msg string) []byte {
	return mustJSON(errorFrame{Type: wire.TypeError, Code: code, Message: msg})
}

func encodeGap(id, msg string) []byte {
	return mustJSON(gapFrame{Type: wire.TypeGap, ID: id, Message: msg})
}

func encodeResetGap(msg string) []byte {
	return mustJSON(gapFrame{Type: wire.TypeGap, Message: msg, Reset: true})
}

// encodeOutput turns a stream entry into the browser's frame. withID=false
// is for GMCP and MSDP state replayed at attach: those entries are older than the
// backlog and must not move the browser's resume point back.
func encodeOutput(o store.Output, withID bool) ([]byte, error) {
	id := o.ID
	if !withID {
		id = ""
	}
	// The text of text and input entries read for relaying is still JSON,
	// as encoding/json wrote it (store.Output.RawText): copied into the
	// frame it gives the bytes json.Marshal of the frame would, without
	// decoding and encoding the text again. Ids are stream ids, which JSON
	// writes as they are; anything else goes the slow way.
	passID := id == "" || store.ValidStreamID(id)
	var v any
	switch o.Kind {
	case store.OutText:
		if o.RawText != "" && passID {
			return appendOutputFrame(id, o.RawText, o.Prompt), nil
		}
		v = outputFrame{Type: wire.TypeOutput, ID: id, Text: o.PlainText(), Prompt: o.Prompt}
	case store.OutInput:
		switch {
		case o.Redacted:
			v = inputFrame{Type: wire.TypeInput, ID: id, Redacted: true}
		case o.RawText != "" && passID:
			return appendInputFrame(id, o.RawText), nil
		default:
			v = inputFrame{Type: wire.TypeInput, ID: id, Text: o.PlainText()}
		}
	case store.OutGMCP:
		data := o.Data
		if len(data) == 0 || !json.Valid(data) {
			data = json.RawMessage("null")
		}
		v = gmcpFrame{Type: wire.TypeGMCP, ID: id, Package: o.Package, Data: data}
	case store.OutMSDP:
		val := o.Data
		if len(val) == 0 || !json.Valid(val) {
			val = json.RawMessage(`""`)
		}
		v = msdpFrame{Type: wire.TypeMSDP, ID: id, Var: o.Package, Val: val}
	case store.OutEcho:
		v = echoFrame{Type: wire.TypeEcho, ID: id, Server: o.Echo}
	case store.OutStatus:
		v = statusFrame{Type: wire.TypeStatus, ID: id, State: o.State, Message: o.PlainText()}
	case store.OutGap:
		msg := o.PlainText()
		if msg == "" {
			msg = "some output was lost"
		}
		v = gapFrame{Type: wire.TypeGap, ID: id, Message: msg}
	default:
		return nil, fmt.Errorf("output entry %s: unknown kind %q", o.ID, o.Kind)
	}
	return json.Marshal(v)
}

// appendOutputFrame is json.Marshal(outputFrame{...}) for a text already
// encoded as a JSON string and an id JSON writes as it is.
func appendOutputFrame(id, textJSON string, prompt bool) []byte {
	const head, mid = `{"type":"` + wire.TypeOutput + `","id":"`, `","text":`
	b := make([]byte, 0, len(head)+len(id)+len(mid)+len(textJSON)+len(`,"prompt":false}`))
	b = append(b, head...)
	b = append(b, id...)
	b = append(b, mid...)
	b = append(b, textJSON...)
	if prompt {
		return append(b, `,"prompt":true}`...)
	}
	return append(b, `,"prompt":false}`...)
}

// appendInputFrame is json.Marshal(inputFrame{...}) for a line that is not
// redacted, already encoded as a (non-empty) JSON string.
func appendInputFrame(id, textJSON string) []byte {
	const head, mid = `{"type":"` + wire.TypeInput + `","id":"`, `","text":`
	b := make([]byte, 0, len(head)+len(id)+len(mid)+len(textJSON)+1)
	b = append(b, head...)
	b = append(b, id...)
	b = append(b, mid...)
	b = append(b, textJSON...)
	return append(b, '}')
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own frame structs of strings and bools come here.
		panic("edge: encode frame: " + err.Error())
	}
	return b
}
