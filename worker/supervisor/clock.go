package supervisor

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is the supervisor's only source of time: restart windows, backoff
// delays and shutdown timeouts all go through it, so a test can replace it
// (see package supervisortest) and never sleep.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the supervisor uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// sleep waits d on clock, or until ctx is done; it reports whether the full
// delay passed.
func sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	t := clock.NewTimer(d)
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// backoff is the delay before the n-th restart (n >= 1) within a period:
// "equal jitter", uniform in [b/2, b] with b = min(max, min·2^(n-1)).
func backoff(spec *Spec, n int) time.Duration {
	b := spec.BackoffMin
	for i := 1; i < n && b < spec.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, spec.BackoffMax)
	half := b / 2
	return b - half + rand.N(half+1)
}
