package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/store"
)

// The output pipeline. Each session appends what its game says to its own
// outbox. One flusher per worker writes the outboxes of all sessions that
// have something, in one pipelined round trip. It writes as soon as it is
// idle (FlushDelay 0, the default): batching comes from the round trip
// itself, since whatever arrives while one write is in flight goes out
// together in the next, so a lone keystroke echo pays no timer and a flood
// still travels in large batches.
//
// While Redis is healthy a session whose outbox holds more than
// backpressureFactor*FlushBytes stops reading its game until the flusher
// has caught up: TCP flow control slows the game down, and nothing is lost
// however fast it floods. While Redis is away the reader keeps reading (a
// game that cannot send may time its player out), outboxes fill up to
// SessionBuffer bytes, past that the oldest text is dropped and counted,
// and once Redis is back a gap entry saying how much was lost goes first.
//
// Seq numbers are given once, when an entry is first taken for a write,
// and kept if the write fails and is retried: a round trip that failed
// after Redis applied it is then refused as a duplicate by the store
// instead of being written twice. Entries dropped while Redis was away
// leave holes in the numbering; edges re-read the stream on a hole, which
// is exactly right there.

// backpressureFactor times FlushBytes is the outbox size above which a
// session's reader waits for the flusher (while Redis is healthy).
const backpressureFactor = 4

// entryOverhead approximates the bytes an entry costs beyond its payload.
const entryOverhead = 48

// maxBatch bounds the entries of one round trip. Each entry is one script
// call that Redis runs while every other client waits (about 10 µs), so a
// round of a GMCP flood's thousands of tiny entries would hold every
// neighbour's echo behind it; 256 calls keep a round to a few
// milliseconds. The entries are shared among the sessions with output
// waiting, like the bytes (each gets at least minShareEntries).
const (
	maxBatch        = 256
	minShareEntries = 8
)

// roundFlushes times FlushBytes bounds the bytes of one round trip; it is
// shared equally among the sessions with output waiting (each gets at least
// FlushBytes, the most one entry holds), so a round takes a bounded time in
// Redis and a flood gets its share, not the whole round.
const roundFlushes = 64

// outbox is one session's pending output.
type outbox struct {
	mu       sync.Mutex
	pending  []store.Output
	bytes    int    // size of pending
	lost     int64  // bytes dropped since the last gap entry
	seq      uint64 // last Seq handed out
	queued   bool   // on the flusher's dirty list
	inflight bool   // entries taken by a write that has not returned
	closed   bool   // the lease is lost: nothing more can be written
	// discarded counts bytes dropped by close or pushed after it: output
	// this writer can no longer store, for the gap left by AppendLostGap.
	discarded int64
	// gapBytes holds, by seq, the bytes each gap entry not yet written
	// stands for: while Redis is away, lost moves into a gap entry that
	// waits in pending, and if the lease then goes, those bytes are lost
	// too and must be in the final count. inflightGaps are the gap entries
	// of the write in flight.
	gapBytes     map[uint64]int64
	inflightGaps []uint64
	// carryDrops are GMCP packages to forget whose entry was dropped (it
	// named them): the next entry taken carries them.
	carryDrops []string
	// carryMSDPDrops are the same for MSDP variables.
	carryMSDPDrops []string
	waiters        []chan struct{}
	// roomCh is closed when the outbox shrinks to roomAt bytes; one
	// reader per session waits on it.
	roomCh chan struct{}
	roomAt int
}

// room returns nil when the outbox holds at most high bytes, else a channel
// closed once it is down to half of that (or closed for good).
func (b *outbox) room(high int) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.bytes <= high {
		return nil
	}
	if b.roomCh == nil {
		b.roomCh = make(chan struct{})
	}
	b.roomAt = high / 2
	return b.roomCh
}

func (b *outbox) wakeRoomLocked() {
	if b.roomCh != nil && (b.closed || b.bytes <= b.roomAt) {
		close(b.roomCh)
		b.roomCh = nil
	}
}

func entrySize(o *store.Output) int {
	return len(o.Text) + len(o.Data) + len(o.Package) + entryOverhead
}

// push appends o and reports whether the session must be queued, and
// whether the outbox is full enough to flush at once. Text never makes an
// entry above flushBytes: it is coalesced into the last entry only while
// that fits, and text longer than that is cut into several entries (at a
// line end, a character boundary and outside an escape sequence; see
// splitText), so one Redis call never carries more than flushBytes of one
// session's text.
func (b *outbox) push(o store.Output, flushBytes, limit int) (queue, urgent bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		b.discarded += int64(entrySize(&o))
		return false, false, 0
	}
	if o.Kind == store.OutText && len(o.Text) > flushBytes {
		prompt := o.Prompt
		for rest := o.Text; rest != ""; {
			var part string
			part, rest = splitText(rest, flushBytes)
			b.pushLocked(store.Output{Kind: store.OutText, Text: part, Prompt: prompt && rest == ""}, flushBytes)
		}
	} else {
		b.pushLocked(o, flushBytes)
	}
	dropped = b.trimLocked(limit)
	queue = !b.queued
	b.queued = true
	return queue, b.bytes >= flushBytes, dropped
}

func (b *outbox) pushLocked(o store.Output, flushBytes int) {
	n := len(b.pending)
	if o.Kind == store.OutText && n > 0 && b.pending[n-1].Kind == store.OutText &&
		!b.pending[n-1].Prompt && b.pending[n-1].Seq == 0 &&
		len(b.pending[n-1].Text)+len(o.Text) <= flushBytes {
		// Coalesce: many small reads become one entry. Never into an
		// entry that already has a number: it came back from a failed
		// write that Redis may have applied, and its retry would then be
		// refused as a duplicate, taking the added text with it.
		b.pending[n-1].Text += o.Text
		b.pending[n-1].Prompt = o.Prompt
		b.bytes += len(o.Text)
		return
	}
	b.pending = append(b.pending, o)
	b.bytes += entrySize(&o)
}

// idlePendingCap is the most entries an empty outbox keeps room for. An
// entry is about 250 bytes before its text, so the 64 kept before would pin
// 16 KiB on every session that once had a burst (a login, a room full of
// arrivals) for as long as it then sat idle: more than the whole idle
// session should cost. Growing the slice again on the next burst is a few
// small allocations per round trip to Redis, which costs far more.
const idlePendingCap = 4

// keepPending returns the empty pending slice p, or nil when its array is
// larger than an idle session should hold.
func keepPending(p []store.Output) []store.Output {
	if cap(p) > idlePendingCap {
		return nil
	}
	return p
}

// splitText cuts the head of at most limit bytes off s: after the last
// newline in the second half of that window if there is one, else at a
// UTF-8 character boundary, and never inside an ANSI escape sequence (the
// browser renders each entry's escapes on their own). max is at least 512
// (FLUSH_BYTES is validated), far above the longest escape sequence kept.
func splitText(s string, limit int) (head, rest string) {
	if len(s) <= limit {
		return s, ""
	}
	cut := limit
	if i := strings.LastIndexByte(s[limit/2:limit], '\n'); i >= 0 {
		return s[:limit/2+i+1], s[limit/2+i+1:]
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	// An ESC in the last 64 bytes whose sequence has not ended by the cut
	// moves the cut before it. CSI ends with a byte in 0x40-0x7E after
	// its parameters; a lone ESC or other sequences end at the next byte.
	if e := strings.LastIndexByte(s[max(0, cut-64):cut], 0x1b); e >= 0 {
		e += max(0, cut-64)
		if !escapeEnds(s[e:cut]) && e > 0 {
			cut = e
		}
	}
	if cut == 0 {
		cut = limit // no better place: a rune boundary cannot be further back than 3 bytes
	}
	return s[:cut], s[cut:]
}

// escapeEnds reports whether seq (starting with ESC) is complete.
func escapeEnds(seq string) bool {
	if len(seq) < 2 {
		return false
	}
	if seq[1] != '[' {
		return true
	}
	for i := 2; i < len(seq); i++ {
		if c := seq[i]; c >= 0x40 && c <= 0x7e {
			return true
		}
	}
	return false
}

// markPrompt marks the text just pushed as a prompt. If that text was
// written already, an empty prompt entry carries the mark.
func (b *outbox) markPrompt(flushBytes, limit int) (queue, urgent bool, dropped int) {
	b.mu.Lock()
	if n := len(b.pending); n > 0 && b.pending[n-1].Kind == store.OutText && b.pending[n-1].Seq == 0 && !b.closed {
		b.pending[n-1].Prompt = true
		b.mu.Unlock()
		return false, false, 0
	}
	b.mu.Unlock()
	return b.push(store.Output{Kind: store.OutText, Prompt: true}, flushBytes, limit)
}

// trimLocked drops the oldest entries, text first, until the outbox fits
// in limit bytes, and returns the bytes dropped.
func (b *outbox) trimLocked(limit int) int {
	dropped := 0
	for b.bytes > limit && len(b.pending) > 1 {
		i := 0
		for i < len(b.pending)-1 && b.pending[i].Kind != store.OutText {
			i++
		}
		if b.pending[i].Kind != store.OutText {
			i = 0 // no text to drop: drop the oldest of anything
		}
		sz := entrySize(&b.pending[i])
		b.bytes -= sz
		dropped += sz
		if g, ok := b.gapBytes[b.pending[i].Seq]; ok && b.pending[i].Kind == store.OutGap {
			// A dropped gap entry's loss goes into the next one.
			b.lost += g
			delete(b.gapBytes, b.pending[i].Seq)
		}
		// The worker already forgot these GMCP packages: the next entry
		// written must still tell Redis to.
		b.carryDrops = append(b.carryDrops, b.pending[i].DropGMCP...)
		b.carryMSDPDrops = append(b.carryMSDPDrops, b.pending[i].DropMSDP...)
		b.pending = append(b.pending[:i], b.pending[i+1:]...)
	}
	b.lost += int64(dropped)
	b.wakeRoomLocked()
	return dropped
}

// take removes up to max entries, and about maxBytes (always at least one
// entry), for a write, numbering them. Entries given back by a failed write
// go first, with the numbers they had; then a gap entry if output was
// lost; then the rest. The byte bound is each session's share of one round
// trip: a flooding session cannot fill a round with its own output while
// its neighbours' keystroke echoes wait behind it.
func (b *outbox) take(fence int64, worker string, max, maxBytes int, dst []store.Output) (out []store.Output, gap int64, more bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queued = false
	if b.closed || (len(b.pending) == 0 && b.lost == 0) {
		b.pending, b.bytes = keepPending(b.pending[:0]), 0
		return dst, 0, false
	}
	b.inflight = true
	i, took := 0, 0
	fits := func() bool { return max > 0 && (took == 0 || took+entrySize(&b.pending[i]) <= maxBytes) }
	b.inflightGaps = b.inflightGaps[:0]
	takeOne := func() {
		o := b.pending[i]
		if o.Seq == 0 {
			b.seq++
			o.Seq = b.seq
		}
		if len(b.carryDrops) > 0 && o.Kind != store.OutGap {
			o.DropGMCP = append(append([]string(nil), o.DropGMCP...), b.carryDrops...)
			b.pending[i].DropGMCP = o.DropGMCP // kept if the write is retried
			b.carryDrops = nil
		}
		if len(b.carryMSDPDrops) > 0 && o.Kind != store.OutGap {
			o.DropMSDP = append(append([]string(nil), o.DropMSDP...), b.carryMSDPDrops...)
			b.pending[i].DropMSDP = o.DropMSDP
			b.carryMSDPDrops = nil
		}
		if o.Kind == store.OutGap {
			b.inflightGaps = append(b.inflightGaps, o.Seq)
		}
		o.Fence = fence
		sz := entrySize(&b.pending[i])
		b.bytes -= sz
		took += sz
		dst = append(dst, o)
		i++
		max--
	}
	for i < len(b.pending) && b.pending[i].Seq != 0 && fits() {
		takeOne()
	}
	// The gap takes the next number, so it waits until no given-back
	// (numbered) entry is left: behind it, their retry would be refused as
	// already written, since the stream's newest number would pass theirs.
	if b.lost > 0 && max > 0 && (i == len(b.pending) || b.pending[i].Seq == 0) {
		gap = b.lost
		b.lost = 0
		b.seq++
		dst = append(dst, store.Output{Kind: store.OutGap, Fence: fence, Seq: b.seq, Worker: worker,
			Text: fmt.Sprintf("%d bytes of output were lost while the server could not store them", gap)})
		if b.gapBytes == nil {
			b.gapBytes = make(map[uint64]int64)
		}
		b.gapBytes[b.seq] = gap
		b.inflightGaps = append(b.inflightGaps, b.seq)
		max--
	}
	for i < len(b.pending) && fits() {
		takeOne()
	}
	rest := copy(b.pending, b.pending[i:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	if rest == 0 {
		b.pending = keepPending(b.pending)
	}
	b.wakeRoomLocked()
	more = rest > 0 || b.lost > 0
	if more {
		b.queued = true
	}
	return dst, gap, more
}

// giveBack returns the entries of a failed write to the front, keeping
// their numbers (the write may have been applied: a retry with the same
// numbers is then refused as a duplicate), and reports whether the session
// must be queued again.
func (b *outbox) giveBack(taken []store.Output, limit int) (queue bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight = false
	b.inflightGaps = b.inflightGaps[:0] // back in pending, still counted
	if b.closed {
		// The lease went while this write was in flight: what it carried
		// is lost (gap entries are counted through gapBytes already).
		for i := range taken {
			if taken[i].Kind != store.OutGap {
				b.discarded += int64(entrySize(&taken[i]))
			}
		}
		for _, g := range b.gapBytes {
			b.discarded += g
		}
		b.gapBytes = nil
		b.wakeLocked()
		return false, 0
	}
	back := make([]store.Output, 0, len(taken)+len(b.pending))
	for _, o := range taken {
		back = append(back, o)
		b.bytes += entrySize(&o)
	}
	b.pending = append(back, b.pending...)
	dropped = b.trimLocked(limit)
	queue = !b.queued
	b.queued = true
	return queue, dropped
}

// retry returns entries Redis refused for a fence it had forgotten, now
// that the lease is restored (see flusher.restoreLease): like giveBack, but
// the rest of the write was applied, so its gap entries are settled.
func (b *outbox) retry(refused []store.Output, limit int) (queue bool, dropped int) {
	b.mu.Lock()
	back := make(map[uint64]bool)
	for i := range refused {
		if refused[i].Kind == store.OutGap {
			back[refused[i].Seq] = true
		}
	}
	for _, seq := range b.inflightGaps {
		if !back[seq] {
			delete(b.gapBytes, seq)
		}
	}
	b.mu.Unlock()
	return b.giveBack(refused, limit)
}

// written ends a write; it wakes flush waiters once nothing is pending.
func (b *outbox) written() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight = false
	for _, seq := range b.inflightGaps {
		delete(b.gapBytes, seq)
	}
	b.inflightGaps = b.inflightGaps[:0]
	b.wakeLocked()
}

func (b *outbox) wakeLocked() {
	if (len(b.pending) == 0 || b.closed) && !b.inflight {
		for _, w := range b.waiters {
			close(w)
		}
		b.waiters = nil
	}
}

// close drops everything pending: the session can no longer write. What
// it drops, and what is pushed after it, is counted (discardedBytes) so the
// worker can leave a gap entry for it once Redis lets it.
func (b *outbox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.discarded += int64(b.bytes) + b.lost
		for _, g := range b.gapBytes {
			b.discarded += g
		}
		b.gapBytes = nil
	}
	b.closed = true
	b.pending, b.bytes, b.lost = nil, 0, 0
	b.wakeLocked()
	b.wakeRoomLocked()
}

// refused records entries of the last write that Redis refused: lost (a
// gap entry follows) or, refused for a stale fence, discarded.
func (b *outbox) refused(lost, stale int64) {
	if lost == 0 && stale == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lost += lost
	b.discarded += stale
}

// unread counts game bytes nobody read before the connection was cut (see
// unreadBytes): lost like what close drops, so they join the gap.
func (b *outbox) unread(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.discarded += n
}

// discardedBytes is what close dropped and what was pushed after it.
func (b *outbox) discardedBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.discarded
}

// drained returns nil if nothing is pending, else a channel closed when
// the outbox has been written out.
func (b *outbox) drained() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if (len(b.pending) == 0 && b.lost == 0 || b.closed) && !b.inflight {
		return nil
	}
	ch := make(chan struct{})
	b.waiters = append(b.waiters, ch)
	return ch
}

// flusher writes the outboxes of all sessions of a worker.
type flusher struct {
	w *Worker

	mu     sync.Mutex
	dirty  []*session
	wake   chan struct{} // something became dirty
	urgent chan struct{} // something is full, or waits for a flush

	// failing is set while writes to Redis fail; readers stop waiting
	// for room then. failed is closed (and replaced) when it is set.
	failing  atomic.Bool
	failedMu sync.Mutex
	failed   chan struct{}
}

func newFlusher(w *Worker) *flusher {
	return &flusher{w: w, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), failed: make(chan struct{})}
}

// failedSignal returns a channel closed when writes next start failing.
func (f *flusher) failedSignal() <-chan struct{} {
	f.failedMu.Lock()
	defer f.failedMu.Unlock()
	return f.failed
}

// setFailing records whether writes fail, waking readers that wait for
// room when they start failing.
func (f *flusher) setFailing(failing bool) {
	if f.failing.Swap(failing) == failing || !failing {
		return
	}
	f.failedMu.Lock()
	close(f.failed)
	f.failed = make(chan struct{})
	f.failedMu.Unlock()
}

// enqueue puts s on the dirty list.
func (f *flusher) enqueue(s *session, urgent bool) {
	f.mu.Lock()
	f.dirty = append(f.dirty, s)
	f.mu.Unlock()
	notify(f.wake)
	if urgent {
		notify(f.urgent)
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run writes dirty outboxes until ctx is done.
func (f *flusher) run(ctx context.Context) error {
	retry := backoff.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	defer delay.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		case <-f.urgent:
		}
		if d := f.w.cfg.FlushDelay; d > 0 {
			delay.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-delay.C:
			case <-f.urgent:
				delay.Stop()
			}
		}
		if err := f.flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			f.setFailing(true)
			d := retry.Next()
			f.w.log.Warn("output write failed; buffering", "err", err, "retry_in", d)
			_ = backoff.Sleep(ctx, d)
			notify(f.wake)
			continue
		}
		f.setFailing(false)
		retry.Reset()
	}
}

type taken struct {
	s       *session
	from, n int
	// numbered is the last Seq the outbox had handed out before this take:
	// entries numbered at or below it were sent before (given back by a
	// write whose outcome is unknown) and go as retries.
	numbered uint64
}

// flush writes what the dirty sessions hold, in one round trip (or a few,
// when more than maxBatch entries wait).
func (f *flusher) flush(ctx context.Context) error {
	for {
		f.mu.Lock()
		dirty := f.dirty
		f.dirty = nil
		f.mu.Unlock()
		if len(dirty) == 0 {
			return nil
		}
		var (
			outs  []store.Output
			takes []taken
			cut   []*session // not reached this round: first in the next
			again []*session // served and still holding output: last
		)
		roundBytes := roundFlushes * f.w.cfg.FlushBytes
		share := max(roundBytes/len(dirty), f.w.cfg.FlushBytes)
		shareEntries := max(maxBatch/len(dirty), minShareEntries)
		spent := 0
		for i, s := range dirty {
			if len(outs) >= maxBatch || spent >= roundBytes {
				cut = dirty[i:]
				break
			}
			from := len(outs)
			s.out.mu.Lock()
			numbered := s.out.seq
			s.out.mu.Unlock()
			var more bool
			outs, _, more = s.out.take(s.lease.Fence, f.w.id, min(maxBatch-len(outs), shareEntries), share, outs)
			for j := from; j < len(outs); j++ {
				spent += entrySize(&outs[j])
			}
			if len(outs) > from {
				takes = append(takes, taken{s: s, from: from, n: len(outs) - from, numbered: numbered})
			} else {
				s.out.written()
			}
			if more {
				again = append(again, s)
			}
		}
		// Rotation: sessions this round did not reach go ahead of whatever
		// became dirty meanwhile, and sessions it served that still hold
		// output go behind all of them (after the round trip, so that
		// arrivals during it come first too). Otherwise the same floods,
		// first in the list, would fill every round while a quiet
		// neighbour's echo waited past the cut.
		requeue := func() {
			if len(cut) == 0 && len(again) == 0 {
				return
			}
			f.mu.Lock()
			f.dirty = append(append(cut, f.dirty...), again...)
			f.mu.Unlock()
		}
		if len(outs) == 0 {
			requeue()
			continue
		}
		batch := make([]store.Append, len(outs))
		for _, t := range takes {
			for i := t.from; i < t.from+t.n; i++ {
				batch[i] = store.Append{Key: t.s.key, Out: outs[i], Retry: outs[i].Seq <= t.numbered}
			}
		}
		res, err := f.w.st.AppendOutputs(ctx, batch)
		requeue()
		if err != nil {
			f.w.m.redisErrors.WithLabelValues("append_output").Inc()
			for _, t := range takes {
				queue, dropped := t.s.out.giveBack(outs[t.from:t.from+t.n], f.w.cfg.SessionBuffer)
				f.w.m.lostBytes.Add(float64(dropped))
				if queue {
					f.mu.Lock()
					f.dirty = append(f.dirty, t.s)
					f.mu.Unlock()
				}
			}
			return err
		}
		f.w.m.batchEntries.Observe(float64(len(batch)))
		for _, t := range takes {
			var (
				refused, staleBytes int64
				staleOuts           []store.Output
			)
			for i := t.from; i < t.from+t.n; i++ {
				f.w.m.outputBytes.Add(float64(len(outs[i].Text)))
				if e := res[i].Err; e != nil {
					if errors.Is(e, store.ErrStaleFence) {
						staleOuts = append(staleOuts, outs[i])
						staleBytes += int64(entrySize(&outs[i]))
					} else {
						refused += int64(entrySize(&outs[i]))
						f.w.m.redisErrors.WithLabelValues("append_output").Inc()
						f.w.log.Warn("output entry refused", "key", t.s.key.String(), "err", e)
					}
				}
			}
			if len(staleOuts) > 0 && f.restoreLease(ctx, t.s) {
				// Redis had forgotten the lease, not given it away: the
				// refused entries (the end of this session's share: every
				// write after the loss was refused) are written again.
				t.s.out.refused(refused, 0)
				queue, dropped := t.s.out.retry(staleOuts, f.w.cfg.SessionBuffer)
				f.w.m.lostBytes.Add(float64(dropped))
				if queue {
					f.mu.Lock()
					f.dirty = append(f.dirty, t.s)
					f.mu.Unlock()
				}
				continue
			}
			// Entries Redis refused are lost: a refusal under the live
			// fence (out of memory, say) is reported by the next gap entry;
			// entries refused for a stale fence count toward the gap the
			// session leaves when it ends (it can write nothing else).
			t.s.out.refused(refused, staleBytes)
			t.s.out.written()
			for i := t.from; i < t.from+t.n; i++ {
				if res[i].Err == nil && mayCreateKey(outs[i].Kind) {
					// After the write: a renewal that reads the flag
					// finds the key it extends.
					t.s.keepDue.Store(true)
					break
				}
			}
			if len(staleOuts) > 0 {
				f.w.loseLease(t.s, endLeaseLost, "output write refused: stale fence")
			}
		}
	}
}

// mayCreateKey says whether writing an entry of kind may create a key of
// the session's transcript besides the stream (the GMCP or MSDP hash), or
// may be the stream's first entry (a status comes first): the next lease
// renewal then extends the transcript's expiry to it (renewSome).
func mayCreateKey(kind store.OutputKind) bool {
	switch kind {
	case store.OutGMCP, store.OutMSDP, store.OutStatus, store.OutGap:
		return true
	}
	return false
}

// restoreLease is asked when Redis refused s's output for a stale fence:
// if the lease is merely forgotten (Redis lost writes in a failover) and
// the worker still believes it live, a renewal restores it with the same
// fence and the output can be written again. A lease another worker holds
// is not touched.
func (f *flusher) restoreLease(ctx context.Context, s *session) bool {
	if s.lost.Load() || time.Now().UnixNano() >= s.validUntil.Load() {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, f.w.cfg.LeaseTTL/3)
	defer cancel()
	restored, err := f.w.st.RenewLease(rctx, s.lease, f.w.cfg.LeaseTTL)
	if err != nil {
		return false
	}
	if restored {
		f.w.leaseRestored(s.lease)
	}
	return true
}

// flushSession waits until s's outbox is written, or ctx is done.
func (f *flusher) flushSession(ctx context.Context, s *session) bool {
	ch := s.out.drained()
	if ch == nil {
		return true
	}
	s.out.mu.Lock()
	queue := !s.out.queued && !s.out.inflight
	if queue {
		s.out.queued = true
	}
	s.out.mu.Unlock()
	if queue {
		f.enqueue(s, true)
	} else {
		notify(f.urgent)
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
