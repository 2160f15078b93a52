package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// EventKind says what happened to a child.
type EventKind int

const (
	// EventStarted: a run of the child began (Attempt 0 is the first run).
	EventStarted EventKind = iota + 1
	// EventExited: a run returned, with Reason (nil for a clean return).
	EventExited
	// EventRestarting: the child runs again as Attempt after Delay.
	EventRestarting
	// EventKilled: a stopped child did not return within its shutdown
	// timeout (or before the caller's deadline); its kill hook, if it has
	// one, is called next.
	EventKilled
	// EventGaveUp (final): the child exceeded its restart intensity.
	// Reason wraps both ErrIntensity and the last exit reason.
	EventGaveUp
	// EventStopped (final): the child will not run again because it exited
	// normally, is Temporary, or was terminated (Reason is then the cancel
	// cause: ErrTerminated, ErrShuttingDown, or the supervisor's failure).
	EventStopped
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventExited:
		return "exited"
	case EventRestarting:
		return "restarting"
	case EventKilled:
		return "killed"
	case EventGaveUp:
		return "gave up"
	case EventStopped:
		return "stopped"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Final reports whether k is the last event of a child.
func (k EventKind) Final() bool { return k == EventGaveUp || k == EventStopped }

// Event is one thing that happened to one child.
//
// Ordering: the events of one child are delivered one at a time, in order,
// from the child's own goroutine (EventKilled alone comes from the goroutine
// that stops the child, before its kill hook runs). Every child ends with
// exactly one final event (EventStopped or EventGaveUp), delivered after its
// last run returned. The final event of a key is delivered before the first
// event of the next child started for the same key, and once OnEvent has
// returned from it, StartChild for that key starts a fresh child.
type Event struct {
	Kind    EventKind
	Key     any
	Reason  error         // Exited, GaveUp, Stopped
	Attempt int           // the run concerned: 0 for the first, n for the n-th restart (0 for Killed)
	Delay   time.Duration // Restarting
	Time    time.Time
}

func (e Event) level() slog.Level {
	switch e.Kind {
	case EventRestarting:
		return slog.LevelInfo
	case EventKilled, EventGaveUp:
		return slog.LevelWarn
	case EventExited:
		if _, ok := e.Reason.(*PanicError); ok {
			return slog.LevelError
		}
	}
	return slog.LevelDebug
}

func (e Event) log(l *slog.Logger) {
	level := e.level()
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.Any("key", e.Key), slog.Int("attempt", e.Attempt)}
	if e.Reason != nil {
		attrs = append(attrs, slog.Any("reason", e.Reason))
	}
	if e.Kind == EventRestarting {
		attrs = append(attrs, slog.Duration("delay", e.Delay))
	}
	if p, ok := e.Reason.(*PanicError); ok {
		attrs = append(attrs, slog.String("stack", string(p.Stack)))
	}
	l.LogAttrs(ctx, level, "child "+e.Kind.String(), attrs...)
}
