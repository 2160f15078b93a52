package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType says what a Command asks for.
type CommandType string

// Commands on the control stream (any worker may take them) and on a
// worker's inbox (meant for the owner of a session).
const (
	CmdAttach CommandType = "attach" // a viewer wants (user, game): start it or re-attach
	CmdDetach CommandType = "detach" // a viewer left
	CmdStop   CommandType = "stop"   // end the session (player or operator asked)
	CmdResize CommandType = "resize" // a viewer's window changed (inbox only)
	CmdInput  CommandType = "input"  // a line typed by the player (input channel only)
	CmdGMCP   CommandType = "gmcp"   // a GMCP message from the client (input channel only)
	CmdMSDP   CommandType = "msdp"   // an MSDP message from the client: Package is the variable or command, Data its value as JSON (input channel only)
)

// Command is one request about a session. The same envelope travels on the
// control stream, in worker inboxes and on the input channel, so a worker can
// forward an attach to the owner unchanged.
type Command struct {
	Type   CommandType `json:"type"`
	User   string      `json:"user"`
	Game   string      `json:"game"`
	Fence  int64       `json:"fence,omitempty"`  // the lease fence the sender saw (inbox, input)
	Viewer string      `json:"viewer,omitempty"` // one browser connection
	Edge   string      `json:"edge,omitempty"`   // the edge holding the viewer
	Cols   int         `json:"cols,omitempty"`
	Rows   int         `json:"rows,omitempty"`
	IP     string      `json:"ip,omitempty"` // the player's address, for MNES
	// ScreenReader: the player's page is in screen-reader mode (MTTS bit
	// 64 for a game connection this attach starts).
	ScreenReader bool            `json:"sr,omitempty"`
	Text         string          `json:"text,omitempty"`
	Package      string          `json:"package,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Correlation  string          `json:"correlation,omitempty"` // ties everything an attach caused together
	// Seq numbers a viewer's input lines (1, 2, ...) so the edge can tell
	// which of them the worker recorded and which were lost with an owner
	// that stopped (input only).
	Seq  uint64    `json:"seq,omitempty"`
	Time time.Time `json:"time,omitzero"` // zero on input: nobody needs it on the hot path
}

// Key is the session the command is about.
func (c Command) Key() SessionKey { return SessionKey{User: c.User, Game: c.Game} }

// Validate rejects commands that no handler could act on.
func (c Command) Validate() error {
	switch c.Type {
	case CmdAttach, CmdDetach, CmdStop, CmdResize, CmdInput, CmdGMCP, CmdMSDP:
	default:
		return fmt.Errorf("command type %q unknown", c.Type)
	}
	if c.User == "" || c.Game == "" {
		return fmt.Errorf("%s command without user or game", c.Type)
	}
	return nil
}

func decodeCommand(v any) (Command, error) {
	s, ok := v.(string)
	if !ok {
		return Command{}, fmt.Errorf("command field has type %T", v)
	}
	var c Command
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	return c, c.Validate()
}
