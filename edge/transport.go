package edge

import (
	"fmt"

	"github.com/trellis-mud/trellis/internal/wire"
)

// transport is a browser's socket as the client's writer sees it: every
// write to the browser goes through one, from the writer goroutine only.
// The WebSocket one is wsTransport (ws.go); tests drive the protocol
// through an in-memory one. Reading is not part of it: the socket's reader
// hands each message to client.receive.
//
// Modelled on centrifuge's Transport: a frame, several frames at once (the
// WebSocket one sends them in one write(2)), and a close that carries its
// reason; plus the keep-alive ping, which only the socket knows how to send.
type transport interface {
	// Write sends one text frame.
	Write(frame []byte) error
	// WriteMany sends frames in order, as if by Write each.
	WriteMany(frames ...[]byte) error
	// Ping sends a keep-alive the browser answers on its own.
	Ping() error
	// Close sends the close frame with d's code and reason and lets the
	// reader see the browser's answer for a grace period; the socket is
	// released when the reader returns. A transport that can no longer
	// write drops the connection at once.
	Close(d Disconnect) error
}

// Disconnect is why the edge ends a connection: the close code and reason
// the browser gets. It is an error, so code deciding that a connection must
// end returns one and the client closes with it (client.fail).
type Disconnect struct {
	Code   int
	Reason string
}

func (d Disconnect) Error() string {
	if d.Reason == "" {
		return fmt.Sprintf("close %d", d.Code)
	}
	return fmt.Sprintf("close %d: %s", d.Code, d.Reason)
}

// The disconnects the edge uses as they are; the others carry a reason
// made for the occasion.
var (
	disconnectGone     = Disconnect{Code: wire.CloseGoingAway}
	disconnectShutdown = Disconnect{Code: wire.CloseGoingAway, Reason: "edge shutting down"}
	disconnectTooSlow  = Disconnect{Code: wire.CloseTooSlow, Reason: "too slow"}
	disconnectTooBig   = Disconnect{Code: wire.CloseMessageTooBig, Reason: "message too big"}
	disconnectInternal = Disconnect{Code: wire.CloseInternal, Reason: "the edge cannot reach its store; retrying"}
)

func protocolError(reason string) Disconnect {
	return Disconnect{Code: wire.CloseProtocol, Reason: reason}
}
