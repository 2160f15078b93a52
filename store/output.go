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

// OutputKind says what an output entry carries.
type OutputKind string

// Output entry kinds. Together they are the session's transcript.
const (
	OutText   OutputKind = "text"   // game text, ANSI SGR kept, "\n" newlines
	OutInput  OutputKind = "input"  // a line the player typed (Redacted while the game echoed)
	OutGMCP   OutputKind = "gmcp"   // a GMCP message from the game
	OutEcho   OutputKind = "echo"   // the game started (Echo) or stopped echoing
	OutStatus OutputKind = "status" // connection state of the session
	OutGap    OutputKind = "gap"    // output was lost (e.g. Redis was away): Text says how much
)

// Session states carried by OutStatus entries.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateReconnected  = "reconnected" // a new game connection replaced a lost one
	StateDisconnected = "disconnected"
	StateFailed       = "failed"
	StateDraining     = "draining"
)

// Output is one entry of a session's output stream. The JSON form is what
// the stream stores and the channel carries; keep field names short, they
// are paid for in every entry.
type Output struct {
	ID       string          `json:"-"` // stream id, set on read
	Kind     OutputKind      `json:"k"`
	Fence    int64           `json:"f,omitempty"` // the writer's lease fence
	Seq      uint64          `json:"n,omitempty"` // per (fence) sequence number: a hole means a lost live message
	Text     string          `json:"t,omitempty"`
	Prompt   bool            `json:"p,omitempty"`
	Redacted bool            `json:"r,omitempty"`
	Package  string          `json:"g,omitempty"`
	Data     json.RawMessage `json:"d,omitempty"`
	Echo     bool            `json:"e,omitempty"`
	State    string          `json:"s,omitempty"`
	Worker   string          `json:"w,omitempty"`  // on status entries: the owner, so edges refresh their routing
	Time     int64           `json:"ts,omitempty"` // unix milliseconds when written
	// Viewer and InputSeq, on input entries: the browser connection that
	// typed the line and its Command.Seq, so that viewer's edge knows the
	// line reached the game (lines never recorded were lost).
	Viewer   string `json:"v,omitempty"`
	InputSeq uint64 `json:"i,omitempty"`
	// DropGMCP names GMCP packages to forget from the session's GMCP state
	// when this entry is written (the worker bounds that state). Not stored.
	DropGMCP []string `json:"-"`
}

// ErrStaleFence is returned when a write carries a fence that is not the
// live lease's: the writer lost ownership and must stop.
var ErrStaleFence = errors.New("stale fence")

// appendScript appends one entry to a session's output stream, trimmed to
// about ARGV[1] entries, publishes it on the session's channel as
// "<id> <json>", and, for GMCP, remembers it as the package's last message.
// It refuses writes whose fence is not the live lease's; fence 0 is an
// unfenced write, allowed only while nobody holds the lease (a controller
// reporting a session it could not start).
//
// A fenced entry carries its sequence number; the last one written is kept
// in the lease hash (which lives and dies with the fence). An entry whose
// number is not above it was written already, by a round trip whose reply
// was lost (Redis went away after applying it): it is acknowledged as DUP
// and not written twice.
//
// A status entry also sets the state of the session record, if the record
// is this fence's (so `trellis sessions` shows what the player sees).
//
// KEYS: out, lease, gmcp, session. ARGV: maxlen, fence, payload, gmcp
// package or "", seq, status state or "", now ms.
var appendScript = redis.NewScript(`
local lease = redis.call('HMGET', KEYS[2], 'fence', 'seq')
local f = lease[1]
if ARGV[2] == '0' then
  if f then return redis.error_reply('STALE lease is held') end
elseif f ~= ARGV[2] then
  return redis.error_reply('STALE fence')
elseif ARGV[5] ~= '0' then
  if tonumber(ARGV[5]) <= tonumber(lease[2] or '0') then return redis.status_reply('DUP') end
  redis.call('HSET', KEYS[2], 'seq', ARGV[5])
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'v', ARGV[3])
local msg = id .. ' ' .. ARGV[3]
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], msg) end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[4], 'fence') == ARGV[2] then
  redis.call('HSET', KEYS[4], 'state', ARGV[6], 'updated', ARGV[7])
end
redis.call('PUBLISH', KEYS[1], msg)
return id
`)

// Append is one output entry to write for a session.
type Append struct {
	Key SessionKey
	Out Output // Fence is the writer's lease fence (0: unfenced)
}

// AppendResult is the outcome of one Append: the new stream id, or an error
// (ErrStaleFence when the writer lost the lease). Duplicate reports an entry
// whose sequence number was written before (a retry of a write whose reply
// was lost); it is not an error and ID is empty.
type AppendResult struct {
	ID        string
	Duplicate bool
	Err       error
}

// AppendOutput writes one entry and publishes it. It returns the entry's id.
func (s *Store) AppendOutput(ctx context.Context, key SessionKey, out Output) (string, error) {
	res, err := s.AppendOutputs(ctx, []Append{{Key: key, Out: out}})
	if err != nil {
		return "", err
	}
	return res[0].ID, res[0].Err
}

// AppendOutputs writes many entries, of one or many sessions, in one
// pipelined round trip. Entries of one session keep their order. The error
// is set only when the round trip failed; per-entry failures (stale fences)
// are in the results.
func (s *Store) AppendOutputs(ctx context.Context, batch []Append) ([]AppendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	payloads := make([]string, len(batch))
	now := s.now().UnixMilli()
	for i := range batch {
		o := batch[i].Out
		if o.Time == 0 {
			o.Time = now
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encode output for %s: %w", batch[i].Key, err)
		}
		payloads[i] = string(b)
	}
	cmds, err := s.evalBatch(ctx, appendScript, len(batch), func(i int) ([]string, []any) {
		a := batch[i]
		pkg, state := "", ""
		switch a.Out.Kind {
		case OutGMCP:
			pkg = a.Out.Package
		case OutStatus:
			state = a.Out.State
		}
		return []string{a.Key.outKey(), a.Key.leaseKey(), a.Key.gmcpKey(), a.Key.sessionKey()},
			[]any{s.outputMaxLen, a.Out.Fence, payloads[i], pkg, a.Out.Seq, state, now}
	})
	if err != nil {
		return nil, fmt.Errorf("append %d output entries: %w", len(batch), err)
	}
	res := make([]AppendResult, len(batch))
	for i, c := range cmds {
		id, err := c.Text()
		if err != nil && strings.HasPrefix(err.Error(), "STALE") {
			err = fmt.Errorf("append output %s fence %d: %w", batch[i].Key, batch[i].Out.Fence, ErrStaleFence)
		} else if err != nil {
			err = fmt.Errorf("append output %s: %w", batch[i].Key, err)
		}
		if err == nil && id == "DUP" {
			res[i] = AppendResult{Duplicate: true}
			continue
		}
		res[i] = AppendResult{ID: id, Err: err}
	}
	return res, nil
}

// ParseOutputMessage decodes a message received on a session's output
// channel ("<id> <json>").
func ParseOutputMessage(payload string) (Output, error) {
	id, body, ok := strings.Cut(payload, " ")
	if !ok {
		return Output{}, fmt.Errorf("output message without id: %.40q", payload)
	}
	var o Output
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		return Output{}, fmt.Errorf("output message %s: %w", id, err)
	}
	o.ID = id
	return o, nil
}

func decodeOutput(m redis.XMessage) (Output, error) {
	v, _ := m.Values["v"].(string)
	var o Output
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return Output{}, fmt.Errorf("output entry %s: %w", m.ID, err)
	}
	o.ID = m.ID
	return o, nil
}

// ReadOutput returns up to count entries after the id after (exclusive; ""
// or "0" for the start of the kept backlog). gap reports that after is
// older than the oldest entry still kept: entries between were trimmed (or
// the whole transcript expired), and the reader should say so.
func (s *Store) ReadOutput(ctx context.Context, key SessionKey, after string, count int64) (entries []Output, gap bool, err error) {
	start := "-"
	resumed := after != "" && after != "0" && after != "0-0"
	if resumed {
		start = "(" + after
	}
	pipe := s.rdb.Pipeline()
	var first *redis.XMessageSliceCmd
	if resumed { // the oldest kept entry tells whether after was trimmed
		first = pipe.XRangeN(ctx, key.outKey(), "-", "+", 1)
	}
	rng := pipe.XRangeN(ctx, key.outKey(), start, "+", count)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, fmt.Errorf("read output %s after %s: %w", key, after, err)
	}
	if resumed {
		f := first.Val()
		gap = len(f) == 0 || compareIDs(after, f[0].ID) < 0
	}
	msgs := rng.Val()
	entries = make([]Output, 0, len(msgs))
	for _, m := range msgs {
		o, err := decodeOutput(m)
		if err != nil {
			continue // an entry nobody can read is skipped, not fatal to the resume
		}
		entries = append(entries, o)
	}
	return entries, gap, nil
}

// LastOutputID returns the id of the newest output entry ("" if none).
func (s *Store) LastOutputID(ctx context.Context, key SessionKey) (string, error) {
	res, err := s.rdb.XRevRangeN(ctx, key.outKey(), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("last output id %s: %w", key, err)
	}
	if len(res) == 0 {
		return "", nil
	}
	return res[0].ID, nil
}

// OutputRange reads entries with ids in [from, to] ("-" and "+" for the
// ends), for transcripts.
func (s *Store) OutputRange(ctx context.Context, key SessionKey, from, to string, count int64) ([]Output, error) {
	res, err := s.rdb.XRangeN(ctx, key.outKey(), from, to, count).Result()
	if err != nil {
		return nil, fmt.Errorf("range output %s: %w", key, err)
	}
	out := make([]Output, 0, len(res))
	for _, m := range res {
		if o, err := decodeOutput(m); err == nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// GMCPState returns the last GMCP message of each package the game sent in
// this session, for replay to a viewer that attaches.
func (s *Store) GMCPState(ctx context.Context, key SessionKey) ([]Output, error) {
	m, err := s.rdb.HGetAll(ctx, key.gmcpKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("gmcp state %s: %w", key, err)
	}
	out := make([]Output, 0, len(m))
	for _, v := range m {
		if o, err := ParseOutputMessage(v); err == nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// KeepTranscript keeps the session's transcript keys for keep from now; a
// worker calls it when a session starts, and every lease renewal extends it
// (RenewLeases), so the keys outlive a running session but never a dead
// worker by more than keep.
func (s *Store) KeepTranscript(ctx context.Context, key SessionKey, keep time.Duration) error {
	pipe := s.rdb.Pipeline()
	pipe.PExpire(ctx, key.outKey(), keep)
	pipe.PExpire(ctx, key.gmcpKey(), keep)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("keep transcript %s: %w", key, err)
	}
	return nil
}

// ExpireTranscript lets the session's transcript keys expire after ttl; a
// worker calls it when a session ends, so ended sessions do not hold memory
// forever but can still be replayed for a while. The GMCP state goes at once:
// it describes a game connection that no longer exists.
func (s *Store) ExpireTranscript(ctx context.Context, key SessionKey, ttl time.Duration) error {
	pipe := s.rdb.Pipeline()
	pipe.PExpire(ctx, key.outKey(), ttl)
	pipe.Del(ctx, key.gmcpKey())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("expire transcript %s: %w", key, err)
	}
	return nil
}

// compareIDs orders two stream ids ("ms-seq").
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

func splitID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	for _, c := range []byte(a) {
		if c < '0' || c > '9' {
			return 0, 0
		}
		ms = ms*10 + uint64(c-'0')
	}
	for _, c := range []byte(b) {
		if c < '0' || c > '9' {
			break
		}
		seq = seq*10 + uint64(c-'0')
	}
	return ms, seq
}

// CompareIDs orders two stream ids: -1 if a is older than b, 0 if equal, 1
// if newer. Edges use it to drop messages they already sent.
func CompareIDs(a, b string) int { return compareIDs(a, b) }
