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

// A worker's inbox carries commands meant for the owner of a session
// (forwarded attaches, detaches, resizes, stops). It is a stream so that a
// command survives a blip of the worker's connection.
//
// Player input does NOT go through the inbox stream: it is published on the
// worker's input channel (pub/sub). Streams are persisted (AOF, RDB,
// replicas), and a line typed at a password prompt must never be written to
// disk; pub/sub is never persisted. Input is at-most-once by design anyway:
// it must never be replayed into a new game connection. PUBLISH returns the
// number of receivers, so a sender learns at once that nobody took the line.

// inboxMaxLen bounds a worker's inbox; a worker drains it continuously.
const inboxMaxLen = 10_000

// inboxTTL is how long an inbox outlives its last command.
const inboxTTL = 24 * time.Hour

// SendInbox appends a command to a worker's inbox.
func (s *Store) SendInbox(ctx context.Context, worker string, c Command) (string, error) {
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
	// The inbox of a worker that died is never deleted by its owner: an
	// expiry, renewed by every send, lets it go a day after the last one.
	pipe := s.rdb.Pipeline()
	add := pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: s.ks.inbox(worker),
		MaxLen: inboxMaxLen,
		Approx: true,
		Values: []string{"v", string(b)},
	})
	pipe.Expire(ctx, s.ks.inbox(worker), inboxTTL)
	_, err = pipe.Exec(ctx)
	id := add.Val()
	if err != nil {
		return "", fmt.Errorf("send %s %s to worker %s: %w", c.Type, c.Key(), worker, err)
	}
	return id, nil
}

// InboxMessage is one decoded inbox entry.
type InboxMessage struct {
	ID      string
	Command Command
	Err     error // set when the entry could not be decoded
}

// ReadInbox blocks up to block (0: until ctx is done) for inbox entries
// after the id after ("$" for only new ones, "0" for all). Entries are
// deleted once read: the inbox is a mailbox, not a log (the control stream
// and the event log are).
func (s *Store) ReadInbox(ctx context.Context, worker, after string, count int64, block time.Duration) ([]InboxMessage, error) {
	key := s.ks.inbox(worker)
	after, err := s.resolveNewest(ctx, key, after)
	if err != nil {
		return nil, fmt.Errorf("read inbox of %s: %w", worker, err)
	}
	msgs, err := s.readBlocking(ctx, key, after, count, block)
	if err != nil {
		return nil, fmt.Errorf("read inbox of %s: %w", worker, err)
	}
	var out []InboxMessage
	var ids []string
	for _, m := range msgs {
		im := InboxMessage{ID: m.ID}
		im.Command, im.Err = decodeCommand(m.Values["v"])
		out = append(out, im)
		ids = append(ids, m.ID)
	}
	if len(ids) > 0 {
		// Best effort: a failed delete leaves entries for MAXLEN to trim.
		_ = s.rdb.XDel(ctx, key, ids...).Err()
	}
	return out, nil
}

// DeleteInbox removes a worker's inbox (on clean shutdown).
func (s *Store) DeleteInbox(ctx context.Context, worker string) error {
	if err := s.rdb.Del(ctx, s.ks.inbox(worker)).Err(); err != nil {
		return fmt.Errorf("delete inbox of %s: %w", worker, err)
	}
	return nil
}

// InputChannel is the pub/sub channel on which a worker receives player
// input (lines and client GMCP and MSDP) for the sessions it owns. Its hash tag is
// the worker's, so on a cluster it is a shard channel of the worker's inbox
// slot.
func (s *Store) InputChannel(worker string) string { return s.ks.InputChannel(worker) }

// OutputChannel is the pub/sub channel of a session's live output, named
// like its output stream.
func (s *Store) OutputChannel(k SessionKey) string { return s.ks.OutputChannel(k) }

// Namespace is the first part of every key and channel this store uses.
func (s *Store) Namespace() string { return strings.TrimSuffix(s.ks.p, ":") }

// ErrNoReceiver is returned by SendInput when the owning worker is not
// listening (it died or is restarting): the line was not delivered.
var ErrNoReceiver = errors.New("no worker is listening")

// SendInput publishes an input, gmcp or msdp command to the owning worker. The
// command carries the lease fence the sender saw; the worker drops it if the
// fence is stale. It is delivered at most once and never stored.
func (s *Store) SendInput(ctx context.Context, worker string, c Command) error {
	if c.Type != CmdInput && c.Type != CmdGMCP && c.Type != CmdMSDP {
		return fmt.Errorf("send input: command type %q is not input", c.Type)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode input: %w", err)
	}
	publish := s.rdb.Publish
	if s.sharded {
		publish = s.rdb.SPublish
	}
	n, err := publish(ctx, s.InputChannel(worker), b).Result()
	if err != nil {
		return fmt.Errorf("send input for %s to %s: %w", c.Key(), worker, err)
	}
	if n == 0 {
		return fmt.Errorf("send input for %s to %s: %w", c.Key(), worker, ErrNoReceiver)
	}
	return nil
}

// ParseInput decodes a message received on an input channel.
func ParseInput(payload string) (Command, error) {
	var c Command
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return Command{}, fmt.Errorf("decode input: %w", err)
	}
	if c.Type != CmdInput && c.Type != CmdGMCP && c.Type != CmdMSDP {
		return Command{}, fmt.Errorf("input channel: command type %q is not input", c.Type)
	}
	if err := c.Validate(); err != nil {
		return Command{}, err
	}
	return c, nil
}
