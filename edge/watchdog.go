package edge

import (
	"context"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// failoverRetryAfter is how many checks the watchdog waits for a session
// it re-attached to show a lease before it publishes the attach again, and
// failoverTries how often it does so before leaving it to the player.
const (
	failoverRetryAfter = 10
	failoverTries      = 5
)

// watchParts is how many ticks one LeaseCheck is split into. The
// watchdog used to read every watched session's lease (and look at every
// viewer's outstanding lines) at one instant each LeaseCheck: at 1,000
// sessions that burst added about 0.5 ms to the echo p99 (issue 17). Live
// messages waited behind it on Redis and on the hub lock, which copying
// every session's viewers held for 0.13 ms at 1,000 sessions and 2.4 ms
// at 10,000, twice a pass; a tenth of them takes 13 µs and 0.15 ms. A
// tenth of the sessions every LeaseCheck/10 still checks each session
// once per LeaseCheck.
const watchParts = 10

// watchdogBatch bounds the leases read in one pipelined round trip, so a
// part over a busy edge (1,000 sessions at 10,000) does not hold Redis
// for one long run of commands while every other client waits.
const watchdogBatch = 100

// watchdog re-attaches this edge's viewers when the worker holding their
// session died or drained (contract item 6). Every LeaseCheck it reads the
// lease of each session it has viewers for, spread over watchParts ticks
// (see hub.watchPart). A lease that vanished, or whose fence changed,
// while the last status relayed is not a final one (disconnected,
// failed) means the game connection was lost or moved without the player
// asking: the edge publishes an attach with reason "failover" for each of
// its viewers, so a live worker starts (or, for a moved session, learns
// about) them.
func (s *Server) watchdog(ctx context.Context) {
	t := time.NewTicker(s.cfg.LeaseCheck / watchParts)
	defer t.Stop()
	for part := 0; ; part = (part + 1) % watchParts {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap := s.hub.watchPart(part, watchParts)
		s.expireInputsOf(snap)
		s.checkLeasesOf(ctx, snap)
		if part == watchParts-1 {
			s.watchdogPasses.Add(1)
		}
	}
}

// expireInputs tells every viewer about its lines no worker recorded in
// time. The watchdog does it for its part of the sessions on each tick:
// the timeout is 10 s, and a check every LeaseCheck (2 s) is precise
// enough without a timer per line.
func (s *Server) expireInputs() { s.expireInputsOf(s.hub.snapshot()) }

func (s *Server) expireInputsOf(snap map[*session][]*client) {
	now := s.now()
	for _, viewers := range snap {
		for _, c := range viewers {
			c.expireInput(now)
		}
	}
}

// checkLeases checks every session at once (tests; the watchdog checks
// its part on each tick).
func (s *Server) checkLeases(ctx context.Context) { s.checkLeasesOf(ctx, s.hub.snapshot()) }

func (s *Server) checkLeasesOf(ctx context.Context, snap map[*session][]*client) {
	if len(snap) == 0 {
		return
	}
	sessions := make([]*session, 0, len(snap))
	for sess := range snap {
		sessions = append(sessions, sess)
	}
	for start := 0; start < len(sessions); start += watchdogBatch {
		batch := sessions[start:min(start+watchdogBatch, len(sessions))]
		keys := make([]store.SessionKey, len(batch))
		// The fences known before the read: if the lease is gone, every
		// one of them is dead. (One learnt after the read may be a new
		// owner's.)
		known := make([]int64, len(batch))
		for i, sess := range batch {
			keys[i] = sess.key
			known[i] = sess.knownFence()
		}
		if f := s.leaseReadHook.Load(); f != nil {
			(*f)(keys)
		}
		states, err := s.st.GetLeases(ctx, keys)
		if err != nil {
			if ctx.Err() == nil {
				s.m.redisErrors.Inc()
				s.log.Debug("watchdog lease read failed", "sessions", len(keys), "err", err)
			}
			return
		}
		for i, sess := range batch {
			dead := known[i]
			if states[i].Live {
				dead = states[i].Lease.Fence - 1 // fences below the live one
			}
			for _, c := range snap[sess] {
				c.inputLeaseGone(dead)
			}
			if s.needsFailover(ctx, sess, states[i].Lease, states[i].Live, known[i]) {
				s.failover(ctx, sess, snap[sess])
			}
		}
	}
}

// needsFailover compares the lease with the one the viewers were attached
// to, and keeps the session's routing up to date.
//
// known is the highest fence the session's output showed before the lease
// was read. A lease this edge never read (watched 0) can still have been
// lost: an owner that self-fenced while Redis was away, before the edge's
// first successful lease read, left output under its fence and no lease.
// That session needs a failover as much as one whose lease the edge saw
// vanish; without this its player waited with no status, forever.
func (s *Server) needsFailover(ctx context.Context, sess *session, l store.Lease, ok bool, known int64) bool {
	sess.setReadRoute(l, ok, known)
	sess.mu.Lock()
	watched, lastID := sess.watched, sess.lastID
	switch {
	case ok && (watched == 0 || l.Fence == watched):
		sess.watched, sess.failoverTry = l.Fence, 0
		sess.mu.Unlock()
		return false
	case !ok && watched == 0 && known > 0 && sess.failoverAt.IsZero():
		sess.mu.Unlock()
		return !s.endedNormally(ctx, sess, lastID)
	case !ok && watched == 0:
		// Never saw a lease, or already re-attached and waiting for it.
		retry := !sess.failoverAt.IsZero() && sess.failoverTry < failoverTries &&
			time.Since(sess.failoverAt) > failoverRetryAfter*s.cfg.LeaseCheck
		sess.mu.Unlock()
		return retry && !s.endedNormally(ctx, sess, lastID)
	}
	sess.mu.Unlock()
	// The lease vanished or changed hands: was it the game that ended?
	return !s.endedNormally(ctx, sess, lastID)
}

// endedNormally reads the stream after the last entry the edge saw, so a
// final status lost on the live path is not missed, and reports whether
// the session's last status says it ended on purpose.
func (s *Server) endedNormally(ctx context.Context, sess *session, after string) bool {
	for range backlogPages {
		page, err := s.st.ReadBacklog(ctx, sess.key, after, backlogPage)
		if err != nil {
			s.m.redisErrors.Inc()
			return true // unknown: do not restart on a guess
		}
		if page.Reset {
			// The stream lost the entries after its newest (see
			// writer.lostPosition): what it holds from its start is what
			// is known, and its last status is the one that counts.
			sess.rewind("")
		}
		for _, o := range page.Entries {
			sess.observe(o)
		}
		if len(page.Entries) < backlogPage {
			break
		}
		after = page.Entries[len(page.Entries)-1].ID
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	switch sess.lastStatus {
	case store.StateDisconnected, store.StateFailed:
		sess.watched, sess.failoverAt, sess.failoverTry = 0, time.Time{}, 0
		return true
	}
	return false
}

func (s *Server) failover(ctx context.Context, sess *session, viewers []*client) {
	sess.mu.Lock()
	sess.watched = 0
	sess.failoverAt = time.Now()
	sess.failoverTry++
	sess.mu.Unlock()
	s.log.Info("session lost its worker; re-attaching", "session", sess.key.String(), "viewers", len(viewers))
	for _, c := range viewers {
		if err := s.publishAttach(ctx, sess.key, c, "failover"); err != nil {
			s.m.redisErrors.Inc()
			s.log.Warn("failover attach failed", "session", sess.key.String(), "err", err)
			continue
		}
		s.m.failovers.Inc()
	}
}
