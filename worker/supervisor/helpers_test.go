package supervisor_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/supervisor/supervisortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds every wait in these tests. It is a safety net against a
// hang, never an assertion about speed.
const patience = 20 * time.Second

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recorder keeps every event a supervisor emits and lets a test wait for
// the one it expects.
type recorder struct {
	mu      sync.Mutex
	events  []supervisor.Event
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) record(e supervisor.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

// nth waits for the n-th (from 1) event of kind for key and returns it.
func (r *recorder) nth(t testing.TB, key any, kind supervisor.EventKind, n int) supervisor.Event {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		seen := 0
		for _, e := range r.events {
			if e.Key == key && e.Kind == kind {
				if seen++; seen == n {
					r.mu.Unlock()
					return e
				}
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no event %d of kind %v for %v; have %v", n, kind, key, r.kinds(key))
		}
	}
}

func (r *recorder) first(t testing.TB, key any, kind supervisor.EventKind) supervisor.Event {
	t.Helper()
	return r.nth(t, key, kind, 1)
}

// final waits for the final event of key.
func (r *recorder) final(t testing.TB, key any) supervisor.Event {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if e.Key == key && e.Kind.Final() {
				r.mu.Unlock()
				return e
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no final event for %v; have %v", key, r.kinds(key))
		}
	}
}

func (r *recorder) kinds(key any) []supervisor.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kinds []supervisor.EventKind
	for _, e := range r.events {
		if e.Key == key {
			kinds = append(kinds, e.Kind)
		}
	}
	return kinds
}

func (r *recorder) count(key any, kind supervisor.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Key == key && e.Kind == kind {
			n++
		}
	}
	return n
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// script drives a child from the test: each run reports its attempt number
// and returns whatever the test sends on exits, or ctx.Err() once
// cancelled.
type script struct {
	attempts chan int
	exits    chan error
}

func newScript() *script {
	return &script{attempts: make(chan int, 64), exits: make(chan error, 64)}
}

func runScript(ctx context.Context, _ string, s *script) error {
	s.attempts <- supervisor.Attempt(ctx)
	select {
	case err := <-s.exits:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextAttempt waits for the script's next run to begin and returns its
// attempt number.
func (s *script) nextAttempt(t testing.TB) int {
	t.Helper()
	select {
	case n := <-s.attempts:
		return n
	case <-time.After(patience):
		t.Fatal("child did not run")
		return -1
	}
}

// fixture is a supervisor of scripted children on a manual clock.
type fixture struct {
	clock *supervisortest.Clock
	rec   *recorder
	sup   *supervisor.Typed[string, *script]
}

func newFixture(t testing.TB, spec supervisor.Spec, opts supervisor.Options) *fixture {
	t.Helper()
	return newFixtureRun(t, spec, opts, runScript)
}

func newFixtureRun(t testing.TB, spec supervisor.Spec, opts supervisor.Options,
	run func(context.Context, string, *script) error) *fixture {
	t.Helper()
	f := &fixture{clock: supervisortest.NewClock(epoch), rec: newRecorder()}
	opts.Clock = f.clock
	opts.OnEvent = f.rec.record
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	f.sup = supervisor.NewTyped(supervisor.Template[string, *script]{Spec: spec, Run: run}, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := f.sup.Shutdown(ctx); err != nil {
			t.Errorf("cleanup shutdown: %v", err)
		}
	})
	return f
}

func (f *fixture) start(t testing.TB, key string) *script {
	t.Helper()
	s := newScript()
	if _, err := f.sup.StartChild(key, s); err != nil {
		t.Fatalf("StartChild(%q): %v", key, err)
	}
	return s
}

// advanceThroughBackoff waits for the n-th restart of key to be scheduled,
// checks the delay is honoured to the nanosecond, and lets it pass.
func (f *fixture) advanceThroughBackoff(t testing.TB, key string, n int) supervisor.Event {
	t.Helper()
	e := f.rec.nth(t, key, supervisor.EventRestarting, n)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := f.clock.WaitForTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(e.Delay - 1)
	if f.clock.Timers() != 1 {
		t.Fatalf("backoff of %v ended before its delay %v", key, e.Delay)
	}
	f.clock.Advance(1)
	return e
}

func sameKeys[K comparable](got, want []K) bool {
	return len(got) == len(want) && !slices.ContainsFunc(want, func(k K) bool { return !slices.Contains(got, k) })
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}
