// Package supervisortest provides a manual clock for testing code that runs
// under a supervisor.Typed or supervisor.Supervisor.
//
// A test hands the Clock to the supervisor in Options.Clock, waits until the
// supervisor is waiting on it (a child in backoff, a shutdown timeout), and
// then moves time forward. Nothing sleeps for real, so the tests are fast and
// do not depend on how busy the machine is:
//
//	clock := supervisortest.NewClock(time.Unix(0, 0))
//	sup := supervisor.NewTyped(tmpl, supervisor.Options{Clock: clock})
//	...
//	if err := clock.WaitForTimers(ctx, 1); err != nil { // the child is in backoff
//		t.Fatal(err)
//	}
//	clock.Advance(time.Second) // the child restarts
package supervisortest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/trellis-mud/trellis/worker/supervisor"
)

// Clock is a supervisor.Clock whose time moves only when Advance is called.
// It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*timer
	changed chan struct{} // closed and replaced whenever pending grows
}

// NewClock returns a Clock that reads now until advanced.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock has been advanced by
// d. A timer for d <= 0 fires at once.
func (c *Clock) NewTimer(d time.Duration) supervisor.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{clock: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.pending = append(c.pending, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

// Advance moves the clock forward by d and fires, in order, every timer
// that is then due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortStableFunc(c.pending, func(a, b *timer) int { return a.when.Compare(b.when) })
	fired := 0
	for _, t := range c.pending {
		if t.when.After(c.now) {
			break
		}
		t.ch <- c.now
		fired++
	}
	c.pending = slices.Delete(c.pending, 0, fired)
}

// Timers returns how many timers are waiting to fire.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// WaitForTimers blocks until at least n timers are waiting to fire, which
// is how a test knows the code under test has reached a wait, or until ctx
// is done.
func (c *Clock) WaitForTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, changed := len(c.pending), c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d timers (have %d): %w", n, have, context.Cause(ctx))
		}
	}
}

type timer struct {
	clock *Clock
	when  time.Time
	ch    chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

// Stop prevents the timer from firing and reports whether it was pending.
func (t *timer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.pending, t)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	return true
}
