package supervisor

import (
	"context"
	"errors"
)

// Child is one child of an untyped Supervisor: a body, an optional kill
// hook, and its own Spec.
type Child struct {
	Spec
	// Run is the child body, called again on each restart. It should
	// return soon after ctx is cancelled.
	Run func(ctx context.Context) error
	// Kill, if set, forces a child that ignored its cancelled context to
	// return (see Template.Kill).
	Kill func()
}

// Supervisor is a dynamic supervisor of heterogeneous children keyed by
// string, each with its own Spec. It is a thin layer over Typed; use Typed
// when all children share one shape.
type Supervisor struct {
	t *Typed[string, Child]
}

// New returns an untyped supervisor.
func New(opts Options) *Supervisor {
	tmpl := Template[string, Child]{
		Run: func(ctx context.Context, _ string, c Child) error { return c.Run(ctx) },
		Kill: func(_ string, c Child) {
			if c.Kill != nil {
				c.Kill()
			}
		},
	}
	specOf := func(c Child) *Spec {
		spec := c.Spec.withDefaults()
		return &spec
	}
	return &Supervisor{t: newTyped(tmpl, specOf, opts)}
}

// StartChild starts c under id. It returns ErrAlreadyStarted if a child
// runs for id, and otherwise the errors of Typed.StartChild.
func (s *Supervisor) StartChild(id string, c Child) error {
	if c.Run == nil {
		return errors.New("supervisor: start " + id + ": Child.Run is nil")
	}
	if err := c.Spec.validate(); err != nil {
		return err
	}
	_, err := s.t.StartChild(id, c)
	return err
}

// Terminate stops the child id; see Typed.Terminate.
func (s *Supervisor) Terminate(ctx context.Context, id string) error {
	return s.t.Terminate(ctx, id)
}

// Running reports whether a child runs for id (see Typed.Lookup).
func (s *Supervisor) Running(id string) bool {
	_, ok := s.t.Lookup(id)
	return ok
}

// Keys returns the ids of the children that have not yet ended.
func (s *Supervisor) Keys() []string { return s.t.Keys() }

// Count returns how many children have not yet ended.
func (s *Supervisor) Count() int { return s.t.Count() }

// Shutdown stops all children; see Typed.Shutdown.
func (s *Supervisor) Shutdown(ctx context.Context) error { return s.t.Shutdown(ctx) }

// Done is closed when the supervisor stops accepting children.
func (s *Supervisor) Done() <-chan struct{} { return s.t.Done() }

// Err returns why the supervisor stopped accepting children, or nil.
func (s *Supervisor) Err() error { return s.t.Err() }
