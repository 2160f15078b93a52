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
// renewals keep failing, sessions are stopped before their lease can have
// expired (self-fence), so two game connections for one (user, game) never
// both talk.
//
// # Output
//
// A session's reader never waits for Redis. Events go to the session's
// outbox, where text is coalesced; the flusher writes the outboxes of all
// sessions that have something FlushDelay after the first of them did (or at
// once past FlushBytes), in one pipelined round trip. While Redis is away the
// outboxes fill up to SessionBuffer bytes each, then drop their oldest text,
// and a gap entry tells viewers how much was lost once Redis is back. Seq
// numbers are given at write time, so they have no holes.
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
