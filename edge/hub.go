package edge

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// hubPingEvery is how long the hub's pub/sub connection may stay silent
// before the store pings Redis; two silent intervals in a row mean the
// connection is dead (half-open TCP never errors by itself), and the store
// replaces it.
const hubPingEvery = 10 * time.Second

// subscribeWait bounds how long a hello waits for Redis to confirm the
// subscription of its session channel.
const subscribeWait = 5 * time.Second

// hub is the edge's side of pub/sub: the sessions it has viewers for and
// the fan-out of each live message to them. The store's Subscriber owns
// the connections; the hub is its Handler. Each viewer's join subscribes
// the session channel and its leave unsubscribes it (the store counts
// them, so Redis hears of the first and the last). Each live message is
// decoded once, its text left as the stored JSON for the writers to copy
// into their frames (store.ParseRelayMessage), and handed to every viewer
// of its session without blocking (clients queue it).
//
// SUBSCRIBE and UNSUBSCRIBE are never sent or waited for under h.mu: a
// Redis slow to confirm one session's subscription must not stop the
// fan-out to every other session.
//
// When the store reports a subscription recovered (its connection was
// lost or replaced, or its slot moved), messages published in between are
// gone from pub/sub but not from the streams: the hub asks that session's
// viewers to re-read the stream from the last id each sent.
type hub struct {
	st  *store.Store
	sub *store.Subscriber
	log *slog.Logger
	m   *metrics

	mu       sync.Mutex
	sessions map[string]*session // by output channel
	// The watchdog's round over the sessions (see watchPart), in the
	// order they joined, so one round visits each session once however
	// many join or leave meanwhile. cursor is the next one this round
	// (nil: none left); ahead counts those not yet visited this round.
	order  list.List // of *session
	cursor *list.Element
	round  uint64
	ahead  int
}

func newHub(st *store.Store, log *slog.Logger, m *metrics) *hub {
	h := &hub{
		st:       st,
		log:      log,
		m:        m,
		sessions: make(map[string]*session),
	}
	h.sub = st.NewSubscriber(h, store.SubscriberOptions{
		PingEvery: hubPingEvery,
		Logger:    log,
		OnError:   func(error) { m.redisErrors.Inc() },
	})
	return h
}

// session is what the edge knows about one (user, game) it has viewers
// for: the viewers, where input goes, and what the watchdog needs.
type session struct {
	key     store.SessionKey
	channel string

	// Guarded by hub.mu.
	viewers map[*client]struct{}
	elem    *list.Element // in hub.order
	visited uint64        // the watchdog round that last visited it

	mu sync.Mutex
	// Routing of input: the owner and fence of the live lease, as last
	// learnt from a lease read or a status entry. routed=false means ask
	// Redis (store.GetLease) before the next input.
	owner  string
	fence  int64
	routed bool
	// Watchdog state. watched is the fence of the lease this edge's
	// viewers were last attached to (0: not known yet).
	watched     int64
	lastID      string
	lastStatus  string
	failoverAt  time.Time
	failoverTry int
}

// observe records what an output entry says about the session: the newest
// id, the last status, and (status entries name their writer) the owner.
// Entries not newer than the last one observed are old news: a late
// viewer's backlog replay, or a live message the stream re-read already
// covered. They must not move the route back to a previous owner, nor the
// last status back to a live one (the watchdog would restart a session
// the game ended).
func (s *session) observe(o store.Output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.ID != "" {
		if store.CompareIDs(o.ID, s.lastID) <= 0 {
			return
		}
		s.lastID = o.ID
	}
	if o.Kind == store.OutStatus {
		s.lastStatus = o.State
	}
	switch {
	case o.Fence == 0:
	case o.Fence < s.fence:
		// A worker that lost its lease may still note a gap under its old
		// fence, after the new owner's entries: the route stays.
	case o.Worker != "":
		s.owner, s.fence, s.routed = o.Worker, o.Fence, true
	case o.Fence != s.fence:
		// A new writer we cannot name: look the lease up before the
		// next input.
		s.routed = false
	}
}

// rewind forgets ids newer than newest, the stream's newest entry: the
// stream lost them (see writer.lostPosition), and entries written from now
// on may sort before them but must still be observed.
func (s *session) rewind(newest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if store.CompareIDs(s.lastID, newest) > 0 {
		s.lastID = newest
	}
}

// ended reports whether the last status seen says the game connection
// ended on purpose (disconnected, failed).
func (s *session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastStatus == store.StateDisconnected || s.lastStatus == store.StateFailed
}

// knownFence is the highest fence the session was seen under.
func (s *session) knownFence() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.fence, s.watched)
}

// route returns the cached owner and fence, if any.
func (s *session) route() (owner string, fence int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner, s.fence, s.routed
}

// setRoute records a lease read. Fences only go up, so a lease older than
// the route already known (a read that raced a newer status entry) is
// ignored.
func (s *session) setRoute(l store.Lease, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRouteLocked(l, ok)
}

func (s *session) setRouteLocked(l store.Lease, ok bool) {
	if ok && l.Fence < s.fence {
		return
	}
	s.owner, s.fence, s.routed = l.Owner, l.Fence, ok
	if !ok {
		s.owner, s.fence = "", 0
	}
}

// setReadRoute records the watchdog's lease read, which began when the
// session's known fence was known. A read that found no lease says nothing
// of a fence learnt while it was in flight (input routing read the lease
// meanwhile, or a status entry named it): erasing that fence lost the
// lines typed under it from the watchdog's view, and the player heard
// of them only at the input timeout, 10 s later (TestInputLostWhenLeaseVanishes
// failed about one run in fifteen once the watchdog checked a session
// right after it joined).
func (s *session) setReadRoute(l store.Lease, ok bool, known int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok && max(s.fence, s.watched) > known {
		return
	}
	s.setRouteLocked(l, ok)
}

// join adds c as a viewer of key and returns once Redis confirmed the
// subscription of the session's channel: from then on no live message of
// the session can be missed, so the caller may read the stream's backlog.
// Messages arriving meanwhile are already delivered to c (it queues them).
func (h *hub) join(ctx context.Context, key store.SessionKey, c *client) (*session, error) {
	ch := h.st.OutputChannel(key)
	h.mu.Lock()
	s := h.sessions[ch]
	if s == nil {
		s = &session{key: key, channel: ch, viewers: make(map[*client]struct{})}
		h.sessions[ch] = s
		h.m.subscriptions.Inc()
		// At the back: the round under way still visits it.
		s.elem = h.order.PushBack(s)
		h.ahead++
		if h.cursor == nil {
			h.cursor = s.elem
		}
	}
	s.viewers[c] = struct{}{}
	h.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, subscribeWait)
	err := h.sub.Subscribe(wctx, ch)
	cancel()
	if err != nil {
		// The store holds the subscription until its Unsubscribe, which
		// leave sends, whatever Subscribe returned.
		h.leave(s, c)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("subscribe %s: not confirmed within %s: %w", ch, subscribeWait, err)
	}
	return s, nil
}

// leave removes c from s's viewers, forgetting s when none is left, and
// undoes c's subscription.
func (h *hub) leave(s *session, c *client) {
	h.mu.Lock()
	if _, ok := s.viewers[c]; !ok {
		h.mu.Unlock()
		return
	}
	delete(s.viewers, c)
	if len(s.viewers) == 0 && h.sessions[s.channel] == s {
		delete(h.sessions, s.channel)
		h.m.subscriptions.Dec()
		if s.visited != h.round {
			h.ahead--
		}
		if h.cursor == s.elem {
			h.cursor = s.elem.Next()
		}
		h.order.Remove(s.elem)
	}
	h.mu.Unlock()
	h.sub.Unsubscribe(s.channel)
}

// attaching reports whether key has viewers on this edge and has not
// ended (its last status is not disconnected or failed): a session being
// attached or in play, whether or not its lease exists yet.
func (h *hub) attaching(key store.SessionKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[h.st.OutputChannel(key)]
	if s == nil || len(s.viewers) == 0 {
		return false
	}
	return !s.ended()
}

// snapshot returns the sessions and their viewers, for the watchdog and
// for shutdown.
func (h *hub) snapshot() map[*session][]*client {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[*session][]*client, len(h.sessions))
	for _, s := range h.sessions {
		vs := make([]*client, 0, len(s.viewers))
		for c := range s.viewers {
			vs = append(vs, c)
		}
		out[s] = vs
	}
	return out
}

// watchPart returns the sessions, with their viewers, of part (0 to
// parts-1) of the watchdog's round: part 0 starts a round over every
// session, and each part takes its share of those the round has not
// visited yet, the last one all that are left. Sessions that join during
// the round are visited in it too; those that leave are not. The hub lock
// is held for one part's sessions only, not all of them: every live
// message waits for it (see Message).
func (h *hub) watchPart(part, parts int) map[*session][]*client {
	h.mu.Lock()
	defer h.mu.Unlock()
	if part == 0 {
		h.round++
		h.cursor = h.order.Front()
		h.ahead = h.order.Len()
	}
	n := h.ahead
	if left := parts - part; left > 1 {
		n = (h.ahead + left - 1) / left
	}
	out := make(map[*session][]*client, n)
	for ; n > 0 && h.cursor != nil; n-- {
		s := h.cursor.Value.(*session)
		h.cursor = h.cursor.Next()
		s.visited = h.round
		h.ahead--
		vs := make([]*client, 0, len(s.viewers))
		for c := range s.viewers {
			vs = append(vs, c)
		}
		out[s] = vs
	}
	return out
}

// run runs the store's subscriber until ctx is done; it returns once its
// connections are closed and no more messages can be delivered.
func (h *hub) run(ctx context.Context) { _ = h.sub.Run(ctx) }

// Recovered is told of session channels whose subscription was lost and is
// back: their viewers may have missed messages.
func (h *hub) Recovered(channels []string) {
	h.log.Info("pub/sub subscriptions re-established; viewers re-read their streams", "sessions", len(channels))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range channels {
		if s := h.sessions[ch]; s != nil {
			for c := range s.viewers {
				c.requestResync()
			}
		}
	}
	h.m.resyncs.WithLabelValues("reconnect").Inc()
}

// Message fans one live output message (the entries of one append) out to
// its session's viewers.
func (h *hub) Message(channel, payload string) {
	for o, err := range store.RelayMessages(payload) {
		if err != nil {
			h.m.badOutput.Inc()
			h.log.Warn("undecodable output message", "channel", channel, "err", err)
			continue
		}
		h.mu.Lock()
		s := h.sessions[channel]
		if s == nil {
			h.mu.Unlock()
			return
		}
		s.observe(o)
		for c := range s.viewers {
			c.deliver(o)
		}
		h.mu.Unlock()
	}
}
