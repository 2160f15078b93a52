package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func lowest(int64) int64    { return 0 }
func highest(n int64) int64 { return n - 1 }

// The un-jittered delay doubles from Min and stops at Max; the jitter keeps
// each delay within [d/2, d].
func TestNextDoublesToMaxWithinEqualJitter(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	hi := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: highest}
	lo := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: lowest}
	for i, d := range want {
		if got := hi.Next(); got != d {
			t.Errorf("attempt %d, highest draw: %s, want %s", i, got, d)
		}
		if got := lo.Next(); got != d/2 {
			t.Errorf("attempt %d, lowest draw: %s, want %s", i, got, d/2)
		}
	}
}

func TestResetStartsFromMin(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: time.Second, Rand: highest}
	for range 5 {
		b.Next()
	}
	b.Reset()
	if got := b.Next(); got != 10*time.Millisecond {
		t.Errorf("after Reset: %s, want Min", got)
	}
}

// The default random source stays in range, and a Max near the largest
// duration does not overflow while doubling.
func TestDefaultRandomInRangeAndNoOverflow(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 8 * time.Millisecond}
	for i := range 200 {
		d := min(time.Millisecond<<min(i, 3), 8*time.Millisecond)
		if got := b.Next(); got < d/2 || got > d {
			t.Fatalf("attempt %d: %s outside [%s, %s]", i, got, d/2, d)
		}
	}
	huge := Backoff{Min: time.Hour, Max: time.Duration(1<<63 - 1), Rand: highest}
	prev := time.Duration(0)
	for range 80 {
		got := huge.Next()
		if got < prev {
			t.Fatalf("delay went down from %s to %s: overflow", prev, got)
		}
		prev = got
	}
}

func TestInvalidBoundsPanic(t *testing.T) {
	for _, b := range []Backoff{{}, {Min: time.Second, Max: time.Millisecond}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: no panic", b)
				}
			}()
			b.Next()
		}()
	}
}

// Wait sleeps the drawn delay (on synctest's clock, not the wall's) and
// returns at once when its context ends.
func TestWaitSleepsAndStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: time.Second, Max: time.Minute, Rand: highest}
		start := time.Now()
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != time.Second {
			t.Errorf("first wait took %s on the bubble's clock, want 1s", el)
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- b.Wait(ctx) }()
		synctest.Wait() // the waiter is blocked in its timer
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait returned %v", err)
		}
		if el := time.Since(start); el != 0 {
			t.Errorf("cancelled wait took %s, want no time", el)
		}

		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep on a done context: %v", err)
		}
	})
}
