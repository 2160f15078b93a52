package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/worker/supervisor"
	"github.com/trellis-mud/trellis/worker/supervisor/supervisortest"
)

func TestStartChildOfARunningKeyReturnsTheRunningOne(t *testing.T) {
	f := newFixture(t, supervisor.Spec{}, supervisor.Options{})
	first := f.start(t, "alice@demo")
	first.nextAttempt(t)

	got, err := f.sup.StartChild("alice@demo", newScript())
	if !errors.Is(err, supervisor.ErrAlreadyStarted) || got != first {
		t.Fatalf("second StartChild = %p, %v; want the first child's args %p and ErrAlreadyStarted", got, err, first)
	}
	if got, ok := f.sup.Lookup("alice@demo"); !ok || got != first {
		t.Fatalf("Lookup = %p, %v; want %p, true", got, ok, first)
	}
	if _, ok := f.sup.Lookup("bob@demo"); ok {
		t.Fatal("Lookup of an unknown key = true")
	}
	if n := f.rec.count("alice@demo", supervisor.EventStarted); n != 1 {
		t.Fatalf("%d runs started, want 1", n)
	}
}

func TestStartChildWhileInBackoffReturnsTheRestartingOne(t *testing.T) {
	f := newFixture(t, supervisor.Spec{}, supervisor.Options{})
	s := f.start(t, "k")
	s.nextAttempt(t)
	s.exits <- errBoom
	f.rec.first(t, "k", supervisor.EventRestarting)
	if got, err := f.sup.StartChild("k", newScript()); !errors.Is(err, supervisor.ErrAlreadyStarted) || got != s {
		t.Fatalf("StartChild during backoff = %p, %v; want the restarting child and ErrAlreadyStarted", got, err)
	}
}

func TestConcurrentStartsOfOneKeyRunExactlyOneChild(t *testing.T) {
	f := newFixture(t, supervisor.Spec{}, supervisor.Options{})
	const starters = 100
	var (
		wg      sync.WaitGroup
		release = make(chan struct{})
		mu      sync.Mutex
		winners []*script
		results = map[error]int{}
	)
	for range starters {
		wg.Go(func() {
			mine := newScript()
			<-release
			got, err := f.sup.StartChild("same", mine)
			mu.Lock()
			defer mu.Unlock()
			results[err]++
			if err == nil {
				if got != mine {
					t.Errorf("winner got back %p, want its own args %p", got, mine)
				}
				winners = append(winners, mine)
			}
		})
	}
	close(release)
	wg.Wait()

	if results[nil] != 1 || results[supervisor.ErrAlreadyStarted] != starters-1 {
		t.Fatalf("results %v, want 1 nil and %d ErrAlreadyStarted", results, starters-1)
	}
	winners[0].nextAttempt(t)
	if got, _ := f.sup.Lookup("same"); got != winners[0] {
		t.Fatal("Lookup does not return the winner")
	}
	if n := f.sup.Count(); n != 1 {
		t.Fatalf("Count() = %d, want 1", n)
	}
	if n := f.rec.count("same", supervisor.EventStarted); n != 1 {
		t.Fatalf("%d runs started, want 1", n)
	}
}

func TestMaxChildren(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Temporary}, supervisor.Options{MaxChildren: 2})
	a := f.start(t, "a")
	f.start(t, "b")
	if _, err := f.sup.StartChild("c", newScript()); !errors.Is(err, supervisor.ErrMaxChildren) {
		t.Fatalf("third StartChild: %v, want ErrMaxChildren", err)
	}
	// A running key is still found when full: re-attach never needs room.
	if _, err := f.sup.StartChild("a", newScript()); !errors.Is(err, supervisor.ErrAlreadyStarted) {
		t.Fatalf("StartChild of a running key when full: %v, want ErrAlreadyStarted", err)
	}
	a.nextAttempt(t)
	a.exits <- nil
	f.rec.final(t, "a")
	waitCount(t, f.sup, 1)
	f.start(t, "c")
	if got := f.sup.Keys(); !sameKeys(got, []string{"b", "c"}) {
		t.Fatalf("Keys() = %v, want [b c]", got)
	}
}

func TestFreshChildAfterTheFinalEvent(t *testing.T) {
	// The final event is held inside OnEvent while the test races a start of
	// the same key against it: the start must neither attach to the ending
	// child nor let the new child's events overtake the old one's.
	clock := supervisortest.NewClock(epoch)
	rec := newRecorder()
	inFinal := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	sup := supervisor.NewTyped(supervisor.Template[string, *script]{
		Spec: supervisor.Spec{Restart: supervisor.Transient},
		Run:  runScript,
	}, supervisor.Options{Clock: clock, Logger: discard(), OnEvent: func(e supervisor.Event) {
		rec.record(e)
		if e.Kind.Final() {
			once.Do(func() { close(inFinal); <-release })
		}
	}})
	defer shutdown(t, sup)

	old := newScript()
	if _, err := sup.StartChild("k", old); err != nil {
		t.Fatal(err)
	}
	old.nextAttempt(t)
	old.exits <- nil
	<-inFinal

	if _, ok := sup.Lookup("k"); ok {
		t.Fatal("Lookup finds a child that is delivering its final event")
	}
	if n := sup.Count(); n != 1 {
		t.Fatalf("Count() during the final event = %d, want 1", n)
	}
	fresh := newScript()
	started := make(chan error, 1)
	go func() {
		_, err := sup.StartChild("k", fresh)
		started <- err
	}()
	for range 1000 { // let the start reach the ending child before release
		runtime.Gosched()
	}
	close(release)
	if err := <-started; err != nil {
		t.Fatalf("StartChild racing the final event: %v, want a fresh start", err)
	}
	if got := fresh.nextAttempt(t); got != 0 {
		t.Fatalf("fresh child's Attempt(ctx) = %d, want 0", got)
	}
	want := []supervisor.EventKind{supervisor.EventStarted, supervisor.EventExited, supervisor.EventStopped, supervisor.EventStarted}
	if got := rec.kinds("k"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestTerminate(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent}, supervisor.Options{})
	s := f.start(t, "k")
	s.nextAttempt(t)
	if err := f.sup.Terminate(testContext(t), "k"); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	// Terminate returns once the child has returned; its final event and
	// removal follow from its own goroutine.
	e := f.rec.final(t, "k")
	if e.Kind != supervisor.EventStopped || !errors.Is(e.Reason, supervisor.ErrTerminated) {
		t.Fatalf("final event %+v, want stopped with ErrTerminated", e)
	}
	if n := f.rec.count("k", supervisor.EventRestarting); n != 0 {
		t.Fatal("a terminated permanent child was restarted")
	}
	waitCount(t, f.sup, 0)
	if err := f.sup.Terminate(testContext(t), "k"); !errors.Is(err, supervisor.ErrNotFound) {
		t.Fatalf("Terminate of a gone child: %v, want ErrNotFound", err)
	}
}

func TestTerminateDuringBackoff(t *testing.T) {
	f := newFixture(t, supervisor.Spec{Restart: supervisor.Permanent}, supervisor.Options{})
	s := f.start(t, "k")
	s.nextAttempt(t)
	s.exits <- errBoom
	f.rec.first(t, "k", supervisor.EventRestarting)
	if err := f.clock.WaitForTimers(testContext(t), 1); err != nil {
		t.Fatal(err)
	}

	if err := f.sup.Terminate(testContext(t), "k"); err != nil {
		t.Fatalf("Terminate during backoff: %v", err)
	}
	if e := f.rec.final(t, "k"); e.Kind != supervisor.EventStopped || !errors.Is(e.Reason, supervisor.ErrTerminated) {
		t.Fatalf("final event %+v, want stopped with ErrTerminated", e)
	}
	if n := f.clock.Timers(); n != 0 {
		t.Fatalf("%d timers left pending: the backoff timer was not stopped", n)
	}
	f.clock.Advance(time.Hour)
	if n := f.rec.count("k", supervisor.EventStarted); n != 1 {
		t.Fatalf("child ran %d times, want once", n)
	}
}

// stubborn is a child that ignores its context: only its kill hook, or the
// test, makes it return.
type stubborn struct {
	killed   chan struct{} // closed by the kill hook
	released chan struct{} // closed by the test
	running  chan struct{}
	obeyKill bool

	obeyCancel bool // for the children that behave, as a contrast
}

func newStubborn(obeyKill bool) *stubborn {
	return &stubborn{killed: make(chan struct{}), released: make(chan struct{}), running: make(chan struct{}), obeyKill: obeyKill}
}

func stubbornTemplate() supervisor.Template[string, *stubborn] {
	return supervisor.Template[string, *stubborn]{
		Spec: supervisor.Spec{Restart: supervisor.Transient, ShutdownTimeout: 5 * time.Second},
		Run: func(ctx context.Context, _ string, s *stubborn) error {
			close(s.running)
			if s.obeyCancel {
				<-ctx.Done()
				return ctx.Err()
			}
			if s.obeyKill {
				select {
				case <-s.killed:
					return errors.New("use of closed network connection")
				case <-s.released:
					return nil
				}
			}
			<-s.released
			return nil
		},
		Kill: func(_ string, s *stubborn) { close(s.killed) },
	}
}

func TestTerminateKillsAChildThatIgnoresCancellation(t *testing.T) {
	clock := supervisortest.NewClock(epoch)
	rec := newRecorder()
	sup := supervisor.NewTyped(stubbornTemplate(), supervisor.Options{Clock: clock, OnEvent: rec.record, Logger: discard()})
	defer shutdown(t, sup)
	s := newStubborn(true)
	if _, err := sup.StartChild("k", s); err != nil {
		t.Fatal(err)
	}
	<-s.running

	errc := make(chan error, 1)
	go func() { errc <- sup.Terminate(testContext(t), "k") }()
	if err := clock.WaitForTimers(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.killed:
		t.Fatal("killed before the shutdown timeout")
	default:
	}
	clock.Advance(5 * time.Second)
	if err := <-errc; err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	select {
	case <-s.killed:
	default:
		t.Fatal("Terminate returned nil but the kill hook never ran")
	}
	want := []supervisor.EventKind{supervisor.EventStarted, supervisor.EventKilled, supervisor.EventExited, supervisor.EventStopped}
	rec.final(t, "k")
	if got := rec.kinds("k"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestTerminateReportsAChildThatWillNotStop(t *testing.T) {
	clock := supervisortest.NewClock(epoch)
	rec := newRecorder()
	sup := supervisor.NewTyped(stubbornTemplate(), supervisor.Options{Clock: clock, OnEvent: rec.record, Logger: discard()})
	defer shutdown(t, sup)
	s := newStubborn(false)
	if _, err := sup.StartChild("hung", s); err != nil {
		t.Fatal(err)
	}
	<-s.running

	errc := make(chan error, 1)
	go func() { errc <- sup.Terminate(testContext(t), "hung") }()
	for range 2 { // the shutdown timeout, then the same again after the kill
		if err := clock.WaitForTimers(testContext(t), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(5 * time.Second)
	}
	var unstopped *supervisor.UnstoppedError
	if err := <-errc; !errors.As(err, &unstopped) || fmt.Sprint(unstopped.Keys) != "[hung]" {
		t.Fatalf("Terminate of a hung child: %v, want an UnstoppedError naming it", err)
	}

	// It still exists: a second one must not run beside it.
	if n := sup.Count(); n != 1 {
		t.Fatalf("Count() = %d, want the unstopped child counted", n)
	}
	if _, err := sup.StartChild("hung", newStubborn(false)); !errors.Is(err, supervisor.ErrStopping) {
		t.Fatalf("StartChild of an unstopped key: %v, want ErrStopping", err)
	}
	if _, ok := sup.Lookup("hung"); ok {
		t.Fatal("Lookup finds a terminated child")
	}

	close(s.released)
	if e := rec.final(t, "hung"); e.Kind != supervisor.EventStopped || !errors.Is(e.Reason, supervisor.ErrTerminated) {
		t.Fatalf("final event %+v, want stopped with ErrTerminated", e)
	}
	waitCount(t, sup, 0)
}

func TestShutdownWhileChildrenHangReturnsAtTheDeadlineAndNamesThem(t *testing.T) {
	clock := supervisortest.NewClock(epoch)
	rec := newRecorder()
	sup := supervisor.NewTyped(stubbornTemplate(), supervisor.Options{Clock: clock, OnEvent: rec.record, Logger: discard()})
	children := map[string]*stubborn{}
	for _, key := range []string{"ok1", "hung1", "ok2", "hung2", "ok3"} {
		s := newStubborn(false)
		s.obeyCancel = key[:2] == "ok"
		if _, err := sup.StartChild(key, s); err != nil {
			t.Fatal(err)
		}
		<-s.running
		children[key] = s
	}

	// A real deadline, far shorter than the shutdown timeout on the manual
	// clock, which never moves: only the deadline can end the waits.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := sup.Shutdown(ctx)
	var unstopped *supervisor.UnstoppedError
	if !errors.As(err, &unstopped) {
		t.Fatalf("Shutdown: %v, want an UnstoppedError", err)
	}
	got := make([]string, 0, len(unstopped.Keys))
	for _, k := range unstopped.Keys {
		got = append(got, k.(string))
	}
	if !sameKeys(got, []string{"hung1", "hung2"}) {
		t.Fatalf("unstopped %v, want [hung1 hung2]", got)
	}
	if err := sup.Err(); !errors.Is(err, supervisor.ErrShuttingDown) {
		t.Fatalf("Err() = %v, want ErrShuttingDown", err)
	}
	select {
	case <-sup.Done():
	default:
		t.Fatal("Done not closed after Shutdown")
	}
	if _, err := sup.StartChild("late", newStubborn(false)); !errors.Is(err, supervisor.ErrShuttingDown) {
		t.Fatalf("StartChild after Shutdown: %v, want ErrShuttingDown", err)
	}
	for _, key := range []string{"ok1", "ok2", "ok3"} {
		if e := rec.final(t, key); !errors.Is(e.Reason, supervisor.ErrShuttingDown) {
			t.Fatalf("%s final event %+v, want stopped with ErrShuttingDown", key, e)
		}
	}

	close(children["hung1"].released)
	close(children["hung2"].released)
	if err := sup.Shutdown(testContext(t)); err != nil {
		t.Fatalf("second Shutdown once the hung children returned: %v", err)
	}
}

func TestShutdownStopsChildrenConcurrently(t *testing.T) {
	clock := supervisortest.NewClock(epoch)
	rec := newRecorder()
	sup := supervisor.NewTyped(stubbornTemplate(), supervisor.Options{Clock: clock, OnEvent: rec.record, Logger: discard()})
	const n = 50
	for i := range n {
		s := newStubborn(true)
		if _, err := sup.StartChild(fmt.Sprint(i), s); err != nil {
			t.Fatal(err)
		}
		<-s.running
	}
	errc := make(chan error, 1)
	go func() { errc <- sup.Shutdown(testContext(t)) }()
	// All n shutdown timeouts run at once, and one step of the clock past
	// them kills every child.
	if err := clock.WaitForTimers(testContext(t), n); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := range n {
		if e := rec.final(t, fmt.Sprint(i)); e.Kind != supervisor.EventStopped {
			t.Fatalf("child %d final event %+v", i, e)
		}
	}
	waitCount(t, sup, 0)
}

func TestShutdownOfAnEmptySupervisor(t *testing.T) {
	sup := supervisor.NewTyped(supervisor.Template[int, struct{}]{
		Run: func(context.Context, int, struct{}) error { return nil },
	}, supervisor.Options{Logger: discard()})
	if err := sup.Shutdown(testContext(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := sup.StartChild(1, struct{}{}); !errors.Is(err, supervisor.ErrShuttingDown) {
		t.Fatalf("StartChild after Shutdown: %v", err)
	}
}

func TestNewTypedRejectsABadTemplate(t *testing.T) {
	for name, tmpl := range map[string]supervisor.Template[string, int]{
		"nil Run":      {},
		"restart type": {Spec: supervisor.Spec{Restart: 7}, Run: func(context.Context, string, int) error { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewTyped did not panic")
				}
			}()
			supervisor.NewTyped(tmpl, supervisor.Options{})
		})
	}
}
