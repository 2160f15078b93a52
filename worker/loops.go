package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/store"
)

// maxInputLine bounds one line of input; the edge refuses longer ones
// already, this is the worker not trusting the wire.
const maxInputLine = 16 << 10

// renewSlices is how many ticks one renewal interval (TTL/3) is cut into.
// Each session is renewed once per interval at a phase of its own
// (firstRenewal spreads the phases), so a tick renews about 1/renewSlices
// of the worker's leases. One pipeline of every lease at once (1,000
// sessions: 1,000 renew scripts of up to ten commands) held Redis and the
// worker's connections long enough to show in every neighbour's echo: the
// 1,000-session echo p99 fell from about 3.1 to 2.6 ms without it (see
// BENCHMARKS.md).
const renewSlices = 8

// firstRenewal is when a lease acquired (or renewed late) at t is next
// renewed: somewhere in the second half of the interval, at random, so
// that sessions started together (a worker's restart, a failover of a dead
// worker's sessions, a burst of arrivals) do not stay renewed together.
func firstRenewal(t time.Time, interval time.Duration) time.Time {
	return t.Add(interval/2 + rand.N(interval/2+1))
}

// renewLeases renews each live lease of the worker once per TTL/3, a
// tick's share at a time, in one pipelined round trip per tick. A lease
// the round reports lost stops its session. While renewals fail, it
// retries every TTL/10, and sessions whose lease may have expired by the
// next retry are stopped (self-fence): another worker may own them by
// then, and two game connections must never both talk.
//
// A renewal also extends the session's transcript expiry, but only when
// that is due (keepDue, or a quarter of the transcript TTL since the last
// time): the six PEXPIREs it costs were most of a renewal's commands, and
// of the writes Redis replicates for an idle session.
func (w *Worker) renewLeases(ctx context.Context) error {
	ttl := w.cfg.LeaseTTL
	interval := ttl / 3
	tick := max(interval/renewSlices, time.Millisecond)
	retry := max(ttl/10, 50*time.Millisecond)
	keepEvery := max(w.cfg.TranscriptTTL/4, interval)
	t := time.NewTicker(tick)
	defer t.Stop()
	w.renewedAt.Store(time.Now().UnixNano())
	var (
		next    time.Time // no round before this (after a failure: the retry)
		contact = time.Now()
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := time.Now()
		if start.Before(next) {
			continue
		}
		live := liveSessions(w.snapshot())
		due := dueSessions(live, start.Add(tick/2))
		if len(due) == 0 && (len(live) > 0 || start.Sub(contact) < interval) {
			continue
		}
		// A renewal that hangs (Redis partitioned away rather than
		// refusing) must fail in time to self-fence before the earliest
		// lease can have expired, not up to a whole interval later.
		budget := interval
		for _, s := range due {
			if left := time.Duration(s.validUntil.Load()-start.UnixNano()) - retry; left < budget {
				budget = left
			}
		}
		if budget <= 0 {
			// The round itself is late: a lease's last renewal was most of
			// the TTL ago (Redis slow to answer, the process starved of
			// CPU). Say so: this path used to self-fence without a word.
			late := time.Duration(start.UnixNano() - w.renewedAt.Load())
			why := fmt.Sprintf("renewal round started %s after the last successful one (TTL %s)", late.Round(time.Millisecond), ttl)
			w.log.Warn("lease renewal late", "leases", len(due), "since_last", late, "ttl", ttl)
			w.selfFence(due, start.Add(retry), why)
			budget = retry
			// Only leases the worker still believes live are renewed:
			// that belief is what lets a renewal restore a lease Redis
			// forgot (store.RenewLeases).
			due = liveSessions(due)
		}
		rctx, cancel := context.WithTimeout(ctx, budget)
		r, err := w.renewSome(rctx, due, start, keepEvery)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.m.redisErrors.WithLabelValues("renew_leases").Inc()
			w.log.Warn("lease renewal failed", "leases", len(due), "err", err)
			w.selfFence(live, time.Now().Add(retry), "lease renewal failed: "+err.Error())
			next = start.Add(retry)
			continue
		}
		took := time.Since(start)
		w.m.renewSeconds.Observe(took.Seconds())
		if took > interval/2 {
			// A slow renewal eats the margin before the next one: the
			// warning comes before any self-fence it leads to.
			w.log.Warn("lease renewal slow", "leases", len(due), "took", took, "ttl", ttl)
		}
		contact = start
		w.renewedAt.Store(start.UnixNano())
		w.fenced.Store(false)
		for _, l := range r.Restored {
			w.leaseRestored(l)
		}
		gone := make(map[store.SessionKey]bool, len(r.Lost))
		for _, l := range r.Lost {
			gone[l.Key] = true
		}
		until := start.Add(ttl).UnixNano()
		for _, s := range due {
			if gone[s.key] {
				w.loseLease(s, endLeaseLost, "renewal refused: another owner or expired")
				continue
			}
			s.validUntil.Store(until)
			if s.renewAt.Load() < start.Add(-tick).UnixNano() {
				// Overdue: renewals failed for a while (Redis away), and
				// every lease fell due together. Spread them again, or
				// they would stay one burst from now on.
				s.renewAt.Store(firstRenewal(start, interval).UnixNano())
			} else {
				s.renewAt.Store(start.Add(interval).UnixNano())
			}
		}
	}
}

// renewSome renews the leases of sessions in one round trip (two when
// some of them extend their transcript's expiry and some do not); with no
// sessions it only learns whether Redis answers, so that a fenced worker
// takes work again only once it does.
func (w *Worker) renewSome(ctx context.Context, sessions []*session, start time.Time, keepEvery time.Duration) (store.Renewal, error) {
	if len(sessions) == 0 {
		return store.Renewal{}, w.st.Ping(ctx)
	}
	var keep, plain []store.Lease
	var kept []*session
	for _, s := range sessions {
		at := s.keptAt.Load()
		if w.cfg.TranscriptTTL <= 0 {
			plain = append(plain, s.lease) // no expiry to keep (tests)
		} else if at == 0 || s.keepDue.Load() || start.Sub(time.Unix(0, at)) >= keepEvery {
			// Cleared before the round: an entry written during it may
			// have created a key after the round's PEXPIREs ran.
			s.keepDue.Store(false)
			keep = append(keep, s.lease)
			kept = append(kept, s)
		} else {
			plain = append(plain, s.lease)
		}
	}
	var r store.Renewal
	// The transcript is kept a refresh interval beyond its TTL: with the
	// expiry extended only every keepEvery, a worker that dies leaves it
	// for between TranscriptTTL and TranscriptTTL + keepEvery.
	for _, part := range []struct {
		leases []store.Lease
		keep   time.Duration
	}{{keep, w.cfg.TranscriptTTL + keepEvery}, {plain, 0}} {
		if len(part.leases) == 0 {
			continue
		}
		pr, err := w.st.RenewLeases(ctx, part.leases, w.cfg.LeaseTTL, part.keep)
		if err != nil {
			for _, s := range kept {
				s.keepDue.Store(true)
			}
			return r, err
		}
		r.Lost = append(r.Lost, pr.Lost...)
		r.Restored = append(r.Restored, pr.Restored...)
	}
	for _, s := range kept {
		s.keptAt.Store(start.UnixNano())
	}
	return r, nil
}

// liveSessions returns the sessions that have not lost their lease
// (reusing sessions' array).
func liveSessions(sessions []*session) []*session {
	live := sessions[:0]
	for _, s := range sessions {
		if !s.lost.Load() {
			live = append(live, s)
		}
	}
	return live
}

// dueSessions returns the sessions of live whose renewal is due by
// horizon, in a new slice.
func dueSessions(live []*session, horizon time.Time) []*session {
	var due []*session
	for _, s := range live {
		if s.renewAt.Load() <= horizon.UnixNano() {
			due = append(due, s)
		}
	}
	return due
}

// leaseRestored counts and reports a lease Redis had forgotten and a
// renewal restored: the visible trace of writes lost in a failover.
func (w *Worker) leaseRestored(l store.Lease) {
	w.m.restored.Inc()
	w.log.Warn("lease restored: Redis had lost it (a failover to a replica that missed writes, or a restore from an older snapshot)",
		"key", l.Key.String(), "fence", l.Fence)
	w.event(store.EvLeaseRestored, l.Key, "", map[string]any{"fence": l.Fence})
}

// subscribeInput subscribes the worker's input channel and waits (briefly)
// for Redis to confirm, so input sent right after a session starts finds a
// receiver. Unconfirmed, the subscription still stands: the store confirms
// it once Redis answers, and keeps it across reconnects until sub's Run
// ends.
func (w *Worker) subscribeInput(ctx context.Context, sub *store.Subscriber) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := sub.Subscribe(cctx, w.st.InputChannel(w.id)); err != nil {
		w.m.redisErrors.WithLabelValues("subscribe_input").Inc()
		w.log.Warn("input subscription not confirmed yet", "err", err)
	}
}

// inputHandler applies player input received on the worker's input
// channel, on the subscriber's receive goroutine.
type inputHandler struct{ w *Worker }

func (h inputHandler) Message(_, payload string) {
	cmd, err := store.ParseInput(payload)
	if err != nil {
		h.w.m.inputDropped.WithLabelValues("malformed").Inc()
		return
	}
	h.w.applyInput(cmd)
}

// Recovered has nothing to fetch: input is at most once by design, and
// the edges report the lines published meanwhile as lost (input_lost).
func (inputHandler) Recovered([]string) {}

// applyInput checks the fence and hands the input to its session. Input
// text is never logged: it may be a password.
func (w *Worker) applyInput(cmd store.Command) {
	s, ok := w.sup.Lookup(cmd.Key())
	switch {
	case !ok:
		w.m.inputDropped.WithLabelValues("no_session").Inc()
		return
	case cmd.Fence != s.lease.Fence:
		w.m.inputDropped.WithLabelValues("stale_fence").Inc()
		w.log.Debug("input with stale fence dropped", "key", s.key.String(),
			"fence", cmd.Fence, "live_fence", s.lease.Fence, "bytes", len(cmd.Text))
		return
	case len(cmd.Text) > maxInputLine || len(cmd.Data) > maxInputLine:
		w.m.inputDropped.WithLabelValues("too_long").Inc()
		return
	}
	var sent bool
	switch cmd.Type {
	case store.CmdGMCP:
		sent = s.gmcp(cmd.Package, cmd.Data)
	case store.CmdMSDP:
		sent = s.msdp(cmd.Package, cmd.Data)
	default:
		sent = s.input(cmd.Text, cmd.Viewer, cmd.Seq)
	}
	if !sent {
		w.m.inputDropped.WithLabelValues("not_connected").Inc()
	}
}

// readInbox handles commands other workers forwarded to this one.
func (w *Worker) readInbox(ctx context.Context) error {
	after := "0"
	block := min(500*time.Millisecond, w.cfg.LeaseTTL/4)
	retry := backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for ctx.Err() == nil {
		msgs, err := w.st.ReadInbox(ctx, w.id, after, 100, block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.m.redisErrors.WithLabelValues("read_inbox").Inc()
			_ = retry.Wait(ctx)
			continue
		}
		retry.Reset()
		for _, m := range msgs {
			after = m.ID
			if m.Err != nil {
				w.log.Warn("undecodable inbox entry dropped", "id", m.ID, "err", m.Err)
				continue
			}
			if err := w.ctl.Handle(ctx, m.Command, true); err != nil {
				w.log.Warn("forwarded command failed", "type", m.Command.Type,
					"key", m.Command.Key().String(), "correlation", m.Command.Correlation, "err", err)
			}
		}
	}
	return nil
}

// pruneViewers forgets viewers whose edge has no live heartbeat, so an
// edge that died without sending detaches does not keep sessions alive
// forever: they get the idle grace like any other.
func (w *Worker) pruneViewers(ctx context.Context) error {
	t := time.NewTicker(w.cfg.ViewerCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sessions := w.snapshot()
		edges := make(map[string]bool)
		for _, s := range sessions {
			s.edges(edges)
		}
		if len(edges) == 0 {
			continue
		}
		names := make([]string, 0, len(edges))
		for e := range edges {
			names = append(names, e)
		}
		live, err := w.st.LiveEdges(ctx, names)
		if err != nil {
			w.m.redisErrors.WithLabelValues("live_edges").Inc()
			continue
		}
		dead := make(map[string]bool)
		for _, e := range names {
			if !live[e] {
				dead[e] = true
			}
		}
		if len(dead) == 0 {
			continue
		}
		for _, s := range sessions {
			idle, changed := s.forgetEdges(dead)
			if changed {
				w.recordViewers(s)
			}
			if idle {
				w.event(store.EvSessionIdle, s.key, s.correlation, map[string]any{
					"why": "edge gone", "grace": w.cfg.IdleGrace.String(),
				})
			}
		}
	}
}
