package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Restart says when a child that returned is run again.
type Restart int

const (
	// Permanent children are always restarted, even after a normal exit.
	Permanent Restart = iota
	// Transient children are restarted only after an abnormal exit.
	Transient
	// Temporary children are never restarted.
	Temporary
)

func (r Restart) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("Restart(%d)", int(r))
}

// Defaults applied to zero Spec fields.
const (
	DefaultIntensity       = 5
	DefaultPeriod          = 30 * time.Second
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 10 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// Spec is how one child is restarted and stopped. Zero fields take the
// Default values above, so Spec{Restart: Transient} is a complete spec.
type Spec struct {
	Restart Restart

	// A child restarted more than Intensity times within Period gives up:
	// it is not run again, and an EventGaveUp says so. Only that child is
	// affected.
	Intensity int
	Period    time.Duration

	// The n-th restart within Period waits a delay drawn uniformly from
	// [b/2, b], where b = min(BackoffMax, BackoffMin·2^(n-1)). The jitter
	// keeps children that failed together (a game restarting drops all of
	// its sessions at once) from coming back together.
	BackoffMin time.Duration
	BackoffMax time.Duration

	// ShutdownTimeout is how long a stopped child has to return after its
	// context is cancelled before its kill hook is called, and again how
	// long it has after that before it is reported as unstopped.
	ShutdownTimeout time.Duration
}

func (s Spec) withDefaults() Spec {
	if s.Intensity <= 0 {
		s.Intensity = DefaultIntensity
	}
	if s.Period <= 0 {
		s.Period = DefaultPeriod
	}
	if s.BackoffMin <= 0 {
		s.BackoffMin = DefaultBackoffMin
	}
	if s.BackoffMax <= 0 {
		s.BackoffMax = DefaultBackoffMax
	}
	if s.BackoffMax < s.BackoffMin {
		s.BackoffMax = s.BackoffMin
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = DefaultShutdownTimeout
	}
	return s
}

func (s Spec) validate() error {
	if s.Restart < Permanent || s.Restart > Temporary {
		return fmt.Errorf("supervisor: invalid restart type %d", int(s.Restart))
	}
	return nil
}

var (
	// ErrAlreadyStarted is returned by StartChild when a child already runs
	// for the key (it may be between restarts). Callers treat it as
	// "attach to the one that runs".
	ErrAlreadyStarted = errors.New("supervisor: child already started")
	// ErrStopping is returned by StartChild when the child for the key has
	// been terminated but has not yet returned. Its final event follows;
	// after it, StartChild starts a fresh child.
	ErrStopping = errors.New("supervisor: child is stopping")
	// ErrMaxChildren is returned by StartChild when Options.MaxChildren
	// children exist.
	ErrMaxChildren = errors.New("supervisor: too many children")
	// ErrShuttingDown is returned by StartChild after Shutdown, and is the
	// cancel cause (see context.Cause) of children stopped by Shutdown.
	ErrShuttingDown = errors.New("supervisor: shutting down")
	// ErrNotFound is returned by Terminate for a key with no child.
	ErrNotFound = errors.New("supervisor: no such child")
	// ErrTerminated is the cancel cause of a child stopped by Terminate.
	ErrTerminated = errors.New("supervisor: child terminated")
	// ErrIntensity is wrapped by the Reason of an EventGaveUp, and by Err
	// when the supervisor-wide restart limit was exceeded.
	ErrIntensity = errors.New("supervisor: restart intensity exceeded")

	// ErrNormal marks a normal exit: a child returning an error that wraps
	// it (or nil, or context.Canceled after its context was cancelled) is
	// not restarted when Transient.
	ErrNormal = errors.New("supervisor: normal exit")
)

// isNormal reports whether err is a normal exit. It is asked only of
// children whose context was not cancelled (a cancelled child is never
// restarted), so context.Canceled here means a child let an inner
// cancellation escape: a failure.
func isNormal(err error) bool {
	return err == nil || errors.Is(err, ErrNormal)
}

// UnstoppedError names the children that had not returned when Terminate or
// Shutdown gave up on them, like suture's unstopped-service report. They
// stay in the supervisor (Keys, Count) until they do return.
type UnstoppedError struct {
	Keys []any
}

func (e *UnstoppedError) Error() string {
	return fmt.Sprintf("supervisor: %d children did not stop: %v", len(e.Keys), e.Keys)
}

// PanicError is the exit reason of a child that panicked. A panic is an
// abnormal exit like any other: the child is restarted by its rules.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("supervisor: child panicked: %v", e.Value)
}

func panicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Options configure a supervisor. The zero value is usable.
type Options struct {
	// MaxChildren bounds how many children exist at once (0: no bound).
	// Children that are stopping still count: they still hold resources.
	MaxChildren int

	// Intensity and Period set an optional supervisor-wide limit: more
	// than Intensity restarts of any children within Period and the
	// supervisor gives up, as an OTP supervisor does: it stops all
	// children, refuses new ones, closes Done and reports the cause in
	// Err. Zero Intensity means no supervisor-wide limit; zero Period
	// means DefaultPeriod.
	Intensity int
	Period    time.Duration

	// Clock is the time source (default: the real clock). Tests pass
	// supervisortest.Clock so they never sleep.
	Clock Clock

	// OnEvent, if set, receives every event. See Event for the ordering
	// guarantees. It runs synchronously on the child's goroutine: it must
	// be quick, and must not call StartChild, Terminate or Shutdown (which
	// may wait for that very goroutine); hand work to another goroutine.
	OnEvent func(Event)

	// Logger receives a line per event (default: slog.Default()).
	Logger *slog.Logger
}
