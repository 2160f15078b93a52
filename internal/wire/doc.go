// Package wire is the one definition of the browser protocol's vocabulary
// (docs/PROTOCOL.md): the message types each side sends, the close codes an
// edge ends a WebSocket with and which of them are final, and the error
// codes of error frames. The edge speaks it; the drills, the bench and the
// tests that play a browser read it through Frame; and a test here checks
// the web client's tables (edge/web/static/protocol.js) against it, so the
// browser, the Go clients and the edge cannot drift apart silently.
//
// It holds names and numbers only, no I/O and no encoding of the edge's own
// frames (that is the edge's hot path and stays in package edge).
package wire
