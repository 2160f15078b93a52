package edge

import (
	"fmt"
	"sync"
	"time"
)

// Bounds of the tracking of input lines not yet seen recorded.
const (
	// maxOutstanding bounds the lines one browser may have in flight. The
	// rate limit (20/s, bursts of 40) and the ack timeout keep a browser
	// near it only while its worker records nothing; past it the oldest
	// are forgotten (counted, never reported) so memory stays bounded.
	maxOutstanding = 256
	// inputAckTimeout is how long a line may go unrecorded under an
	// unchanged fence before the player is told. The worker may hold the
	// record of a typed-ahead line until the game's next prompt (up to 5 s),
	// so this must be well above that.
	inputAckTimeout = 10 * time.Second
)

// sentLine is a line relayed to a worker and not yet seen recorded.
type sentLine struct {
	seq   uint64
	fence int64 // the lease fence the line was sent with
	at    time.Time
}

// inputTracker holds one browser's outstanding lines. The reader adds
// them; the hub (acks, early), the writer (acks and fence changes, in
// stream order) and the watchdog (dead leases, timeouts) take them away.
// Each line is taken once, so each loss is reported once.
type inputTracker struct {
	mu     sync.Mutex
	last   uint64 // the last Seq given
	lines  []sentLine
	forgot uint64
}

// next numbers a new line. Numbers are given once per connection, also to
// lines that end up not sent: the worker only learns that later lines
// exist, and a recorded seq acknowledges every earlier one.
func (t *inputTracker) next() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last++
	return t.last
}

// add records a line about to be published. It reports whether an older
// line had to be forgotten to stay within maxOutstanding.
func (t *inputTracker) add(seq uint64, fence int64, at time.Time) (forgot bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) >= maxOutstanding {
		t.lines = append(t.lines[:0], t.lines[1:]...)
		t.forgot++
		forgot = true
	}
	t.lines = append(t.lines, sentLine{seq: seq, fence: fence, at: at})
	return forgot
}

// remove drops a line whose publish failed: the browser was told already.
func (t *inputTracker) remove(seq uint64) {
	t.take(func(l sentLine) bool { return l.seq == seq })
}

// ack takes the lines a worker holding fence recorded: seq upTo and
// every earlier one it was sent. Lines sent under another fence are not
// its to acknowledge: an older fence's lines are lost (see lostBelow) even
// if a later line reached the new owner.
func (t *inputTracker) ack(fence int64, upTo uint64) {
	t.take(func(l sentLine) bool { return l.fence == fence && l.seq <= upTo })
}

// lostBelow takes the lines sent under a fence lower than fence: no
// worker can record them any more (the append script refuses a stale
// fence).
func (t *inputTracker) lostBelow(fence int64) int {
	return t.take(func(l sentLine) bool { return l.fence < fence })
}

// expire takes the lines sent at or before deadline.
func (t *inputTracker) expire(deadline time.Time) int {
	return t.take(func(l sentLine) bool { return !l.at.After(deadline) })
}

// anyBelow reports whether a line sent under a fence lower than fence is
// outstanding.
func (t *inputTracker) anyBelow(fence int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lines {
		if l.fence < fence {
			return true
		}
	}
	return false
}

func (t *inputTracker) take(match func(sentLine) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.lines[:0]
	for _, l := range t.lines {
		if !match(l) {
			kept = append(kept, l)
		}
	}
	n := len(t.lines) - len(kept)
	clear(t.lines[len(kept):])
	t.lines = kept
	return n
}

// Why lines were lost, for the message and the metric.
const (
	lostStopped = "stopped" // the lease they were sent under is gone
	lostEnded   = "ended"   // the same, after the game connection ended
	lostTimeout = "timeout" // not recorded within inputAckTimeout
)

// inputLostMessage tells the player how many lines to type again. It never
// quotes them: one may be a password.
func inputLostMessage(n int, why string) string {
	lines, them := "1 line you typed", "it"
	if n != 1 {
		lines, them = fmt.Sprintf("%d lines you typed", n), "them"
	}
	switch why {
	case lostTimeout:
		return fmt.Sprintf("%s may not have reached the game: the server holding it did not confirm %s within %s. Type %s again if nothing happened.",
			lines, them, inputAckTimeout, them)
	case lostEnded:
		return fmt.Sprintf("%s did not reach the game: the game connection had ended.", lines)
	}
	return fmt.Sprintf("%s did not reach the game: the server holding it stopped. Type %s again.", lines, them)
}
