package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/worker/supervisor"
)

var errBoom = errors.New("boom")

func TestPermanentRestartsEvenAfterNormalExit(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent, Period: time.Hour}, supervisor.Options{})
	s := f.start(t, "p")

	for i, exit := range []error{nil, errBoom, supervisor.ErrNormal} {
		if got := s.nextAttempt(t); got != i {
			t.Fatalf("run %d: Attempt(ctx) = %d", i, got)
		}
		s.exits <- exit
		if e := f.rec.nth(t, "p", supervisor.EventExited, i+1); !errors.Is(e.Reason, exit) || e.Attempt != i {
			t.Fatalf("exit %d: event %+v, want reason %v attempt %d", i, e, exit, i)
		}
		if e := f.advanceThroughBackoff(t, "p", i+1); e.Attempt != i+1 {
			t.Fatalf("restart %d: event attempt %d, want %d", i+1, e.Attempt, i+1)
		}
	}
	if got := s.nextAttempt(t); got != 3 {
		t.Fatalf("Attempt(ctx) = %d after three restarts, want 3", got)
	}
	if _, ok := f.sup.Lookup("p"); !ok {
		t.Fatal("Lookup of a restarted permanent child = false")
	}
}

func TestTransientRestartsOnlyAfterAbnormalExit(t *testing.T) {
	normal := []struct {
		name string
		exit error
	}{
		{"nil", nil},
		{"ErrNormal", supervisor.ErrNormal},
		{"wrapped ErrNormal", fmt.Errorf("game said goodbye: %w", supervisor.ErrNormal)},
	}
	for _, tc := range normal {
		t.Run("normal "+tc.name, func(t *testing.T) {
			f := newFixture(t, supervisor.Spec{Restart: supervisor.Transient}, supervisor.Options{})
			s := f.start(t, "t")
			s.nextAttempt(t)
			s.exits <- tc.exit
			e := f.rec.final(t, "t")
			if e.Kind != supervisor.EventStopped || e.Reason != tc.exit {
				t.Fatalf("final event %+v, want stopped with %v", e, tc.exit)
			}
			if n := f.rec.count("t", supervisor.EventRestarting); n != 0 {
				t.Fatalf("%d restarts after a normal exit", n)
			}
			waitCount(t, f.sup, 0)
		})
	}

	abnormal := []struct {
		name string
		exit error
	}{
		{"error", errBoom},
		// A cancellation the supervisor did not cause is a failure of the
		// child, not a request to stop.
		{"stray context.Canceled", fmt.Errorf("read: %w", context.Canceled)},
	}
	for _, tc := range abnormal {
		t.Run("abnormal "+tc.name, func(t *testing.T) {
			f := newFixture(t, supervisor.Spec{Restart: supervisor.Transient}, supervisor.Options{})
			s := f.start(t, "t")
			s.nextAttempt(t)
			s.exits <- tc.exit
			f.advanceThroughBackoff(t, "t", 1)
			if got := s.nextAttempt(t); got != 1 {
				t.Fatalf("Attempt(ctx) after restart = %d, want 1", got)
			}
			s.exits <- nil
			if e := f.rec.final(t, "t"); e.Kind != supervisor.EventStopped || e.Reason != nil {
				t.Fatalf("final event %+v, want stopped with nil", e)
			}
		})
	}
}

func TestPanicIsAnAbnormalExit(t *testing.T) {
	var panicked atomic.Bool
	f := newFixtureRun(t, supervisor.Spec{Restart: supervisor.Transient}, supervisor.Options{},
		func(ctx context.Context, key string, s *script) error {
			if panicked.CompareAndSwap(false, true) {
				panic("nil map")
			}
			return runScript(ctx, key, s)
		})
	s := f.start(t, "panics")

	var pe *supervisor.PanicError
	if e := f.rec.first(t, "panics", supervisor.EventExited); !errors.As(e.Reason, &pe) || pe.Value != "nil map" || len(pe.Stack) == 0 {
		t.Fatalf("exit after panic: %+v, want a *PanicError with value and stack", e)
	}
	f.advanceThroughBackoff(t, "panics", 1)
	if got := s.nextAttempt(t); got != 1 {
		t.Fatalf("Attempt(ctx) after the panic = %d, want 1", got)
	}
}

func TestTemporaryNeverRestarts(t *testing.T) {
	for _, exit := range []error{nil, errBoom} {
		f := newFixture(t, supervisor.Spec{Restart: supervisor.Temporary}, supervisor.Options{})
		s := f.start(t, "tmp")
		s.nextAttempt(t)
		s.exits <- exit
		if e := f.rec.final(t, "tmp"); e.Kind != supervisor.EventStopped || e.Reason != exit {
			t.Fatalf("final event %+v, want stopped with %v", e, exit)
		}
		if n := f.rec.count("tmp", supervisor.EventRestarting); n != 0 {
			t.Fatalf("temporary child restarted %d times", n)
		}
	}
}

func TestChildOverIntensityGivesUpAloneWhileOthersRun(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent, Intensity: 2, Period: time.Hour}, supervisor.Options{})
	steady := f.start(t, "steady")
	steady.nextAttempt(t)
	flappy := f.start(t, "flappy")

	for i := range 3 {
		flappy.nextAttempt(t)
		flappy.exits <- fmt.Errorf("reset %d: %w", i, errBoom)
		if i < 2 {
			f.advanceThroughBackoff(t, "flappy", i+1)
		}
	}
	e := f.rec.final(t, "flappy")
	if e.Kind != supervisor.EventGaveUp || !errors.Is(e.Reason, supervisor.ErrIntensity) || !errors.Is(e.Reason, errBoom) {
		t.Fatalf("final event %+v, want gave up wrapping ErrIntensity and the last error", e)
	}
	if e.Attempt != 2 {
		t.Fatalf("gave up at attempt %d, want 2", e.Attempt)
	}

	if _, ok := f.sup.Lookup("steady"); !ok {
		t.Fatal("steady child gone after another child gave up")
	}
	if got := f.rec.kinds("steady"); len(got) != 1 || got[0] != supervisor.EventStarted {
		t.Fatalf("steady child events %v, want just started", got)
	}
	if err := f.sup.Err(); err != nil {
		t.Fatalf("supervisor Err() = %v after one child gave up", err)
	}
	waitCount(t, f.sup, 1)
}

func TestIntensityCountsOnlyRestartsWithinPeriod(t *testing.T) {
	const period = 10 * time.Second
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent, Intensity: 1, Period: period, BackoffMin: time.Second}, supervisor.Options{})
	s := f.start(t, "slow")
	for i := range 4 {
		s.nextAttempt(t)
		f.clock.Advance(period) // each failure comes a full period after the last restart
		s.exits <- errBoom
		if e := f.advanceThroughBackoff(t, "slow", i+1); e.Delay > time.Second {
			t.Fatalf("restart %d waited %v: the backoff did not reset with the window", i+1, e.Delay)
		}
	}
	if got := s.nextAttempt(t); got != 4 {
		t.Fatalf("Attempt(ctx) = %d, want 4", got)
	}
	if n := f.rec.count("slow", supervisor.EventGaveUp); n != 0 {
		t.Fatal("gave up although no two restarts fell within one period")
	}
}

func TestBackoffGrowsWithinPeriod(t *testing.T) {
	spec := supervisor.Spec{Intensity: 10, Period: time.Hour, BackoffMin: time.Second, BackoffMax: 8 * time.Second}
	f := newFixture(t, spec, supervisor.Options{})
	s := f.start(t, "k")
	for i := range 6 {
		s.nextAttempt(t)
		s.exits <- errBoom
		e := f.advanceThroughBackoff(t, "k", i+1)
		ceiling := min(spec.BackoffMin<<i, spec.BackoffMax)
		if e.Delay < ceiling/2 || e.Delay > ceiling {
			t.Fatalf("restart %d waited %v, want within [%v, %v]", i+1, e.Delay, ceiling/2, ceiling)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	spec := supervisor.Spec{BackoffMin: 100 * time.Millisecond, BackoffMax: 10 * time.Second}
	for n := 1; n <= 40; n++ {
		ceiling := min(spec.BackoffMin<<min(n-1, 20), spec.BackoffMax)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := supervisor.Backoff(spec, n)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("Backoff(n=%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("Backoff(n=%d) returned the same delay 50 times: no jitter", n)
		}
	}
}

func TestBackoffMaxBelowMinMeansMin(t *testing.T) {
	spec := supervisor.Spec{BackoffMin: time.Second, BackoffMax: time.Millisecond}
	for n := 1; n <= 5; n++ {
		if d := supervisor.Backoff(spec, n); d < time.Second/2 || d > time.Second {
			t.Fatalf("Backoff(n=%d) = %v, want within [500ms, 1s]", n, d)
		}
	}
}

func TestSupervisorWideIntensityStopsEverything(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent, Period: time.Hour},
		supervisor.Options{Intensity: 2, Period: time.Hour})
	steady := f.start(t, "steady")
	steady.nextAttempt(t)
	flappy := f.start(t, "flappy")

	for i := range 3 {
		flappy.nextAttempt(t)
		flappy.exits <- errBoom
		if i < 2 {
			f.advanceThroughBackoff(t, "flappy", i+1)
		}
	}
	e := f.rec.final(t, "flappy")
	if e.Kind != supervisor.EventGaveUp || !errors.Is(e.Reason, supervisor.ErrIntensity) {
		t.Fatalf("flappy final event %+v, want gave up with ErrIntensity", e)
	}
	select {
	case <-f.sup.Done():
	case <-time.After(patience):
		t.Fatal("Done not closed after the supervisor-wide limit")
	}
	if err := f.sup.Err(); !errors.Is(err, supervisor.ErrIntensity) {
		t.Fatalf("Err() = %v, want ErrIntensity", err)
	}
	if e := f.rec.final(t, "steady"); e.Kind != supervisor.EventStopped || !errors.Is(e.Reason, supervisor.ErrIntensity) {
		t.Fatalf("steady final event %+v, want stopped by the supervisor's failure", e)
	}
	if _, err := f.sup.StartChild("new", newScript()); !errors.Is(err, supervisor.ErrIntensity) {
		t.Fatalf("StartChild after the supervisor gave up: %v, want ErrIntensity", err)
	}
	waitCount(t, f.sup, 0)
}

// waitCount waits for the supervisor to hold n children: a child leaves
// just after its final event.
func waitCount(t testing.TB, sup interface{ Count() int }, n int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for sup.Count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Count() = %d, want %d", sup.Count(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func shutdown[K comparable, A any](t testing.TB, sup *supervisor.Typed[K, A]) {
	t.Helper()
	if err := sup.Shutdown(testContext(t)); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
