package console

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// hub tails the event log once for every live stream: one blocking read
// on one Redis connection however many event pages are open (a blocking
// read per page would hold a pooled connection each, and enough pages
// would starve the console's other requests).
type hub struct {
	st   *store.Store
	log  *slog.Logger
	max  int
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// subscriber is one live stream. A stream too slow to keep up with the
// log loses its subscription (ch is closed): the browser reconnects from
// the last id it saw and catches up from the log itself.
type subscriber struct {
	ch chan store.Event
}

// Bounds of the hub: events queued per stream, and the follower's
// blocking read (short, so the console stops soon after it is asked to:
// a blocking read does not end with its context).
const (
	subscriberQueue = 512
	hubBlock        = 2 * time.Second
	hubBatch        = 500
)

func newHub(st *store.Store, log *slog.Logger, maxStreams int) *hub {
	return &hub{st: st, log: log, max: maxStreams, subs: map[*subscriber]struct{}{}}
}

// subscribe adds a stream, or returns nil when max are open.
func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.max {
		return nil
	}
	s := &subscriber{ch: make(chan store.Event, subscriberQueue)}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) publish(events []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, e := range events {
			select {
			case s.ch <- e:
			default:
				delete(h.subs, s)
				close(s.ch)
			}
			if _, ok := h.subs[s]; !ok {
				break
			}
		}
	}
}

// run follows the log until ctx is done, from its newest entry when run
// starts (a stream catches up on anything older itself).
func (h *hub) run(ctx context.Context) {
	after := ""
	for ctx.Err() == nil {
		if after == "" {
			last, err := h.st.RecentEvents(ctx, "+", 1)
			if err != nil {
				h.trouble(ctx, err)
				continue
			}
			after = "0-0"
			if len(last) > 0 {
				after = last[0].ID
			}
		}
		events, err := h.st.FollowEvents(ctx, after, hubBatch, hubBlock)
		if err != nil {
			h.trouble(ctx, err)
			continue
		}
		if len(events) > 0 {
			after = events[len(events)-1].ID
			h.publish(events)
		}
	}
}

// trouble logs a failed read and waits a second before the next.
func (h *hub) trouble(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	h.log.Warn("follow the event log failed", "err", err)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
