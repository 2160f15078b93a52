package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// EventVersion is the version of the event envelope.
const EventVersion = 1

// Lifecycle event types. Ops filter on them; add, never rename.
const (
	EvSessionStarting    = "trellis.session.starting"     // a worker took the lease and is dialling
	EvSessionStarted     = "trellis.session.started"      // the game connection is up
	EvSessionReattached  = "trellis.session.reattached"   // a viewer came back to a running session
	EvSessionDetached    = "trellis.session.detached"     // a viewer left
	EvSessionIdle        = "trellis.session.idle"         // the last viewer left: the idle grace runs
	EvSessionRestarting  = "trellis.session.restarting"   // the game connection failed: backoff, redial
	EvSessionEnded       = "trellis.session.ended"        // the session is over (reason in data)
	EvSessionFailed      = "trellis.session.failed"       // gave up after too many failures
	EvSessionFailover    = "trellis.session.failover"     // started on a new worker after the old owner died
	EvSessionGMCPTrimmed = "trellis.session.gmcp_trimmed" // the game's GMCP state hit its bound; oldest packages forgotten (once per session)
	EvSessionMSDPTrimmed = "trellis.session.msdp_trimmed" // the game's MSDP state hit its bound; oldest variables forgotten (once per session)
	EvLeaseLost          = "trellis.lease.lost"           // a worker lost a lease it held
	EvLeaseRestored      = "trellis.lease.restored"       // Redis had forgotten a live lease (lost writes); its holder restored it
	EvWorkerStarted      = "trellis.worker.started"
	EvWorkerDraining     = "trellis.worker.draining"
	EvWorkerStopped      = "trellis.worker.stopped"
	EvWorkerSelfFenced   = "trellis.worker.self_fenced"  // could not renew leases in time: stopped all sessions
	EvControlDeadLetter  = "trellis.control.dead_letter" // a control entry kept failing
	EvEdgeStarted        = "trellis.edge.started"
	EvEdgeStopped        = "trellis.edge.stopped"
)

// Event is the one envelope of the lifecycle log (CloudEvents-like).
type Event struct {
	ID          string          `json:"id"` // stream id, set by Redis
	Type        string          `json:"type"`
	Source      string          `json:"source"` // "worker/<id>" or "edge/<id>"
	Time        time.Time       `json:"time"`
	Subject     string          `json:"subject,omitempty"` // "<user>/<game>"
	Correlation string          `json:"correlation,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Version     int             `json:"version"`
}

// AppendEvent writes an event to the log, trimming entries older than the
// retention, and returns its id.
func (s *Store) AppendEvent(ctx context.Context, e Event) (string, error) {
	if e.Type == "" || e.Source == "" {
		return "", errors.New("append event: type and source are required")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Version = EventVersion
	e.ID = ""
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	minID := strconv.FormatInt(s.now().Add(-s.eventsMaxAge).UnixMilli(), 10)
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.ks.events(),
		MinID:  minID,
		Approx: true,
		Values: []string{"type", e.Type, "v", string(b)},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("append event %s: %w", e.Type, err)
	}
	return id, nil
}

// NewEvent builds an event with data marshalled from v (nil for none).
func NewEvent(typ, source string, key SessionKey, correlation string, v any) Event {
	e := Event{Type: typ, Source: source, Correlation: correlation}
	if key.User != "" {
		e.Subject = key.String()
	}
	if v != nil {
		if b, err := json.Marshal(v); err == nil {
			e.Data = b
		}
	}
	return e
}

func decodeEvent(m redis.XMessage) (Event, error) {
	v, _ := m.Values["v"].(string)
	var e Event
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return Event{}, fmt.Errorf("event %s: %w", m.ID, err)
	}
	e.ID = m.ID
	return e, nil
}

// TimeID turns a time into the smallest stream id at or after it, for
// range reads by time.
func TimeID(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) + "-0" }

// ReadEvents returns up to count events with ids in [from, to] ("-" and
// "+" for the ends; TimeID for times).
func (s *Store) ReadEvents(ctx context.Context, from, to string, count int64) ([]Event, error) {
	res, err := s.rdb.XRangeN(ctx, s.ks.events(), from, to, count).Result()
	if err != nil {
		return nil, fmt.Errorf("read events %s..%s: %w", from, to, err)
	}
	return decodeEvents(res), nil
}

// FollowEvents blocks up to block (0: until ctx is done) for events after
// the id after ("$" for only new ones) and returns them.
func (s *Store) FollowEvents(ctx context.Context, after string, count int64, block time.Duration) ([]Event, error) {
	after, err := s.resolveNewest(ctx, s.ks.events(), after)
	if err != nil {
		return nil, fmt.Errorf("follow events after $: %w", err)
	}
	msgs, err := s.readBlocking(ctx, s.ks.events(), after, count, block)
	if err != nil {
		return nil, fmt.Errorf("follow events after %s: %w", after, err)
	}
	return decodeEvents(msgs), nil
}

func decodeEvents(msgs []redis.XMessage) []Event {
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		if e, err := decodeEvent(m); err == nil {
			out = append(out, e)
		}
	}
	return out
}
