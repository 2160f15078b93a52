// Package edge is the stateless front door of Trellis: it serves the web
// client, speaks the JSON WebSocket protocol with browsers (docs/PROTOCOL.md)
// and moves their traffic through Redis to whichever worker holds their game
// connection. Kill an edge and nothing is lost: browsers reconnect to another
// one and resume from the output stream.
//
// # Routes
//
//	GET /                 the games list (static/index.html, fetches /api/games)
//	GET /play/<game>      the client page; 404 for a game not in the registry;
//	                      sets the guest cookie in guest mode
//	GET /static/...       the embedded client (package edge/web)
//	GET /api/games        [{"id","name","description","players"}], players from MSSP or null
//	GET /ws               the WebSocket
//	GET /healthz /readyz  liveness; readiness = serving and Redis heartbeat ok
//	GET /metrics          Prometheus, on a registry private to the Server
//
// # How a connection works
//
// Each browser connection is a client (client.go). The socket's reader
// (ws.go), its one goroutine while it is idle, hands each message to the
// client, which answers hello, input, gmcp, msdp and resize; the writer
// (writer.go) is the only one that writes, through a transport
// (transport.go: a frame, several frames in one write(2), a close carrying
// a Disconnect, a ping). It is a goroutine started when there is something
// to write and ending when nothing is left; one goroutine of the server
// (the pinger) asks each writer for its keep-alive pings. The
// WebSocket is one transport; tests drive the protocol through one in
// memory. A Disconnect (close code and reason) is an error: what decides
// that a connection ends returns one. Input goes through the session
// (route.go); the per-user session limit is the server's (limits.go). The
// names and numbers of the protocol are package internal/wire's, shared with
// the web client, the drills and the bench.
//
// Live output reaches clients through the hub (hub.go), which holds the sessions and their viewers; the store's
// Subscriber owns the pub/sub connection(s) and calls the hub back with
// each message: the first viewer of a session subscribes its channel, the
// last one unsubscribes it (never under the fan-out lock), and each
// message is decoded once and queued to every viewer without blocking. A
// browser whose queue fills (Config.SendQueue) is closed with 4008; its
// output stays in the stream and it resumes from there.
//
// Attach order is what makes resume exact: subscribe and wait for Redis to
// confirm, then read the stream after the browser's resume id, then relay
// live messages, dropping ids already sent. Each entry carries a per-fence
// sequence number; a hole means a live message was lost, and the writer
// re-reads the stream from its last id. After a subscription is lost and comes
// back (the store's Subscriber calls Recovered), that session's viewers
// re-read the same way.
//
// Input goes to the session's owner (from its lease, cached and refreshed
// when output shows a new fence or the owner stops listening) with the
// lease's fence; with no lease the browser hears no_session. A publish
// that reaches a channel is not a line that reaches the game (a worker
// paused past its lease still subscribes), so each line carries a number
// and stays outstanding (input.go) until the worker's input entry for it
// comes back on the stream. Lines still outstanding when a higher fence
// shows, when the watchdog finds their lease gone, or after
// inputAckTimeout are reported to the browser as input_lost: a count,
// never the text.
//
// A resume id the stream cannot place (not an id, or newer than its newest
// entry) gets the backlog from the start after a gap with reset: true, and
// the browser forgets it; it is never an error.
//
// The watchdog (watchdog.go) checks the leases of the sessions the edge has
// viewers for every Config.LeaseCheck (a tenth of them every tenth of it,
// so no instant carries the whole round), and re-publishes attaches (reason
// "failover") when a lease vanished or changed hands while the last status
// was not a final one, so a dead or drained worker's sessions move.
//
// Who the player is comes from package edge/auth: an HS256 token, or in
// guest mode a signed cookie.
package edge
