// Package supervisor is a dynamic supervisor in the manner of Erlang/OTP:
// it starts children on demand, keyed by an id, restarts those that fail by
// rules given up front, and stops them, politely and then by force, when
// asked. It knows nothing of what its children do. In Trellis each worker
// runs one, and its children are telnet sessions, one per (user, game).
//
// # Children
//
// A child is a function of a context that returns an error. The typed form,
// Typed, is built once from a Template (the function, an optional kill hook
// and a Spec), like OTP's simple_one_for_one or Pinto's typed dynamic
// supervisor; starting a child then takes only its key and its arguments,
// and the type system checks both:
//
//	sup := supervisor.NewTyped(supervisor.Template[SessionKey, *Session]{
//		Spec: supervisor.Spec{Restart: supervisor.Transient},
//		Run:  func(ctx context.Context, k SessionKey, s *Session) error { return s.Run(ctx) },
//		Kill: func(k SessionKey, s *Session) { s.CloseConn() },
//	}, supervisor.Options{MaxChildren: 10_000, OnEvent: metrics.Observe})
//
//	s, err := sup.StartChild(key, NewSession(key))
//	switch {
//	case errors.Is(err, supervisor.ErrAlreadyStarted): // s is the running session: re-attach
//	case err != nil: // full, shutting down, or the old one still stopping
//	}
//
// Supervisor is the untyped form, for children of different shapes, each
// with its own Spec. Both share one engine.
//
// A key has at most one child. StartChild of a key that has one returns the
// running child's arguments with ErrAlreadyStarted, even while it waits to
// be restarted, so the caller attaches to it instead of starting another.
//
// # Restarts
//
// When a child's function returns, its Spec.Restart decides, as in OTP:
//
//   - Permanent children are always restarted.
//   - Transient children are restarted only after an abnormal exit. Normal
//     is nil, an error wrapping ErrNormal, or context.Canceled once the
//     supervisor cancelled the child's context. Everything else, a panic
//     included (see PanicError), is abnormal.
//   - Temporary children are never restarted.
//
// A restarted child runs again with the same key and arguments; Attempt(ctx)
// tells it which run it is, so a session can say "reconnected" rather than
// "connected". Restarts wait a backoff that doubles with each restart
// within the child's Period, with jitter so that children that failed
// together do not return together.
//
// Each child has its own restart intensity: more than Spec.Intensity
// restarts within Spec.Period and it gives up, alone. One game that keeps
// dropping its connections never disturbs the sessions of other games. An
// optional supervisor-wide limit (Options.Intensity) makes the whole
// supervisor give up instead, as an OTP supervisor does: it stops every
// child, refuses new ones, and closes Done.
//
// # Stopping
//
// Terminate stops one child and Shutdown stops all of them at once, the
// same way: the child's context is cancelled (context.Cause says why:
// ErrTerminated or ErrShuttingDown); if the child has not returned within
// its ShutdownTimeout its kill hook is called, which should make it return
// (closing its socket unblocks a read); if it still has not returned after
// another ShutdownTimeout, or when the caller's context is done, the call
// gives up and names it in an UnstoppedError, like suture's report of
// unstopped services. A child that never returns cannot be made to: Go has
// no way to kill a goroutine. It stays counted, and its key refuses new
// children with ErrStopping, until it does return.
//
// # Events
//
// Options.OnEvent receives every event of every child: started, exited
// (with the reason), restarting (with the attempt and the delay), killed,
// and exactly one final event, gave up or stopped. The final event is where
// the owner learns that a child is gone for good, to release what it held.
// The events of a child arrive in order, from its own goroutine, and the
// final event of a key arrives before any event of the next child for that
// key; once OnEvent has returned from it, StartChild of the key starts a
// fresh child. OnEvent must therefore be quick and must not call back into
// the supervisor to wait on a child.
//
// # Time and memory
//
// All timing goes through Options.Clock, so tests drive it by hand with
// supervisortest.Clock and never sleep. A running child costs one
// goroutine and a few small allocations, and no timer: timers exist only
// while a child waits to restart or to stop. Work around the child's body
// is done in calls that return before the body runs, so the supervisor's
// frames beneath an idle child stay small and a shallow body fits in the
// smallest goroutine stack.
package supervisor
