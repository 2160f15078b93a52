package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/internal/ops"
	"github.com/trellis-mud/trellis/store"
)

// eventFilter is what the events page asks for: types or families (with
// or without "trellis."), a user, a game, a correlation id. Empty fields
// match everything.
type eventFilter struct {
	types       []string
	user, game  string
	correlation string
}

func parseFilter(r *http.Request) eventFilter {
	q := r.URL.Query()
	f := eventFilter{user: q.Get("user"), game: q.Get("game"), correlation: q.Get("correlation")}
	for _, t := range strings.Split(q.Get("type"), ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "trellis.") {
			t = "trellis." + t
		}
		f.types = append(f.types, t)
	}
	return f
}

func (f eventFilter) match(e store.Event) bool {
	if len(f.types) > 0 {
		ok := false
		for _, t := range f.types {
			if e.Type == t || strings.HasPrefix(e.Type, t+".") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.correlation != "" && e.Correlation != f.correlation {
		return false
	}
	if f.user != "" || f.game != "" {
		// The subject is USER/GAME; a game id has no slash, a user may.
		i := strings.LastIndexByte(e.Subject, '/')
		if i < 0 {
			return false
		}
		if (f.user != "" && e.Subject[:i] != f.user) || (f.game != "" && e.Subject[i+1:] != f.game) {
			return false
		}
	}
	return true
}

// Bounds of one read of the log's tail: up to eventsScan pages of
// eventsPage entries are looked at to find count matching events, so a
// narrow filter over a long log answers quickly (the page offers older).
const (
	eventsPage    = 500
	eventsScan    = 20
	eventsDefault = 200
	eventsMax     = 1000
)

// eventsJSON is a page of the log, newest first. before is what to pass
// for the next (older) page; empty when the log's start was reached.
type eventsJSON struct {
	Events []ops.Event `json:"events"`
	Before string      `json:"before"`
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, _ string) {
	f := parseFilter(r)
	q := r.URL.Query()
	count := eventsDefault
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > eventsMax {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("count: want 1 to %d", eventsMax))
			return
		}
		count = n
	}
	// before pages back (exclusive); until is where a live stream
	// started (inclusive), so history and stream meet without a gap.
	before := "+"
	if v := q.Get("before"); v != "" {
		if !store.ValidStreamID(v) {
			writeError(w, http.StatusBadRequest, "before: not a stream id")
			return
		}
		before = "(" + v
	} else if v := q.Get("until"); v != "" {
		if !store.ValidStreamID(v) {
			writeError(w, http.StatusBadRequest, "until: not a stream id")
			return
		}
		before = v
	}
	out := eventsJSON{Events: []ops.Event{}}
	for range eventsScan {
		page, err := s.st.RecentEvents(r.Context(), before, eventsPage)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		for _, e := range page {
			out.Before = e.ID
			if f.match(e) {
				out.Events = append(out.Events, ops.FromEvent(e))
				if len(out.Events) == count {
					writeJSON(w, http.StatusOK, out)
					return
				}
			}
		}
		if len(page) < eventsPage {
			out.Before = "" // the start of the log
			break
		}
		before = "(" + out.Before
	}
	writeJSON(w, http.StatusOK, out)
}

// Live streams: a keepalive comment every liveKeepalive keeps proxies
// from closing an idle stream; a write that cannot finish in liveWrite
// ends the stream (the browser reconnects); catching up on reconnect reads
// at most liveCatchUp pages.
const (
	liveKeepalive = 15 * time.Second
	liveWrite     = 10 * time.Second
	liveCatchUp   = 20
)

// serveLiveEvents streams the events after ?after= (or Last-Event-ID, as
// EventSource sends when it reconnects; default: from now) that match the
// filter, as Server-Sent Events, until the client goes or the console
// stops (the request's context is the server's). The hub feeds it; what
// came before it subscribed it reads from the log itself.
func (s *Server) serveLiveEvents(w http.ResponseWriter, r *http.Request, _ string) {
	f := parseFilter(r)
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	if after != "" && !store.ValidStreamID(after) {
		writeError(w, http.StatusBadRequest, "after: not a stream id")
		return
	}
	sub := s.hub.subscribe()
	if sub == nil {
		writeError(w, http.StatusServiceUnavailable, "too many live event streams are open; close some event pages")
		return
	}
	defer s.hub.unsubscribe(sub)
	ctx := r.Context()
	if after == "" {
		last, err := s.st.RecentEvents(ctx, "+", 1)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		after = "0-0"
		if len(last) > 0 {
			after = last[0].ID
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(liveWrite))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The first frame says where the stream starts, so the page can ask
	// for the history before it without a gap or an overlap.
	if !send([]byte("event: start\ndata: " + strconv.Quote(after) + "\n\n")) {
		return
	}
	var b []byte
	add := func(e store.Event) {
		if store.CompareIDs(e.ID, after) <= 0 {
			return // sent already (catch-up and hub overlap)
		}
		after = e.ID
		if f.match(e) {
			data, _ := json.Marshal(ops.FromEvent(e))
			b = fmt.Appendf(b, "id: %s\ndata: %s\n\n", e.ID, data)
		}
	}
	flush := func() bool {
		if len(b) == 0 {
			return true
		}
		ok := send(b)
		b = b[:0]
		return ok
	}
	// Catch up on what the log holds past after (a reconnect's gap, or
	// what arrived since the newest id was read).
	for range liveCatchUp {
		page, err := s.st.ReadEvents(ctx, "("+after, "+", hubBatch)
		if err != nil {
			s.log.Warn("live events: catch up failed", "err", err)
			return
		}
		for _, e := range page {
			add(e)
		}
		if !flush() || len(page) < hubBatch {
			break
		}
	}
	keepalive := time.NewTicker(liveKeepalive)
	defer keepalive.Stop()
	// The stream lives no longer than the token that opened it.
	var expired <-chan time.Time
	if exp, ok := signInExpiry(r); ok {
		t := time.NewTimer(time.Until(exp))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-expired:
			return
		case <-keepalive.C:
			if !send([]byte(": keepalive\n\n")) {
				return
			}
		case e, ok := <-sub.ch:
			if !ok {
				return // too slow: the browser reconnects and catches up
			}
			add(e)
			for more := true; more; {
				select {
				case e, ok := <-sub.ch:
					if !ok {
						flush()
						return
					}
					add(e)
				default:
					more = false
				}
			}
			if !flush() {
				return
			}
		}
	}
}
