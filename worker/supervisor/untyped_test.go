package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/supervisor/supervisortest"
)

// The untyped supervisor runs on the real clock here, with delays of a
// millisecond or less, so the default clock is exercised too.
func TestUntypedSupervisorGivesEachChildItsOwnSpec(t *testing.T) {
	rec := newRecorder()
	sup := supervisor.New(supervisor.Options{OnEvent: rec.record, Logger: discard()})

	runs := make(chan string, 16)
	flapping := supervisor.Child{
		Spec: supervisor.Spec{Restart: supervisor.Permanent, Intensity: 1, Period: time.Hour,
			BackoffMin: time.Microsecond, BackoffMax: time.Microsecond},
		Run: func(context.Context) error { runs <- "flapping"; return errBoom },
	}
	patient := supervisor.Child{
		Spec: supervisor.Spec{Restart: supervisor.Transient, Intensity: 5, Period: time.Hour,
			BackoffMin: time.Microsecond, BackoffMax: time.Microsecond},
		Run: func(ctx context.Context) error {
			runs <- "patient"
			if supervisor.Attempt(ctx) < 3 {
				return errBoom
			}
			<-ctx.Done()
			return ctx.Err()
		},
	}
	if err := sup.StartChild("flapping", flapping); err != nil {
		t.Fatal(err)
	}
	if err := sup.StartChild("patient", patient); err != nil {
		t.Fatal(err)
	}
	if err := sup.StartChild("patient", patient); !errors.Is(err, supervisor.ErrAlreadyStarted) {
		t.Fatalf("second StartChild: %v, want ErrAlreadyStarted", err)
	}

	if e := rec.final(t, "flapping"); e.Kind != supervisor.EventGaveUp || e.Attempt != 1 {
		t.Fatalf("flapping final event %+v, want gave up after one restart", e)
	}
	rec.nth(t, "patient", supervisor.EventStarted, 4) // three restarts, within its intensity of 5
	if !sup.Running("patient") {
		t.Fatal("Running(patient) = false")
	}
	waitCount(t, sup, 1)
	if got := sup.Keys(); !sameKeys(got, []string{"patient"}) {
		t.Fatalf("Keys() = %v", got)
	}

	if err := sup.Terminate(testContext(t), "patient"); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if err := sup.Shutdown(testContext(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-sup.Done()
	if err := sup.Err(); !errors.Is(err, supervisor.ErrShuttingDown) {
		t.Fatalf("Err() = %v", err)
	}
}

func TestUntypedKillHook(t *testing.T) {
	clock := supervisortest.NewClock(epoch)
	sup := supervisor.New(supervisor.Options{Clock: clock, Logger: discard()})
	killed := make(chan struct{})
	running := make(chan struct{})
	err := sup.StartChild("k", supervisor.Child{
		Spec: supervisor.Spec{ShutdownTimeout: time.Second},
		Run: func(context.Context) error {
			close(running)
			<-killed // ignores its context
			return nil
		},
		Kill: func() { close(killed) },
	})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	errc := make(chan error, 1)
	go func() { errc <- sup.Shutdown(testContext(t)) }()
	if err := clock.WaitForTimers(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second) // the kill; the clock then stays put until the child returns
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestUntypedRejectsABadChild(t *testing.T) {
	sup := supervisor.New(supervisor.Options{Logger: discard()})
	if err := sup.StartChild("k", supervisor.Child{}); err == nil || !strings.Contains(err.Error(), "k") {
		t.Fatalf("StartChild without Run: %v, want an error naming the child", err)
	}
	bad := supervisor.Child{Spec: supervisor.Spec{Restart: -1}, Run: func(context.Context) error { return nil }}
	if err := sup.StartChild("k", bad); err == nil {
		t.Fatal("StartChild with an invalid restart type succeeded")
	}
	if n := sup.Count(); n != 0 {
		t.Fatalf("Count() = %d after rejected starts", n)
	}
	if err := sup.Terminate(testContext(t), "k"); !errors.Is(err, supervisor.ErrNotFound) {
		t.Fatalf("Terminate: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the supervisor's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestEventsAreLogged(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixtureRun(t, supervisor.Spec{Restart: supervisor.Transient}, supervisor.Options{Logger: logger},
		func(ctx context.Context, _ string, _ *script) error {
			if supervisor.Attempt(ctx) == 0 {
				panic("kaboom")
			}
			return nil
		})
	f.start(t, "k")
	f.advanceThroughBackoff(t, "k", 1)
	f.rec.final(t, "k")

	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="child started" key=k attempt=0`,
		`level=ERROR msg="child exited" key=k attempt=0 reason="supervisor: child panicked: kaboom" stack=`,
		`level=INFO msg="child restarting" key=k attempt=1 delay=`,
		`level=DEBUG msg="child stopped" key=k attempt=1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q; log:\n%s", want, out)
		}
	}
}

func TestQuietLoggerSkipsDebugEvents(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Temporary}, supervisor.Options{Logger: logger})
	s := f.start(t, "k")
	s.nextAttempt(t)
	s.exits <- nil
	f.rec.final(t, "k")
	if out := buf.String(); out != "" {
		t.Fatalf("info-level logger got debug events:\n%s", out)
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{supervisor.Permanent.String(), "permanent"},
		{supervisor.Transient.String(), "transient"},
		{supervisor.Temporary.String(), "temporary"},
		{supervisor.Restart(9).String(), "Restart(9)"},
		{supervisor.EventStarted.String(), "started"},
		{supervisor.EventExited.String(), "exited"},
		{supervisor.EventRestarting.String(), "restarting"},
		{supervisor.EventKilled.String(), "killed"},
		{supervisor.EventGaveUp.String(), "gave up"},
		{supervisor.EventStopped.String(), "stopped"},
		{supervisor.EventKind(0).String(), "EventKind(0)"},
		{(&supervisor.UnstoppedError{Keys: []any{"a", "b"}}).Error(), "supervisor: 2 children did not stop: [a b]"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for k := supervisor.EventStarted; k <= supervisor.EventStopped; k++ {
		if want := k == supervisor.EventGaveUp || k == supervisor.EventStopped; k.Final() != want {
			t.Errorf("%v.Final() = %v", k, !want)
		}
	}
}

func TestAttemptOutsideASupervisedChild(t *testing.T) {
	if n := supervisor.Attempt(context.Background()); n != 0 {
		t.Fatalf("Attempt(Background) = %d, want 0", n)
	}
}
