package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
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
	OutMSDP   OutputKind = "msdp"   // one MSDP variable from the game: Package is its name, Data its value as JSON
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
	ID    string     `json:"-"` // stream id, set on read
	Kind  OutputKind `json:"k"`
	Fence int64      `json:"f,omitempty"` // the writer's lease fence
	Seq   uint64     `json:"n,omitempty"` // per (fence) sequence number: a hole means a lost live message
	Text  string     `json:"t,omitempty"`
	// RawText is set instead of Text by the relay readers
	// (ParseRelayMessage, RelayBacklog) on text and input entries: the
	// text as its stored JSON string, quotes included, known to be written
	// exactly as encoding/json writes that text (see relay.go), so it can
	// be copied into JSON as is. Not stored.
	RawText  string          `json:"-"`
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
	// DropMSDP names MSDP variables to forget from the session's MSDP
	// state, as DropGMCP does for GMCP. Not stored.
	DropMSDP []string `json:"-"`
}

// ErrStaleFence is returned when a write carries a fence that is not the
// live lease's: the writer lost ownership and must stop.
var ErrStaleFence = errors.New("stale fence")

// OutputEntryOverhead is what the byte bound of an output stream counts
// for each entry besides its payload (the entry's JSON): about what Redis
// spends on an entry's id, header and share of its stream node, rounded up.
// With it, a stream bounded to 1 MiB holds at most 16,384 entries however
// small they are.
const OutputEntryOverhead = 64

// The append script (lua/append.lua) appends entries of one session to its
// output stream, in order, and publishes them on the session's channel as
// one message: a line "<id> <json>" per entry, joined by "\n" (ParseRelay
// splits them; encoding/json never writes a raw newline, so the lines are
// unambiguous). For GMCP it remembers an entry as the package's last message
// (for MSDP, as the variable's last value, in a hash of its own), and it
// forgets the packages an entry's DropGMCP names and the variables its
// DropMSDP names. The stream is bounded in entries (MAXLEN ~, a backstop)
// and in bytes (lua/output_bound.lua: payload plus OutputEntryOverhead per
// entry, at most the store's output max bytes).
//
// AppendOutputs sends a run of one session's entries (same key, same fence)
// as one call, up to maxCallEntries and maxCallBytes: the fence is read, the
// byte count added to and the message published once per call, not once per
// entry. A typed line's record and the game's answer to it, written in one
// flush, cost 6 commands instead of 10 (EVALSHA, HGET, 2 XADD, HINCRBY,
// PUBLISH), and a flood's entries 1 + 4/n each instead of 5.
//
// It refuses writes whose fence is not the live lease's; fence 0 is an
// unfenced write, allowed only while nobody holds the lease (a controller
// reporting a session it could not start). A refusal refuses the whole call.
//
// De-duplication costs nothing on a first attempt and is paid only by a
// retry. A fenced entry carries its sequence number within its fence, and
// the live fence writes its entries in the order of their numbers. An entry
// sent again after a round trip whose outcome is unknown (Redis may have
// applied it and then lost the reply) is a retry: Append.Retry when the
// caller re-sends it, and every send after the first of one AppendOutputs
// call (a go-redis retry of the pipeline, a re-send after NOSCRIPT), which
// the store itself marks (see retryArg). Only a retry makes the script read
// the stream's tail: every entry of the call numbered at or below the newest
// number of this fence found there was written already; it is acknowledged
// as DUP and not written twice (nor are its GMCP packages dropped twice). A
// first attempt reads the lease's fence and nothing else.
//
// A status entry also sets the state of the session record, if the record
// is this fence's (so `trellis sessions` shows what the player sees).

// maxCallEntries and maxCallBytes bound one call of the append script:
// Redis runs a call while every other client waits, and publishes its
// entries only at its end. Calls of 256 KiB and of 64 KiB made the flood
// 10-15% slower in alternating runs (the edge relays a call's entries only
// once the whole call is done, so the stages overlap less): at 16 KiB a
// flood's full text entries go one per call as before, and what runs
// together is small entries (a typed line's record and its answer, GMCP).
const (
	maxCallEntries = 32
	maxCallBytes   = 16 << 10
)

// Append is one output entry to write for a session.
type Append struct {
	Key SessionKey
	Out Output // Fence is the writer's lease fence (0: unfenced)
	// Retry says the entry was sent before, by a round trip whose outcome
	// is unknown (it failed, and Redis may have applied it): the store then
	// checks whether it was written (Duplicate) instead of writing it
	// again. A re-sent entry without it may be written twice. It needs
	// Out.Seq, the number the first attempt carried.
	Retry bool
}

// retryArg is the retry argument (ARGV[6]) of one call: "0" on the first
// send, "1" when the caller says an entry is a retry or the same command is
// sent again. go-redis encodes a command's arguments each time it writes the
// command to a connection, so a pipeline it re-sends on its own (after a
// connection broke with the replies unread) carries the mark too, as does a
// batch the store re-sends. Encoding it without sending it (a write that
// failed) only makes the next send a retry: it costs a read of the stream's
// tail, never a double write.
type retryArg struct {
	retry bool
	sends atomic.Int32
}

// MarshalBinary is called by go-redis as it writes the command.
func (r *retryArg) MarshalBinary() ([]byte, error) {
	if r.sends.Add(1) > 1 || r.retry {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}

// String shows the argument in go-redis's messages without counting a send.
func (r *retryArg) String() string {
	if r.sends.Load() > 1 || r.retry {
		return "1"
	}
	return "0"
}

// AppendResult is the outcome of one Append: the new stream id, or an error
// (ErrStaleFence when the writer lost the lease). Duplicate reports a retry
// whose entry was written before (its first reply was lost); it is not an
// error and ID is empty.
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

// appendCall is one call of the append script: batch[from:to], entries of
// one session and fence.
type appendCall struct {
	from, to int
	retry    retryArg
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
	// One retry argument per call for the whole AppendOutputs: a re-sent
	// batch builds its commands again, and the second encoding of an
	// argument marks its command a retry.
	var calls []appendCall
	for i := 0; i < len(batch); {
		calls = append(calls, appendCall{from: i})
		c := &calls[len(calls)-1]
		bytes := 0
		for ; i < len(batch) && i-c.from < maxCallEntries; i++ {
			a := &batch[i]
			if i > c.from && (a.Key != batch[c.from].Key || a.Out.Fence != batch[c.from].Out.Fence || bytes+len(payloads[i]) > maxCallBytes) {
				break
			}
			bytes += len(payloads[i])
			if a.Retry && a.Out.Seq != 0 {
				c.retry.retry = true
			}
		}
		c.to = i
	}
	cmds, err := s.evalBatch(ctx, s.appendScriptFor(), len(calls), func(ci int) ([]string, []any) {
		c := &calls[ci]
		k, fence := batch[c.from].Key, batch[c.from].Out.Fence
		n := 7
		for i := c.from; i < c.to; i++ {
			n += 7 + len(batch[i].Out.DropGMCP) + len(batch[i].Out.DropMSDP)
		}
		args := make([]any, 0, n)
		args = append(args, s.outputMaxLen, fence, now, s.outputMaxBytes, OutputEntryOverhead, &c.retry, c.to-c.from)
		for i := c.from; i < c.to; i++ {
			o := &batch[i].Out
			pkg, state, hash := "", "", "g"
			switch o.Kind {
			case OutGMCP:
				pkg = o.Package
			case OutMSDP:
				pkg, hash = o.Package, "m"
			case OutStatus:
				state = o.State
			}
			var seq uint64
			if o.Fence != 0 {
				seq = o.Seq
			}
			args = append(args, payloads[i], seq, pkg, hash, state, len(o.DropGMCP), len(o.DropMSDP))
			for _, p := range o.DropGMCP {
				args = append(args, p)
			}
			for _, v := range o.DropMSDP {
				args = append(args, v)
			}
		}
		return []string{s.ks.out(k), s.ks.lease(k), s.ks.gmcp(k), s.ks.session(k), s.ks.outMeta(k), s.ks.outMarks(k), s.ks.msdp(k)}, args
	})
	if err != nil {
		return nil, fmt.Errorf("append %d output entries: %w", len(batch), err)
	}
	res := make([]AppendResult, len(batch))
	for ci, cmd := range cmds {
		c := &calls[ci]
		k := batch[c.from].Key
		ids, err := cmd.StringSlice()
		if err == nil && len(ids) != c.to-c.from {
			err = fmt.Errorf("the script answered %d ids for %d entries", len(ids), c.to-c.from)
		}
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "STALE"):
			err = fmt.Errorf("append output %s fence %d: %w", k, batch[c.from].Out.Fence, ErrStaleFence)
		case err != nil:
			err = fmt.Errorf("append output %s: %w", k, err)
		}
		for i := c.from; i < c.to; i++ {
			switch {
			case err != nil:
				res[i] = AppendResult{Err: err}
			case ids[i-c.from] == "DUP":
				res[i] = AppendResult{Duplicate: true}
			default:
				res[i] = AppendResult{ID: ids[i-c.from]}
			}
		}
	}
	return res, nil
}

// ErrFenceNotIssued is returned by AppendLostGap for a fence the session
// never issued (0 or less, or above its fence counter).
var ErrFenceNotIssued = errors.New("fence was never issued")

// AppendLostGap records that a writer which lost its lease (it expired, or
// the worker fenced itself while Redis was away) discarded lostBytes of
// output it could not write. The worker calls it once Redis answers again.
//
// The entry is {k: gap, f: fence, w: worker, t: "<n> bytes of output were
// lost ..."} with no sequence number, so it cannot collide with any fence's
// de-duplication; it is published on the output channel like any entry and
// counts toward the stream's byte bound. It is refused (ErrFenceNotIssued)
// unless 0 < fence <= the session's fence counter: the writer must have
// owned the session once. It needs no live lease.
//
// When the output stream no longer exists (its transcript expired) nothing
// is written and the id is "": there is no transcript to mark, and a stream
// created here would have no expiry.
//
// It is not idempotent: a retry after a reply that was lost may write the
// marker twice. That is harmless (two notices of the same loss), so callers
// may simply retry.
func (s *Store) AppendLostGap(ctx context.Context, key SessionKey, fence int64, worker string, lostBytes int64) (id string, err error) {
	if fence <= 0 {
		return "", fmt.Errorf("lost gap %s fence %d: %w", key, fence, ErrFenceNotIssued)
	}
	if lostBytes < 0 {
		return "", fmt.Errorf("lost gap %s: %d bytes lost, want 0 or more", key, lostBytes)
	}
	o := Output{
		Kind: OutGap, Fence: fence, Worker: worker, Time: s.now().UnixMilli(),
		Text: fmt.Sprintf("%d bytes of output were lost when the server holding this game lost its connection to Redis", lostBytes),
	}
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("encode lost gap for %s: %w", key, err)
	}
	id, err = s.lostGapScriptFor().Run(ctx, s.rdb,
		[]string{s.ks.out(key), s.ks.fence(key), s.ks.outMeta(key), s.ks.outMarks(key)},
		s.outputMaxLen, fence, string(b), s.outputMaxBytes, OutputEntryOverhead).Text()
	switch {
	case isNil(err):
		return "", nil
	case err != nil && strings.HasPrefix(err.Error(), "NOFENCE"):
		return "", fmt.Errorf("lost gap %s: %s: %w", key, strings.TrimPrefix(err.Error(), "NOFENCE "), ErrFenceNotIssued)
	case err != nil:
		return "", fmt.Errorf("lost gap %s: %w", key, err)
	}
	return id, nil
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

// OutputPage is one read of a session's output stream after a position.
type OutputPage struct {
	Entries []Output
	Gap     bool // entries between after and the first entry returned are no longer kept
	Reset   bool // after is not a position of this stream (not a valid id, or newer than its newest entry): Entries start at the oldest kept entry and the reader must forget after
	// At is the entry at after itself when the stream still holds it: the
	// last entry the reader had, whose fence and number let it see a hole
	// in the numbers of the entries that follow (writes Redis lost).
	At *Output
	// Skipped counts the entries of this read that could not be decoded
	// (not in Entries), for the reader to count and log.
	Skipped int
}

// ReadBacklog returns up to count entries after the position after
// (exclusive), and what the reader must know about that position:
//
//   - after "", "0" or "0-0": no position; Entries start at the oldest kept
//     entry, neither Gap nor Reset.
//   - after a valid id (ValidStreamID) at or before the newest entry: the
//     entries that follow it; Gap when after is older than the oldest entry
//     kept (entries between were trimmed). A position just before the
//     oldest kept entry also reports Gap: the stream does not remember which
//     ids it trimmed.
//   - after not a valid id, or newer than the newest entry (a position from
//     another Redis, or from a stream that was lost and started again):
//     Reset, with Entries from the oldest kept entry. Gap is false: nothing
//     is known about what lay between.
//   - a stream with no entries (its transcript expired, or none was ever
//     written) and a valid after: Gap and no entries, unless after is ahead
//     of the Redis server's clock, so that the entries written from now on
//     would sort before it: then Reset.
//
// No id Redis would reject is ever sent to it: the exclusive start is
// computed here. It is one round trip (XRANGE - + COUNT 1, XREVRANGE + -
// COUNT 1 and the read itself, pipelined); only the rare answers cost a
// second: a Reset for a position newer than the newest entry (the read from
// the start), and an empty stream (the server's clock).
func (s *Store) ReadBacklog(ctx context.Context, key SessionKey, after string, count int64) (OutputPage, error) {
	return s.readBacklog(ctx, key, after, count, decodeOutput)
}

// RelayBacklog is ReadBacklog for relaying: the text of text and input
// entries stays JSON, in RawText (see relay.go).
func (s *Store) RelayBacklog(ctx context.Context, key SessionKey, after string, count int64) (OutputPage, error) {
	return s.readBacklog(ctx, key, after, count, decodeRelayEntry)
}

func (s *Store) readBacklog(ctx context.Context, key SessionKey, after string, count int64, decode func(redis.XMessage) (Output, error)) (OutputPage, error) {
	var page OutputPage
	out := s.ks.out(key)
	fresh := after == "" || after == "0" || after == "0-0"
	pos, valid := parseStreamID(after)
	resumed := !fresh && valid
	page.Reset = !fresh && !valid

	pipe := s.rdb.Pipeline()
	var oldest, newest, rng *redis.XMessageSliceCmd
	if resumed {
		oldest = pipe.XRangeN(ctx, out, "-", "+", 1)
		newest = pipe.XRevRangeN(ctx, out, "+", "-", 1)
		// From after itself: the entry there, if kept, is page.At.
		rng = pipe.XRangeN(ctx, out, pos.String(), "+", count+1)
	} else {
		rng = pipe.XRangeN(ctx, out, "-", "+", count)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return OutputPage{}, fmt.Errorf("read output %s after %.60q: %w", key, after, err)
	}
	var msgs []redis.XMessage
	if rng != nil {
		msgs = rng.Val()
	}
	if resumed {
		first, last := oldest.Val(), newest.Val()
		switch {
		case len(last) == 0:
			now, err := s.rdb.Time(ctx).Result()
			if err != nil {
				return OutputPage{}, fmt.Errorf("read output %s: server time: %w", key, err)
			}
			if ms := now.UnixMilli(); ms >= 0 && pos.ms > uint64(ms) {
				page.Reset = true
			} else {
				page.Gap = true
			}
			msgs = nil
		case pos.compare(mustParseID(last[0].ID)) > 0:
			page.Reset = true
			var err error
			if msgs, err = s.rdb.XRangeN(ctx, out, "-", "+", count).Result(); err != nil {
				return OutputPage{}, fmt.Errorf("read output %s from the start: %w", key, err)
			}
		default:
			page.Gap = pos.compare(mustParseID(first[0].ID)) < 0
			if len(msgs) > 0 && msgs[0].ID == pos.String() {
				if o, err := decode(msgs[0]); err == nil {
					page.At = &o
				}
				msgs = msgs[1:]
			}
			msgs = msgs[:min(len(msgs), int(count))]
		}
	}
	page.Entries = make([]Output, 0, len(msgs))
	for _, m := range msgs {
		o, err := decode(m)
		if err != nil {
			page.Skipped++
			continue // an entry nobody can read is skipped, not fatal to the resume
		}
		page.Entries = append(page.Entries, o)
	}
	return page, nil
}

// ReadOutput returns up to count entries after the id after (exclusive; ""
// or "0" for the start of the kept backlog). gap reports that the entries
// do not follow after: entries between were trimmed (or the whole
// transcript expired), or after is not a position of the stream at all
// (ReadBacklog's Reset, with entries from the oldest kept one). It is
// ReadBacklog for callers that do not tell the two apart; an after that is
// not a valid id is a gap, not an error.
func (s *Store) ReadOutput(ctx context.Context, key SessionKey, after string, count int64) (entries []Output, gap bool, err error) {
	page, err := s.ReadBacklog(ctx, key, after, count)
	if err != nil {
		return nil, false, err
	}
	return page.Entries, page.Gap || page.Reset, nil
}

// LastOutputID returns the id of the newest output entry ("" if none).
func (s *Store) LastOutputID(ctx context.Context, key SessionKey) (string, error) {
	res, err := s.rdb.XRevRangeN(ctx, s.ks.out(key), "+", "-", 1).Result()
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
	res, err := s.rdb.XRangeN(ctx, s.ks.out(key), from, to, count).Result()
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
	m, err := s.rdb.HGetAll(ctx, s.ks.gmcp(key)).Result()
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

// MSDPState returns the last value of each MSDP variable the game sent in
// this session (entries of kind OutMSDP), for replay to a viewer that
// attaches.
func (s *Store) MSDPState(ctx context.Context, key SessionKey) ([]Output, error) {
	m, err := s.rdb.HGetAll(ctx, s.ks.msdp(key)).Result()
	if err != nil {
		return nil, fmt.Errorf("msdp state %s: %w", key, err)
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
	// One transaction (all keys share the session's slot): the stream and
	// its byte count never end up with different expiries.
	pipe := s.rdb.TxPipeline()
	pipe.PExpire(ctx, s.ks.out(key), keep)
	pipe.PExpire(ctx, s.ks.outMeta(key), keep)
	pipe.PExpire(ctx, s.ks.outMarks(key), keep)
	pipe.PExpire(ctx, s.ks.gmcp(key), keep)
	pipe.PExpire(ctx, s.ks.msdp(key), keep)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("keep transcript %s: %w", key, err)
	}
	return nil
}

// ExpireTranscript lets the session's transcript keys expire after ttl; a
// worker calls it when a session ends, so ended sessions do not hold memory
// forever but can still be replayed for a while. The GMCP and MSDP state go at once:
// it describes a game connection that no longer exists. The stream's byte
// count (outmeta, outmarks) expires with the stream.
func (s *Store) ExpireTranscript(ctx context.Context, key SessionKey, ttl time.Duration) error {
	pipe := s.rdb.TxPipeline()
	pipe.PExpire(ctx, s.ks.out(key), ttl)
	pipe.PExpire(ctx, s.ks.outMeta(key), ttl)
	pipe.PExpire(ctx, s.ks.outMarks(key), ttl)
	pipe.Del(ctx, s.ks.gmcp(key))
	pipe.Del(ctx, s.ks.msdp(key))
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

// streamID is a parsed stream id.
type streamID struct{ ms, seq uint64 }

// ValidStreamID reports whether id is a stream id Redis would accept as a
// position: "<ms>-<seq>", both decimal and within uint64. Edges check a
// browser's resume position with it.
func ValidStreamID(id string) bool {
	_, ok := parseStreamID(id)
	return ok
}

func parseStreamID(id string) (streamID, bool) {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return streamID{}, false
	}
	ms, ok1 := parseDecimal(a)
	seq, ok2 := parseDecimal(b)
	return streamID{ms, seq}, ok1 && ok2
}

// parseDecimal accepts only ASCII digits (no sign, no space), within uint64.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// mustParseID parses an id Redis returned (always valid).
func mustParseID(id string) streamID {
	p, _ := parseStreamID(id)
	return p
}

func (p streamID) String() string {
	return strconv.FormatUint(p.ms, 10) + "-" + strconv.FormatUint(p.seq, 10)
}

func (p streamID) compare(q streamID) int {
	switch {
	case p.ms != q.ms:
		return cmp.Compare(p.ms, q.ms)
	default:
		return cmp.Compare(p.seq, q.seq)
	}
}
