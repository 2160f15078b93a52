package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Template is how every child of a Typed supervisor is run: the child body,
// its optional kill hook, and the restart and shutdown Spec they share.
type Template[K comparable, A any] struct {
	Spec
	// Run is the child body. It is called again with the same key and args
	// on each restart; Attempt(ctx) tells which run it is. It should
	// return soon after ctx is cancelled.
	Run func(ctx context.Context, key K, args A) error
	// Kill, if set, forces a child that ignored its cancelled context for
	// ShutdownTimeout to return, typically by closing its connection. It
	// is called at most once per child, from another goroutine.
	Kill func(key K, args A)
}

// Typed is a dynamic supervisor whose children all follow one Template, in
// the manner of OTP's simple_one_for_one: starting a child takes only its
// key and its typed arguments. The zero value is not usable; call NewTyped.
type Typed[K comparable, A any] struct {
	run    func(ctx context.Context, key K, args A) error
	kill   func(key K, args A)
	spec   Spec               // the template's, with defaults
	specOf func(args A) *Spec // nil: every child uses &spec

	maxChildren int
	intensity   int
	period      time.Duration
	clock       Clock
	onEvent     func(Event)
	logger      *slog.Logger

	mu       sync.Mutex
	children map[K]*child[K, A]
	restarts []time.Time   // supervisor-wide restart times, when intensity > 0
	err      error         // why StartChild is refused; nil while open
	done     chan struct{} // closed when err is set
}

// child is one entry of the supervisor. Its goroutine owns attempt and
// restarts; everything else is fixed at start or guarded by the
// supervisor's mu.
type child[K comparable, A any] struct {
	key    K
	args   A
	spec   *Spec
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed after the final event and removal
	ending bool          // under mu: not running again; final event pending
	killed atomic.Bool

	restarts []time.Time // within spec.Period, oldest first
}

// NewTyped returns a supervisor for children of one template. It panics if
// tmpl.Run is nil or tmpl.Restart is not a Restart value: both are
// programming errors.
func NewTyped[K comparable, A any](tmpl Template[K, A], opts Options) *Typed[K, A] {
	if err := tmpl.Spec.validate(); err != nil {
		panic(err)
	}
	return newTyped(tmpl, nil, opts)
}

func newTyped[K comparable, A any](tmpl Template[K, A], specOf func(A) *Spec, opts Options) *Typed[K, A] {
	if tmpl.Run == nil {
		panic("supervisor: Template.Run is nil")
	}
	s := &Typed[K, A]{
		run:         tmpl.Run,
		kill:        tmpl.Kill,
		spec:        tmpl.Spec.withDefaults(),
		specOf:      specOf,
		maxChildren: opts.MaxChildren,
		intensity:   opts.Intensity,
		period:      opts.Period,
		clock:       opts.Clock,
		onEvent:     opts.OnEvent,
		logger:      opts.Logger,
		children:    make(map[K]*child[K, A]),
		done:        make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.period <= 0 {
		s.period = DefaultPeriod
	}
	return s
}

// StartChild starts a child for key with args and returns args. If a child
// already runs for key (even between restarts) it starts nothing and
// returns that child's args with ErrAlreadyStarted, so the caller can
// attach to it. It returns ErrStopping while a terminated child for key has
// not yet returned, ErrMaxChildren when the supervisor is full, and Err()
// once it is shutting down.
//
// If the child for key has just ended and its final event is being
// delivered, StartChild waits for that delivery and then starts a fresh
// child: events for one key never interleave. A child whose body has just
// returned for the last time is still "already started" until its final
// event begins; the caller that attached to it learns of its end from that
// event.
func (s *Typed[K, A]) StartChild(key K, args A) (A, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			var zero A
			return zero, err
		}
		if c, ok := s.children[key]; ok {
			switch {
			case c.ending:
				s.mu.Unlock()
				<-c.done
				continue
			case c.ctx.Err() != nil:
				s.mu.Unlock()
				return c.args, ErrStopping
			default:
				s.mu.Unlock()
				return c.args, ErrAlreadyStarted
			}
		}
		if s.maxChildren > 0 && len(s.children) >= s.maxChildren {
			s.mu.Unlock()
			var zero A
			return zero, ErrMaxChildren
		}
		c := &child[K, A]{key: key, args: args, spec: &s.spec, done: make(chan struct{})}
		if s.specOf != nil {
			c.spec = s.specOf(args)
		}
		// The child's context deliberately has no parent: a parent would
		// keep a map entry per child, and Shutdown reaches every child
		// through s.children anyway.
		c.ctx, c.cancel = context.WithCancelCause(context.Background())
		s.children[key] = c
		s.mu.Unlock()

		go s.supervise(c)
		return args, nil
	}
}

// Lookup returns the args of the child running for key. A child that is
// stopping (terminated, or ended and delivering its final event) is not
// returned, matching StartChild, which would start or refuse rather than
// attach.
func (s *Typed[K, A]) Lookup(key K) (A, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.children[key]; ok && !c.ending && c.ctx.Err() == nil {
		return c.args, true
	}
	var zero A
	return zero, false
}

// Keys returns the keys of all children that have not yet ended, including
// those that are stopping, in no particular order.
func (s *Typed[K, A]) Keys() []K {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]K, 0, len(s.children))
	for k := range s.children {
		keys = append(keys, k)
	}
	return keys
}

// Count returns how many children have not yet ended, including those that
// are stopping: the number MaxChildren bounds.
func (s *Typed[K, A]) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.children)
}

// Done is closed when the supervisor stops accepting children: Shutdown was
// called, or the supervisor-wide restart limit was exceeded.
func (s *Typed[K, A]) Done() <-chan struct{} { return s.done }

// Err returns nil while the supervisor accepts children, then why it does
// not: ErrShuttingDown, or an error wrapping ErrIntensity.
func (s *Typed[K, A]) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Terminate stops the child for key and waits for it to return: it cancels
// the child's context (cause ErrTerminated), waits up to the child's
// ShutdownTimeout, calls its kill hook, and waits up to ShutdownTimeout
// again. It returns nil once the child has returned and an
// *UnstoppedError naming it if it has not. ctx can cut both waits short.
// It returns an error wrapping ErrNotFound if no child exists for key.
func (s *Typed[K, A]) Terminate(ctx context.Context, key K) error {
	s.mu.Lock()
	c, ok := s.children[key]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("terminate %v: %w", key, ErrNotFound)
	}
	if !s.stop(ctx, c, ErrTerminated) {
		return &UnstoppedError{Keys: []any{key}}
	}
	return nil
}

// Shutdown stops accepting children, then stops all of them at once as
// Terminate does (cause ErrShuttingDown) and waits. It returns nil when
// every child has returned, or an *UnstoppedError naming those that had not
// when their waits ran out or ctx was done. It may be called again, for
// instance to wait once more for children that were unstopped.
func (s *Typed[K, A]) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closeLocked(ErrShuttingDown)
	children := make([]*child[K, A], 0, len(s.children))
	for _, c := range s.children {
		c.cancel(ErrShuttingDown)
		children = append(children, c)
	}
	s.mu.Unlock()

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		unstopped []any
	)
	for _, c := range children {
		wg.Go(func() {
			if !s.stop(ctx, c, ErrShuttingDown) {
				mu.Lock()
				unstopped = append(unstopped, c.key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(unstopped) > 0 {
		return &UnstoppedError{Keys: unstopped}
	}
	return nil
}

// closeLocked refuses new children from now on, for reason.
func (s *Typed[K, A]) closeLocked(reason error) {
	if s.err == nil {
		s.err = reason
		close(s.done)
	}
}

// stop cancels c and waits for it as Terminate describes, reporting
// whether it returned.
func (s *Typed[K, A]) stop(ctx context.Context, c *child[K, A], cause error) bool {
	c.cancel(cause)
	if s.wait(ctx, c) {
		return true
	}
	if c.killed.CompareAndSwap(false, true) {
		s.emit(Event{Kind: EventKilled, Key: c.key})
		if s.kill != nil {
			s.kill(c.key, c.args)
		}
	}
	return s.wait(ctx, c)
}

// wait waits for c to end, for at most its shutdown timeout and while ctx
// is not done.
func (s *Typed[K, A]) wait(ctx context.Context, c *child[K, A]) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	t := s.clock.NewTimer(c.spec.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C():
	case <-ctx.Done():
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// supervise is the goroutine of child c: it runs c and restarts it by its
// spec until it must not run again.
//
// Everything but the run itself is done in calls that have returned by the
// time the child's body runs, so only small frames (supervise, call) sit
// beneath the body: an idle child then fits in the smallest goroutine
// stack, which is most of its memory.
func (s *Typed[K, A]) supervise(c *child[K, A]) {
	for attempt := 0; ; attempt++ {
		ctx := s.begin(c, attempt)
		err := s.call(ctx, c)
		if final := s.afterExit(c, attempt, err); final != nil {
			s.finish(c, final)
			return
		}
	}
}

// begin announces run number attempt of c and returns its context.
func (s *Typed[K, A]) begin(c *child[K, A], attempt int) context.Context {
	s.emit(Event{Kind: EventStarted, Key: c.key, Attempt: attempt})
	if attempt == 0 {
		return c.ctx
	}
	return context.WithValue(c.ctx, attemptKey{}, attempt)
}

// finish delivers c's final event and removes c. The ending flag makes a
// concurrent StartChild for the key wait for the delivery, so events for a
// key never interleave.
func (s *Typed[K, A]) finish(c *child[K, A], final *Event) {
	s.mu.Lock()
	c.ending = true
	s.mu.Unlock()
	s.emit(*final)
	s.mu.Lock()
	delete(s.children, c.key)
	s.mu.Unlock()
	close(c.done)
	// The context is already cancelled unless the child ended by itself;
	// cancelling releases it either way.
	c.cancel(context.Canceled)
}

// afterExit decides, by c's spec and history, what follows the exit of
// its run number attempt with err: the final event, or (nil) a restart once
// its backoff has passed.
func (s *Typed[K, A]) afterExit(c *child[K, A], attempt int, err error) *Event {
	s.emit(Event{Kind: EventExited, Key: c.key, Reason: err, Attempt: attempt})

	stopped := &Event{Kind: EventStopped, Key: c.key, Reason: err, Attempt: attempt}
	if c.ctx.Err() != nil {
		stopped.Reason = context.Cause(c.ctx)
		return stopped
	}
	switch c.spec.Restart {
	case Temporary:
		return stopped
	case Transient:
		if isNormal(err) {
			return stopped
		}
	}

	n, ok := s.recordRestart(c)
	if !ok {
		return &Event{Kind: EventGaveUp, Key: c.key, Attempt: attempt,
			Reason: fmt.Errorf("%w (%d restarts in %v): %w",
				ErrIntensity, c.spec.Intensity, c.spec.Period, err)}
	}
	if err := s.recordSupervisorRestart(c); err != nil {
		return &Event{Kind: EventGaveUp, Key: c.key, Attempt: attempt, Reason: err}
	}

	delay := backoff(c.spec, n)
	s.emit(Event{Kind: EventRestarting, Key: c.key, Attempt: attempt + 1, Delay: delay})
	if !sleep(c.ctx, s.clock, delay) {
		stopped.Reason = context.Cause(c.ctx)
		return stopped
	}
	return nil
}

// call runs c once, turning a panic into a *PanicError.
func (s *Typed[K, A]) call(ctx context.Context, c *child[K, A]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError(v)
		}
	}()
	return s.run(ctx, c.key, c.args)
}

// recordRestart counts a restart of c in its window and returns how many
// the window holds, or false if one more would exceed c's intensity.
func (s *Typed[K, A]) recordRestart(c *child[K, A]) (int, bool) {
	now := s.clock.Now()
	c.restarts = prune(c.restarts, now.Add(-c.spec.Period))
	if len(c.restarts) >= c.spec.Intensity {
		return 0, false
	}
	c.restarts = append(c.restarts, now)
	return len(c.restarts), true
}

// recordSupervisorRestart counts a restart against the supervisor-wide
// limit, if there is one. Past it, the supervisor gives up: it refuses new
// children and cancels all of them, c included, and returns the cause.
func (s *Typed[K, A]) recordSupervisorRestart(c *child[K, A]) error {
	if s.intensity <= 0 {
		return nil
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restarts = prune(s.restarts, now.Add(-s.period))
	if len(s.restarts) < s.intensity {
		s.restarts = append(s.restarts, now)
		return nil
	}
	err := fmt.Errorf("%w: supervisor-wide, %d restarts in %v (last by %v)",
		ErrIntensity, s.intensity, s.period, c.key)
	s.closeLocked(err)
	for _, other := range s.children {
		other.cancel(err)
	}
	return err
}

// prune drops the times not after cutoff from ts, oldest first, reusing its
// storage.
func prune(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cutoff) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

func (s *Typed[K, A]) emit(e Event) {
	e.Time = s.clock.Now()
	e.log(s.logger)
	if s.onEvent != nil {
		s.onEvent(e)
	}
}

type attemptKey struct{}

// Attempt returns which run of its child ctx belongs to: 0 for the first
// run, n for the n-th restart. A session uses it to tell "connected" from
// "reconnected".
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
