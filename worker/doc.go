// Package worker runs Trellis's telnet sessions: one supervised child per
// (user, game), holding the game connection on the player's behalf while
// browsers come and go.
//
// A Worker is three things wired together:
//
//   - the controller (package controller) pulls attach, detach and stop
//     commands from the control stream and decides, from leases, whether to
//     start a session here, hand the command to a session running here, or
//     forward it to the worker that owns it;
//   - a typed dynamic supervisor (package worker/supervisor) whose children
//     are sessions: a child dials the game from the registry, runs the
//     telnet engine (package worker/telnet) and is redialled with backoff
//     when the connection fails, up to RestartIntensity times per
//     RestartPeriod; a game that hangs up cleanly ends the session;
//   - the plumbing sessions share: one output flusher, one lease renewer,
//     one inbox reader, one input subscriber and one viewer pruner.
//
// # Ownership and fences
//
// A session exists only under a lease (store.AcquireLease), and everything it
// writes carries the lease's fence: output entries are refused by Redis once
// the fence is stale, and player input whose fence is not the session's is
// dropped here. Leases are renewed every LeaseTTL/3 in one round trip; a
// lease the renewal reports lost stops its session at once, and when
// renewals keep failing (or hang), sessions are stopped before their lease
// can have expired (self-fence): each renewal is given only the time left
// before the earliest lease runs out, so two game connections for one
// (user, game) never both talk.
//
// # Output
//
// Events go to the session's outbox, where text is coalesced; one flusher
// writes the outboxes of all sessions that have something in one pipelined
// round trip, as soon as its previous round trip returned (FlushDelay adds
// a wait; FlushBytes makes a session urgent). While Redis is healthy a
// session more than 4×FlushBytes behind stops reading its game until the
// flusher catches up, so a flood loses nothing. While writes fail the
// reader keeps reading: outboxes fill up to SessionBuffer bytes each, then
// drop their oldest text, and a gap entry tells viewers how much was lost
// once Redis is back. Seq numbers are given once and kept across retries,
// so Redis refuses a repeated write; entries dropped during an outage leave
// holes in the numbering, and edges re-read the stream on a hole.
//
// Text goes through package worker/mxp on its way (mxp.go): for a game
// whose registry entry opted in to MXP it becomes the inline encoding
// (SGR, OSC 8, the private OSC 7701 command links); for every game, a
// command link the game forged itself is stripped.
//
// Player input is written to the transcript as an input entry, redacted
// while the game echoes (a password prompt): the text of such a line reaches
// the game and nothing else — no stream, no log. Input is never logged at
// all, only its length.
//
// # Lifecycle
//
// Viewers attach and detach through the controller; when the last one goes,
// an idle timer (IdleGrace, no goroutine while it waits) is armed, and an
// attach disarms it. Viewers held by an edge whose heartbeat vanished are
// forgotten every ViewerCheck. When Run's context ends, the worker drains:
// it stops pulling work, tells viewers, lets sessions run for DrainTimeout,
// then closes them with a "moving to another server" status and releases
// their leases, so edges re-attach them on other workers. Every step goes to
// the event log (store.AppendEvent) with the correlation id of the attach
// that caused it.
//
// Metrics (Prometheus, on a registry private to each Worker) and a health
// check are served by Handler, and on AdminListen by Run.
package worker
