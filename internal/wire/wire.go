package wire

import (
	"encoding/json"
	"slices"
)

// Types of the messages a browser sends.
const (
	TypeHello  = "hello"
	TypeInput  = "input"
	TypeGMCP   = "gmcp"
	TypeMSDP   = "msdp"
	TypeResize = "resize"
	// TypePing asks for a pong. Browsers cannot see WebSocket pings, so a
	// client that wakes up (a phone, a background tab) pings to learn at
	// once whether its socket survived, instead of waiting for a timeout.
	TypePing = "ping"
)

// Types of the frames an edge sends. TypeInput, TypeGMCP and TypeMSDP name
// frames in both directions.
const (
	TypeWelcome = "welcome"
	TypeOutput  = "output"
	TypeEcho    = "echo"
	TypeStatus  = "status"
	TypeGap     = "gap"
	TypeError   = "error"
	TypePong    = "pong"
)

// ClientTypes are the message types a browser may send.
var ClientTypes = []string{TypeHello, TypeInput, TypeGMCP, TypeMSDP, TypeResize, TypePing}

// ServerTypes are the frame types an edge sends.
var ServerTypes = []string{TypeWelcome, TypeOutput, TypeInput, TypeGMCP, TypeMSDP, TypeEcho, TypeStatus, TypeGap, TypeError, TypePong}

// Close codes an edge ends a WebSocket with.
const (
	CloseGoingAway       = 1001 // the edge shuts down: reconnect elsewhere
	CloseMessageTooBig   = 1009 // a frame over the hard limit (1 MiB)
	CloseInternal        = 1011 // the edge failed (Redis away): reconnect with backoff
	CloseProtocol        = 4000 // no hello in time, hello twice, a message before hello
	CloseUnauthorized    = 4001 // bad, expired or missing token
	CloseUnknownGame     = 4004 // the game is not in the registry
	CloseTooSlow         = 4008 // the browser did not keep up; its output stays in the stream
	CloseTooManySessions = 4029 // the user has too many sessions
)

// CloseCodes are every close code an edge sends.
var CloseCodes = []int{CloseGoingAway, CloseMessageTooBig, CloseInternal, CloseProtocol, CloseUnauthorized, CloseUnknownGame, CloseTooSlow, CloseTooManySessions}

// FinalCloseCodes are the close codes after which a client does not
// reconnect: the request itself is wrong, and would fail the same way.
var FinalCloseCodes = []int{CloseProtocol, CloseUnauthorized, CloseUnknownGame, CloseTooManySessions}

// Final reports whether a client must not reconnect after code. Codes an
// edge never sends (1006 when the network failed, say) are not final.
func Final(code int) bool { return slices.Contains(FinalCloseCodes, code) }

// Codes of error frames.
const (
	ErrBadRequest      = "bad_request"
	ErrUnknownGame     = "unknown_game"
	ErrUnauthorized    = "unauthorized"
	ErrTooManySessions = "too_many_sessions"
	ErrRateLimited     = "rate_limited"
	ErrLineTooLong     = "line_too_long"
	ErrNoSession       = "no_session"
	// ErrInputLost says lines the edge relayed were never recorded by the
	// game's session: the worker holding it stopped or handed it over, or
	// did not confirm them in time. It counts the lines and never quotes
	// them (one may be a password).
	ErrInputLost = "input_lost"
	ErrInternal  = "internal"
)

// ErrorCodes are every error code an edge sends.
var ErrorCodes = []string{ErrBadRequest, ErrUnknownGame, ErrUnauthorized, ErrTooManySessions, ErrRateLimited, ErrLineTooLong, ErrNoSession, ErrInputLost, ErrInternal}

// ErrorClose maps the error codes an edge always follows with a close to
// that close code. bad_request and internal are not here: after most of
// them the connection stays up (a frame the edge could not take, a single
// input that failed), and when one is followed by a close, the close code
// says so.
var ErrorClose = map[string]int{
	ErrUnauthorized:    CloseUnauthorized,
	ErrUnknownGame:     CloseUnknownGame,
	ErrTooManySessions: CloseTooManySessions,
}

// CloseError is the error frame an edge sends just before it closes with a
// code, so the page can say why (the close reason is for logs and tools).
// The codes not here (going away, too slow, too big) come without one.
var CloseError = map[int]string{
	CloseProtocol:        ErrBadRequest,
	CloseUnauthorized:    ErrUnauthorized,
	CloseUnknownGame:     ErrUnknownGame,
	CloseTooManySessions: ErrTooManySessions,
	CloseInternal:        ErrInternal,
}

// LineRefused are the error codes with which an edge answers a line it did
// not send to the game: a client keeps the line for the player to retry.
var LineRefused = []string{ErrNoSession, ErrRateLimited, ErrLineTooLong, ErrBadRequest, ErrInternal}

// Frame is any frame an edge sends, decoded loosely: the fields of every
// type side by side (no two types give one field name two meanings). It is
// for Go programs that play a browser (tests, drills, the bench); the edge
// encodes each type with its own struct.
type Frame struct {
	Type string `json:"type"`
	// ID is the output stream id of a frame that came from the stream.
	ID string `json:"id"`

	Text     string `json:"text"`     // output, input
	Prompt   bool   `json:"prompt"`   // output
	Redacted bool   `json:"redacted"` // input
	Server   bool   `json:"server"`   // echo
	State    string `json:"state"`    // status

	Package string          `json:"package"` // gmcp
	Data    json.RawMessage `json:"data"`    // gmcp
	Var     string          `json:"var"`     // msdp
	Val     json.RawMessage `json:"val"`     // msdp

	Message string `json:"message"` // status, gap, error
	Reset   bool   `json:"reset"`   // gap: forget the resume point
	Code    string `json:"code"`    // error

	User    string `json:"user"`    // welcome
	Game    string `json:"game"`    // welcome
	Resumed bool   `json:"resumed"` // welcome
}
