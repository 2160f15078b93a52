package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/internal/dialguard"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/telnet"
)

// The end of a session, in one place. Whatever ends it (the game, a stop,
// idleness, a drain, a lost lease, a self-fence), the worker records an
// endReason with setEnd, the supervisor stops the child, and finish writes
// the one final status the player sees, releases what the session held and
// leaves a gap for any output it could not store.
//
// Precedence: the first reason recorded wins, with one exception: losing
// the lease (lost or self-fenced) overrides any other reason, because from
// then on nothing may be written for the session, not even its final
// status. A session stopped for idleness that then loses its lease is
// reported lost; one that lost its lease and is then drained stays lost.

// endReason says why the worker itself ended a session.
type endReason int32

const (
	endNone      endReason = iota
	endGameQuit            // the game closed the connection
	endFatal               // nothing to retry (unknown game, bad charset, refused address)
	endIdle                // no viewer for IdleGrace
	endStop                // a stop command
	endDrain               // the worker is shutting down
	endLeaseLost           // another worker owns the key now
	endSelfFence           // leases could not be renewed in time
)

func (r endReason) leaseGone() bool { return r == endLeaseLost || r == endSelfFence }

// setEnd records why the worker ends s and reports whether it changed the
// reason: the first reason wins, except that a lost lease overrides the
// others (see the precedence rule above).
func (s *session) setEnd(r endReason) bool {
	for {
		cur := endReason(s.end.Load())
		if cur == r || (cur != endNone && (!r.leaseGone() || cur.leaseGone())) {
			return false
		}
		if s.end.CompareAndSwap(int32(cur), int32(r)) {
			return true
		}
	}
}

func (s *session) endReason() endReason { return endReason(s.end.Load()) }

// endSession records r and stops s in the background (stopping waits for
// the game connection to close). It is the only way the worker ends a
// session; the supervisor's final event then reaches finish.
func (w *Worker) endSession(s *session, r endReason) {
	if !s.setEnd(r) {
		return
	}
	w.goBackground(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*w.cfg.CloseTimeout)
		defer cancel()
		if err := w.sup.Terminate(ctx, s.key); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
			w.log.Error("session did not stop", "key", s.key.String(), "err", err)
		}
	})
}

// loseLease ends a session whose lease is gone (r is endLeaseLost: another
// owner or expired) or may be gone (endSelfFence: renewals failed past the
// TTL). Its outbox is closed at once: whatever it holds can no longer be
// written, and is counted for the gap finish leaves. It reports whether
// this call was the one that took the lease away.
func (w *Worker) loseLease(s *session, r endReason, why string) bool {
	if !s.lost.CompareAndSwap(false, true) {
		return false
	}
	s.out.close()
	if r == endSelfFence {
		w.m.selfFences.Inc()
	} else {
		w.m.leasesLost.Inc()
		w.log.Warn("lease lost; stopping session", "key", s.key.String(), "fence", s.lease.Fence, "why", why)
		w.event(store.EvLeaseLost, s.key, s.correlation, map[string]any{"fence": s.lease.Fence, "why": why})
	}
	w.endSession(s, r)
	return true
}

// selfFence stops the sessions whose lease may be gone by deadline. why
// says what made renewals late, for the log line operators look for.
func (w *Worker) selfFence(sessions []*session, deadline time.Time, why string) {
	n := 0
	for _, s := range sessions {
		if s.validUntil.Load() > deadline.UnixNano() {
			continue
		}
		if w.loseLease(s, endSelfFence, why) {
			n++
		}
	}
	if n == 0 {
		return
	}
	w.fenced.Store(true)
	w.log.Error("self-fenced: leases could not be renewed before they expire; sessions stopped", "sessions", n, "why", why)
	w.event(store.EvWorkerSelfFenced, store.SessionKey{}, "", map[string]any{"sessions": n, "why": why})
}

// onChildEvent turns supervisor events into statuses, events and clean-up.
// It runs on the child's own goroutine, which is why the final clean-up
// (a few Redis round trips) may run here: a new child for the same key
// starts only after it, and only after the lease it releases.
func (w *Worker) onChildEvent(ev supervisor.Event) {
	key, _ := ev.Key.(store.SessionKey)
	w.mu.Lock()
	s := w.sessions[key]
	w.mu.Unlock()
	if s == nil {
		return
	}
	switch ev.Kind {
	case supervisor.EventRestarting:
		w.m.restarts.Inc()
		s.mu.Lock()
		what := "could not reach the game"
		if s.everLive {
			what = "lost the game connection"
		}
		// The restart event carries no reason: the exit before it does.
		cause := s.lastExit
		s.mu.Unlock()
		s.status(store.StateConnecting, fmt.Sprintf("%s (%s); retrying in %s", what, playerReason(cause), ev.Delay.Round(100*time.Millisecond)))
		data := map[string]any{"attempt": ev.Attempt, "delay": ev.Delay.String()}
		if cause != nil {
			data["error"] = cause.Error()
		}
		w.event(store.EvSessionRestarting, key, s.correlation, data)
	case supervisor.EventExited:
		s.mu.Lock()
		s.lastExit = ev.Reason
		s.mu.Unlock()
		if ev.Reason != nil && s.endReason() == endNone {
			w.log.Info("game connection ended", "key", key.String(), "attempt", ev.Attempt, "err", ev.Reason)
		}
	case supervisor.EventGaveUp, supervisor.EventStopped:
		w.finish(s, ev)
	}
}

// finish writes a session's last status, then releases what it held:
// record, transcript retention, lease; and, if the lease went away under
// it, leaves a gap for the output it could not store.
func (w *Worker) finish(s *session, ev supervisor.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*w.cfg.CloseTimeout)
	defer cancel()
	s.mu.Lock()
	s.stopIdleLocked()
	s.stopHoldLocked()
	s.mu.Unlock()

	state, msg, evType := store.StateDisconnected, "", store.EvSessionEnded
	reason := s.endReason()
	var cause error // the full error, for operators; players get a short reason
	if ev.Kind == supervisor.EventGaveUp && !reason.leaseGone() {
		state, msg, evType = store.StateFailed, "could not keep a connection to the game: "+playerReason(ev.Reason), store.EvSessionFailed
		reason, cause = endFatal, ev.Reason
	} else {
		switch reason {
		case endGameQuit:
			msg = "the game closed the connection"
		case endFatal:
			state = store.StateFailed
			evType = store.EvSessionFailed
			if p := s.fatalMsg.Load(); p != nil {
				msg = *p
			}
			cause = s.fatalErr
		case endIdle:
			msg = fmt.Sprintf("closed after %s without a viewer", w.cfg.IdleGrace)
		case endStop:
			msg = "session stopped"
			s.mu.Lock()
			if s.stopReason != "" {
				msg = "session stopped: " + s.stopReason
			}
			s.mu.Unlock()
		case endLeaseLost, endSelfFence:
			state = "" // the lease is gone: nothing can be written
		default: // endDrain, or the supervisor shut down
			reason = endDrain
			state, msg = store.StateDraining, "moving to another server"
		}
	}
	if state != "" {
		s.status(state, msg)
		if !w.out.flushSession(ctx, s) {
			w.log.Warn("final output not written", "key", s.key.String())
		}
	}
	s.out.close()
	// A write in flight when the lease went is refused or fails: either
	// way its entries count toward the gap, once it has returned.
	if ch := s.out.drained(); ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	// The gap goes first: the calls below wait for Redis if it is away,
	// and the gap should be in the stream as soon as Redis is back.
	if lost := s.out.discardedBytes(); lost > 0 {
		w.m.lostBytes.Add(float64(lost))
		w.goBackground(func() { w.reportLostGap(s, lost) })
	}
	if state == store.StateDisconnected || state == store.StateFailed {
		if err := w.st.ExpireTranscript(ctx, s.key, w.cfg.TranscriptTTL); err != nil {
			w.m.redisErrors.WithLabelValues("expire_transcript").Inc()
		}
	}
	if err := w.st.DeleteSession(ctx, s.key, s.lease.Session); err != nil {
		w.m.redisErrors.WithLabelValues("delete_session").Inc()
	}
	w.mu.Lock()
	if w.sessions[s.key] == s {
		delete(w.sessions, s.key)
	}
	w.mu.Unlock()
	if reason != endLeaseLost {
		// Given up, not lost: a renewal round that still holds this
		// session neither renews the lease nor reports it lost when Redis
		// refuses it (the release below can reach Redis first).
		s.lost.Store(true)
		if err := w.st.ReleaseLease(ctx, s.lease); err != nil {
			w.m.redisErrors.WithLabelValues("release_lease").Inc()
		}
	}
	label := state
	if label == "" {
		label = "lost"
	}
	w.m.ended.WithLabelValues(label).Inc()
	data := map[string]any{"state": label, "fence": s.lease.Fence, "reason": reasonName(reason)}
	if msg != "" {
		data["message"] = msg
	}
	if cause != nil {
		data["error"] = cause.Error()
	}
	if lost := s.out.discardedBytes(); lost > 0 {
		data["lost_bytes"] = lost
	}
	w.event(evType, s.key, s.correlation, data)
}

// reportLostGap leaves a gap entry for output a session read from its game
// but could not store because its lease went away (it is written with the
// session's old fence, which the store allows for gap entries only). Redis
// may be what went away, so it retries until Redis answers or the worker
// stops; a gap written twice (a reply lost) is harmless, a gap never
// written is a silent hole.
func (w *Worker) reportLostGap(s *session, lost int64) {
	// Short: players are waiting for the gap the moment Redis is back.
	retry := backoff.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(w.life, 2*time.Second)
		id, err := w.st.AppendLostGap(ctx, s.key, s.lease.Fence, w.id, lost)
		cancel()
		switch {
		case err == nil && id == "":
			// The transcript is gone (expired): nobody can resume into
			// the hole, so there is nothing to mark.
			w.log.Info("output lost with the lease; the transcript no longer exists", "key", s.key.String(), "bytes", lost)
			return
		case err == nil:
			w.log.Info("gap recorded for output lost with the lease", "key", s.key.String(), "bytes", lost, "id", id)
			return
		case errors.Is(err, store.ErrFenceNotIssued):
			// Permanent: Redis does not know this fence (its data was
			// lost), so no retry can place the gap.
			w.log.Warn("gap for lost output not recorded: Redis does not know the fence", "key", s.key.String(), "bytes", lost, "err", err)
			return
		}
		if w.life.Err() != nil {
			w.log.Warn("gap for lost output not recorded: worker stopping", "key", s.key.String(), "bytes", lost, "err", err)
			return
		}
		if attempt == 0 || attempt%20 == 0 {
			w.log.Warn("gap for lost output not recorded yet; retrying", "key", s.key.String(), "bytes", lost, "err", err)
		}
		w.m.redisErrors.WithLabelValues("append_lost_gap").Inc()
		if retry.Wait(w.life) != nil {
			return
		}
	}
}

func reasonName(r endReason) string {
	switch r {
	case endGameQuit:
		return "game_closed"
	case endFatal:
		return "failed"
	case endIdle:
		return "idle"
	case endStop:
		return "stopped"
	case endLeaseLost:
		return "lease_lost"
	case endSelfFence:
		return "self_fenced"
	case endDrain:
		return "drained"
	}
	return "unknown"
}

// playerReason says in a few words why a game connection failed, for the
// player's status line. The full error (addresses, the supervisor's
// bookkeeping) goes to the event log and the logs, not to the browser.
func playerReason(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	if r := tlsReason(err); r != "" {
		return r
	}
	switch {
	case err == nil:
		return "the connection ended"
	case errors.Is(err, dialguard.ErrRefused):
		return "the game's address is not allowed on this server"
	case errors.Is(err, errGameNotReading):
		return "the game stopped reading what was sent to it"
	case errors.Is(err, telnet.ErrCompression):
		return "the game's compressed stream was corrupt"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the game refused the connection"
	case errors.As(err, &dnsErr):
		return "the game's address could not be found"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "the game did not answer in time"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the game closed the connection"
	}
	return "the connection kept failing"
}
