package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ControlMessage is one entry of the control stream as a consumer sees it.
type ControlMessage struct {
	ID         string
	Command    Command
	Deliveries int64 // how many times the group handed it out, this one included
	// Err is set when the entry could not be decoded; such an entry is
	// still returned so the consumer can dead-letter it instead of
	// retrying it forever.
	Err error
	raw string // the entry as stored, kept whole in a dead letter
}

// EnsureControlGroup creates the control stream and its consumer group if
// they do not exist. It is idempotent. A new group starts at the beginning
// of the stream, so attaches published before any worker ran are served.
func (s *Store) EnsureControlGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, keyControl, GroupWorkers, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", GroupWorkers, keyControl, err)
	}
	return nil
}

// PublishControl appends a command to the control stream and returns its id.
func (s *Store) PublishControl(ctx context.Context, c Command) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if c.Time.IsZero() {
		c.Time = s.now()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode %s command: %w", c.Type, err)
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: keyControl,
		MaxLen: s.controlMaxLen,
		Approx: true,
		Values: []string{"v", string(b)},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("publish %s %s: %w", c.Type, c.Key(), err)
	}
	return id, nil
}

// ControlConsumer reads the control stream as one member of the workers'
// group. On its first reads it returns the entries already pending for its
// name (handed to it before a crash and never acknowledged), then new ones.
// It is not safe for concurrent use: one goroutine consumes.
type ControlConsumer struct {
	s           *Store
	name        string
	pendingDone bool
	pendingFrom string // history cursor: entries after it are still to be re-read
	claimCursor string
}

// ControlConsumer returns a consumer named name (a stable worker id makes
// own-pending-first meaningful across restarts).
func (s *Store) ControlConsumer(name string) *ControlConsumer {
	return &ControlConsumer{s: s, name: name, pendingFrom: "0-0", claimCursor: "0-0"}
}

// Name is the consumer's name in the group.
func (c *ControlConsumer) Name() string { return c.name }

// Read returns up to count entries, blocking up to block for new ones (0
// blocks until ctx is done). An empty result with a nil error means nothing
// arrived in time.
func (c *ControlConsumer) Read(ctx context.Context, count int64, block time.Duration) ([]ControlMessage, error) {
	if !c.pendingDone {
		msgs, err := c.read(ctx, c.pendingFrom, count, -1)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			c.pendingFrom = msgs[len(msgs)-1].ID
			if err := c.s.fillDeliveries(ctx, c.name, msgs); err != nil {
				return nil, err
			}
			return msgs, nil
		}
		c.pendingDone = true
	}
	var msgs []ControlMessage
	err := blockInSlices(ctx, block, func(slice time.Duration) (bool, error) {
		var err error
		msgs, err = c.read(ctx, ">", count, slice)
		return len(msgs) > 0, err
	})
	if err != nil {
		if len(msgs) == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("read control stream as %s: %w", c.name, err)
		}
		return nil, err
	}
	for i := range msgs {
		msgs[i].Deliveries = 1
	}
	return msgs, nil
}

func (c *ControlConsumer) read(ctx context.Context, from string, count int64, block time.Duration) ([]ControlMessage, error) {
	res, err := c.s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    GroupWorkers,
		Consumer: c.name,
		Streams:  []string{keyControl, from},
		Count:    count,
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// Redis lost the group (restarted without persistence):
			// make it again and let the caller retry.
			if gerr := c.s.EnsureControlGroup(ctx); gerr != nil {
				return nil, gerr
			}
			return nil, nil
		}
		return nil, fmt.Errorf("read control stream as %s: %w", c.name, err)
	}
	var out []ControlMessage
	for _, st := range res {
		for _, m := range st.Messages {
			out = append(out, toControlMessage(m))
		}
	}
	return out, nil
}

func toControlMessage(m redis.XMessage) ControlMessage {
	cm := ControlMessage{ID: m.ID}
	cm.raw, _ = m.Values["v"].(string)
	cm.Command, cm.Err = decodeCommand(m.Values["v"])
	return cm
}

// Claim takes over up to count entries that other consumers (dead workers)
// were handed more than minIdle ago and never acknowledged (XAUTOCLAIM).
// Deliveries is filled in, so the caller can dead-letter an entry that keeps
// failing. Entries trimmed from the stream while pending are acknowledged
// and dropped.
func (c *ControlConsumer) Claim(ctx context.Context, minIdle time.Duration, count int64) ([]ControlMessage, error) {
	cmd := c.s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   keyControl,
		Group:    GroupWorkers,
		Consumer: c.name,
		MinIdle:  minIdle,
		Start:    c.claimCursor,
		Count:    count,
	})
	msgs, next, err := cmd.Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, fmt.Errorf("claim control entries as %s: %w", c.name, err)
	}
	c.claimCursor = next
	if next == "" {
		c.claimCursor = "0-0"
	}
	out := make([]ControlMessage, 0, len(msgs))
	var trimmed []string
	for _, m := range msgs {
		if m.Values == nil {
			trimmed = append(trimmed, m.ID)
			continue
		}
		out = append(out, toControlMessage(m))
	}
	if len(trimmed) > 0 {
		_ = c.s.AckControl(ctx, trimmed...)
	}
	if err := c.s.fillDeliveries(ctx, c.name, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) fillDeliveries(ctx context.Context, consumer string, msgs []ControlMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   keyControl,
		Group:    GroupWorkers,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)) * 2,
		Consumer: consumer,
	}).Result()
	if err != nil {
		return fmt.Errorf("pending control entries of %s: %w", consumer, err)
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = p.RetryCount
	}
	for i := range msgs {
		msgs[i].Deliveries = max(counts[msgs[i].ID], 1)
	}
	return nil
}

// AckControl acknowledges handled entries.
func (s *Store) AckControl(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.rdb.XAck(ctx, keyControl, GroupWorkers, ids...).Err(); err != nil {
		return fmt.Errorf("ack %d control entries: %w", len(ids), err)
	}
	return nil
}

// DeadLetter copies an entry that keeps failing to the dead-letter stream,
// with the reason, and acknowledges it so it is not handed out again.
func (s *Store) DeadLetter(ctx context.Context, m ControlMessage, reason string) error {
	// The entry as stored, so an undecodable one can still be inspected
	// once the control stream has trimmed it.
	raw := m.raw
	if raw == "" {
		b, _ := json.Marshal(m.Command)
		raw = string(b)
	}
	pipe := s.rdb.TxPipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: keyDeadLetters,
		MaxLen: 100_000,
		Approx: true,
		Values: []string{"id", m.ID, "v", raw, "reason", reason, "deliveries", fmt.Sprint(m.Deliveries)},
	})
	pipe.XAck(ctx, keyControl, GroupWorkers, m.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dead-letter control entry %s: %w", m.ID, err)
	}
	return nil
}

// DeadLetterEntry is one entry of the dead-letter stream.
type DeadLetterEntry struct {
	ID         string // id in the dead-letter stream
	ControlID  string // id it had in the control stream
	Command    Command
	Reason     string
	Deliveries string
	Raw        string // the entry as it was stored (Command is empty when it could not be decoded)
}

// DeadLetters lists up to count dead-lettered entries, oldest first.
func (s *Store) DeadLetters(ctx context.Context, count int64) ([]DeadLetterEntry, error) {
	res, err := s.rdb.XRangeN(ctx, keyDeadLetters, "-", "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]DeadLetterEntry, 0, len(res))
	for _, m := range res {
		e := DeadLetterEntry{ID: m.ID}
		e.ControlID, _ = m.Values["id"].(string)
		e.Reason, _ = m.Values["reason"].(string)
		e.Deliveries, _ = m.Values["deliveries"].(string)
		if v, ok := m.Values["v"].(string); ok {
			e.Raw = v
			_ = json.Unmarshal([]byte(v), &e.Command)
		}
		out = append(out, e)
	}
	return out, nil
}

// ControlEntries reads raw control entries in [from, to] (stream ids or
// "-"/"+"), for replay and redrive. It does not touch the consumer group.
func (s *Store) ControlEntries(ctx context.Context, from, to string, count int64) ([]ControlMessage, error) {
	res, err := s.rdb.XRangeN(ctx, keyControl, from, to, count).Result()
	if err != nil {
		return nil, fmt.Errorf("range control stream %s..%s: %w", from, to, err)
	}
	out := make([]ControlMessage, 0, len(res))
	for _, m := range res {
		out = append(out, toControlMessage(m))
	}
	return out, nil
}

// GroupStatus is the health of the control stream's consumer group.
type GroupStatus struct {
	Length      int64 // entries in the stream
	Lag         int64 // entries not yet delivered to any consumer (-1 if Redis cannot tell)
	Pending     int64 // delivered, not acknowledged
	DeadLetters int64
	Consumers   []ConsumerStatus
}

// ConsumerStatus is one consumer (worker) of the group.
type ConsumerStatus struct {
	Name    string
	Pending int64
	Idle    time.Duration
}

// ControlStatus reports lag, pending entries, consumers and dead letters.
func (s *Store) ControlStatus(ctx context.Context) (GroupStatus, error) {
	var st GroupStatus
	pipe := s.rdb.Pipeline()
	xlen := pipe.XLen(ctx, keyControl)
	groups := pipe.XInfoGroups(ctx, keyControl)
	cons := pipe.XInfoConsumers(ctx, keyControl, GroupWorkers)
	dead := pipe.XLen(ctx, keyDeadLetters)
	_, _ = pipe.Exec(ctx)
	if err := xlen.Err(); err != nil {
		return st, fmt.Errorf("control stream status: %w", err)
	}
	st.Length = xlen.Val()
	st.DeadLetters = dead.Val()
	st.Lag = -1
	if gs, err := groups.Result(); err == nil {
		for _, g := range gs {
			if g.Name == GroupWorkers {
				st.Pending = g.Pending
				st.Lag = g.Lag
			}
		}
	} else if !isNoSuchKey(err) {
		return st, fmt.Errorf("control group status: %w", err)
	}
	if cs, err := cons.Result(); err == nil {
		for _, c := range cs {
			st.Consumers = append(st.Consumers, ConsumerStatus{Name: c.Name, Pending: c.Pending, Idle: c.Idle})
		}
	}
	return st, nil
}

// RemoveConsumer deletes a consumer from the group once its pending entries
// were claimed by others, so ops views do not list dead workers forever.
func (s *Store) RemoveConsumer(ctx context.Context, name string) error {
	if err := s.rdb.XGroupDelConsumer(ctx, keyControl, GroupWorkers, name).Err(); err != nil {
		return fmt.Errorf("remove consumer %s: %w", name, err)
	}
	return nil
}

// isNoSuchKey recognises the reply XINFO gives for a stream that does not
// exist yet (no worker or edge has touched it).
func isNoSuchKey(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }
