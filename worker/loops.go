package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/store"
)

// maxInputLine bounds one line of input; the edge refuses longer ones
// already, this is the worker not trusting the wire.
const maxInputLine = 16 << 10

// renewLeases renews every lease of the worker in one pipelined round trip
// each TTL/3. A lease the batch reports lost stops its session. While
// renewals fail, it retries faster, and sessions whose lease may have
// expired by the next retry are stopped (self-fence): another worker may
// own them by then, and two game connections must never both talk.
func (w *Worker) renewLeases(ctx context.Context) error {
	ttl := w.cfg.LeaseTTL
	interval := ttl / 3
	retry := max(ttl/10, 50*time.Millisecond)
	t := time.NewTimer(interval)
	defer t.Stop()
	w.renewedAt.Store(time.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		leases, live := stillLive(w.snapshot())
		start := time.Now()
		// A renewal that hangs (Redis partitioned away rather than
		// refusing) must fail in time to self-fence before the earliest
		// lease can have expired, not up to a whole interval later.
		budget := interval
		for _, s := range live {
			if left := time.Duration(s.validUntil.Load()-start.UnixNano()) - retry; left < budget {
				budget = left
			}
		}
		if budget <= 0 {
			// The round itself is late: the previous renewal took most of
			// the TTL (Redis slow to answer, the process starved of CPU).
			// Say so: this path used to self-fence without a word.
			late := time.Duration(start.UnixNano() - w.renewedAt.Load())
			why := fmt.Sprintf("renewal round started %s after the last successful one (TTL %s)", late.Round(time.Millisecond), ttl)
			w.log.Warn("lease renewal late", "leases", len(leases), "since_last", late, "ttl", ttl)
			w.selfFence(live, start.Add(retry), why)
			budget = retry
			// Only leases the worker still believes live are renewed:
			// that belief is what lets a renewal restore a lease Redis
			// forgot (store.RenewLeases).
			leases, live = stillLive(live)
		}
		rctx, cancel := context.WithTimeout(ctx, budget)
		var (
			r   store.Renewal
			err error
		)
		if len(leases) > 0 {
			r, err = w.st.RenewLeases(rctx, leases, ttl, w.cfg.TranscriptTTL)
		} else {
			// Nothing to renew: still learn whether Redis answers, so a
			// fenced worker starts taking work again only once it does.
			err = w.st.Ping(rctx)
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.m.redisErrors.WithLabelValues("renew_leases").Inc()
			w.log.Warn("lease renewal failed", "leases", len(leases), "err", err)
			w.selfFence(live, time.Now().Add(retry), "lease renewal failed: "+err.Error())
			t.Reset(retry)
			continue
		}
		took := time.Since(start)
		w.m.renewSeconds.Observe(took.Seconds())
		if took > interval/2 {
			// A slow renewal eats the margin before the next one: the
			// warning comes before any self-fence it leads to.
			w.log.Warn("lease renewal slow", "leases", len(leases), "took", took, "ttl", ttl)
		}
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
		for _, s := range live {
			if gone[s.key] {
				w.loseLease(s, endLeaseLost, "renewal refused: another owner or expired")
			} else {
				s.validUntil.Store(until)
			}
		}
		t.Reset(interval)
	}
}

// leaseRestored counts and reports a lease Redis had forgotten and a
// renewal restored: the visible trace of writes lost in a failover.
func (w *Worker) leaseRestored(l store.Lease) {
	w.m.restored.Inc()
	w.log.Warn("lease restored: Redis had lost it (a failover to a replica that missed writes, or a restore from an older snapshot)",
		"key", l.Key.String(), "fence", l.Fence)
	w.event(store.EvLeaseRestored, l.Key, "", map[string]any{"fence": l.Fence})
}

// stillLive returns the leases of the sessions that have not lost theirs,
// and those sessions (reusing sessions' array).
func stillLive(sessions []*session) ([]store.Lease, []*session) {
	leases := make([]store.Lease, 0, len(sessions))
	live := sessions[:0]
	for _, s := range sessions {
		if !s.lost.Load() {
			leases = append(leases, s.lease)
			live = append(live, s)
		}
	}
	return leases, live
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
