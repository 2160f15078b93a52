package backoff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is the delay state of one retry loop. It is not safe for
// concurrent use: each loop has its own.
type Backoff struct {
	// Min is the first delay's upper bound and Max the bound it grows to;
	// Min must be positive and Max at least Min.
	Min, Max time.Duration
	// Rand returns a uniform integer in [0, n); nil means math/rand/v2's
	// Int64N. Tests set it to make the jitter known.
	Rand func(n int64) int64

	d time.Duration // the un-jittered delay of the last Next; 0: none since Reset
}

// Next returns the delay before the next attempt and advances: uniform in
// [d/2, d] where d is Min after a Reset and doubles each call up to Max.
func (b *Backoff) Next() time.Duration {
	if b.Min <= 0 || b.Max < b.Min {
		panic(fmt.Sprintf("backoff: Min %s must be positive and Max %s at least Min", b.Min, b.Max))
	}
	switch {
	case b.d == 0:
		b.d = b.Min
	case b.d > b.Max/2:
		b.d = b.Max
	default:
		b.d *= 2
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	half := b.d / 2
	return b.d - half + time.Duration(rnd(int64(half)+1))
}

// Reset starts the delays again from Min: call it after a success.
func (b *Backoff) Reset() { b.d = 0 }

// Wait sleeps for Next(), or until ctx ends, and then returns ctx.Err().
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() (nil when d ran out first). It is for a loop that logs the
// delay from Next before waiting.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ctx.Err()
	}
}
