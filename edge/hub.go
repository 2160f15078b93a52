package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/store"
)

// hubPingEvery is how long the hub's pub/sub connection may stay silent
// before the hub pings Redis; two silent intervals in a row mean the
// connection is dead (half-open TCP never errors by itself), and the hub
// replaces it.
const hubPingEvery = 10 * time.Second

// subscribeWait bounds how long a hello waits for Redis to confirm the
// subscription of its session channel.
const subscribeWait = 5 * time.Second

// hub owns the edge's one pub/sub connection. Viewers of the same session
// share one subscription: the first viewer's join SUBSCRIBEs, the last
// one's leave UNSUBSCRIBEs. Each live message is decoded once and handed
// to every viewer of its session without blocking (clients queue it).
//
// After the connection is lost and re-established (go-redis resubscribes
// on its own, or the hub replaces a silent connection), messages published
// in between are gone from pub/sub but not from the streams: the hub asks
// every viewer to re-read its stream from the last id it sent.
type hub struct {
	rdb redis.UniversalClient
	log *slog.Logger
	m   *metrics

	mu       sync.Mutex
	ps       *redis.PubSub
	sessions map[string]*session // by output channel
	// unsubPending counts UNSUBSCRIBEs not yet confirmed per channel: a
	// "subscribe" confirmation that arrives before them is stale.
	unsubPending map[string]int
}

func newHub(rdb redis.UniversalClient, log *slog.Logger, m *metrics) *hub {
	return &hub{
		rdb: rdb,
		log: log,
		m:   m,
		// Subscribe without channels does not dial: the connection is
		// made by the first join or by run, whichever comes first.
		ps:           rdb.Subscribe(context.Background()),
		sessions:     make(map[string]*session),
		unsubPending: make(map[string]int),
	}
}

// session is what the edge knows about one (user, game) it has viewers
// for: the viewers, the subscription state, where input goes, and what the
// watchdog needs.
type session struct {
	key     store.SessionKey
	channel string

	// Guarded by hub.mu.
	viewers map[*client]struct{}
	ready   chan struct{} // closed once Redis confirmed the subscription
	isReady bool

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
	if ok && l.Fence < s.fence {
		return
	}
	s.owner, s.fence, s.routed = l.Owner, l.Fence, ok
	if !ok {
		s.owner, s.fence = "", 0
	}
}

// join adds c as a viewer of key, subscribing the session's channel if c
// is its first viewer, and returns once Redis confirmed the subscription:
// from then on no live message of the session can be missed, so the
// caller may read the stream's backlog.
func (h *hub) join(ctx context.Context, key store.SessionKey, c *client) (*session, error) {
	ch := key.OutputChannel()
	h.mu.Lock()
	s := h.sessions[ch]
	if s == nil {
		s = &session{key: key, channel: ch, viewers: make(map[*client]struct{}), ready: make(chan struct{})}
		h.sessions[ch] = s
		h.m.subscriptions.Inc()
		// go-redis records the channel even when the write fails, and
		// subscribes it again on reconnect; the wait below covers both.
		if err := h.ps.Subscribe(ctx, ch); err != nil {
			h.log.Warn("subscribe failed; waiting for the reconnect", "channel", ch, "err", err)
		}
	}
	s.viewers[c] = struct{}{}
	ready := s.ready
	h.mu.Unlock()

	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-ready:
		return s, nil
	case <-ctx.Done():
		h.leave(s, c)
		return nil, ctx.Err()
	case <-t.C:
		h.leave(s, c)
		return nil, fmt.Errorf("subscribe %s: not confirmed within %s", ch, subscribeWait)
	}
}

// leave removes c from s's viewers and unsubscribes when none is left.
func (h *hub) leave(s *session, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := s.viewers[c]; !ok {
		return
	}
	delete(s.viewers, c)
	if len(s.viewers) > 0 || h.sessions[s.channel] != s {
		return
	}
	delete(h.sessions, s.channel)
	h.m.subscriptions.Dec()
	h.unsubPending[s.channel]++
	if err := h.ps.Unsubscribe(context.Background(), s.channel); err != nil {
		// The reconnect will not subscribe it again: go-redis forgot it.
		h.log.Debug("unsubscribe failed", "channel", s.channel, "err", err)
	}
}

// attaching reports whether key has viewers on this edge and has not
// ended (its last status is not disconnected or failed): a session being
// attached or in play, whether or not its lease exists yet.
func (h *hub) attaching(key store.SessionKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[key.OutputChannel()]
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

// run receives from the pub/sub connection until ctx is done. It owns the
// connection: it closes it on return.
func (h *hub) run(ctx context.Context) {
	defer func() {
		h.mu.Lock()
		_ = h.ps.Close()
		h.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() {
		// ReceiveTimeout ignores ctx while blocked in a read; closing
		// the connection is what ends it.
		h.mu.Lock()
		_ = h.ps.Close()
		h.mu.Unlock()
	})
	defer stop()

	var (
		broken  bool // a receive failed: what follows the recovery is a reconnect
		silent  int  // pings in a row without any answer
		backoff = 50 * time.Millisecond
	)
	for ctx.Err() == nil {
		h.mu.Lock()
		ps := h.ps
		h.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, hubPingEvery)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				silent++
				if silent >= 2 {
					h.log.Warn("pub/sub connection silent; replacing it")
					h.replace(ctx)
					broken, silent = true, 0
					continue
				}
				_ = ps.Ping(ctx)
				continue
			}
			if !broken {
				h.log.Warn("pub/sub connection lost", "err", err)
			}
			broken = true
			h.m.redisErrors.Inc()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		silent, backoff = 0, 50*time.Millisecond
		if broken {
			broken = false
			h.recovered()
		}
		switch m := msg.(type) {
		case *redis.Message:
			h.dispatch(m)
		case *redis.Subscription:
			h.confirm(m)
		}
	}
}

// replace closes a silent pub/sub connection and opens a new one
// subscribed to every channel with viewers.
func (h *hub) replace(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = h.ps.Close()
	chans := make([]string, 0, len(h.sessions))
	for ch := range h.sessions {
		chans = append(chans, ch)
	}
	h.ps = h.rdb.Subscribe(ctx, chans...)
	clear(h.unsubPending)
}

// recovered runs after the connection came back: pending UNSUBSCRIBEs died
// with the old connection, and every viewer may have missed messages.
func (h *hub) recovered() {
	h.log.Info("pub/sub connection re-established; viewers re-read their streams")
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.unsubPending)
	for _, s := range h.sessions {
		for c := range s.viewers {
			c.requestResync()
		}
	}
	h.m.resyncs.WithLabelValues("reconnect").Inc()
}

func (h *hub) confirm(m *redis.Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch m.Kind {
	case "unsubscribe":
		if n := h.unsubPending[m.Channel]; n > 1 {
			h.unsubPending[m.Channel] = n - 1
		} else {
			delete(h.unsubPending, m.Channel)
		}
	case "subscribe":
		if h.unsubPending[m.Channel] > 0 {
			return // an earlier subscription, about to be undone
		}
		if s := h.sessions[m.Channel]; s != nil && !s.isReady {
			s.isReady = true
			close(s.ready)
		}
	}
}

func (h *hub) dispatch(m *redis.Message) {
	o, err := store.ParseOutputMessage(m.Payload)
	if err != nil {
		h.log.Warn("undecodable output message", "channel", m.Channel, "err", err)
		return
	}
	h.mu.Lock()
	s := h.sessions[m.Channel]
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
