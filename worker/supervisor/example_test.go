package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/trellis-mud/trellis/worker/supervisor"
)

// session stands for what a worker keeps per (user, game).
type session struct {
	game string
}

// A worker's sessions: one transient child per user, restarted after a
// connection reset, found again by a second attach.
func Example() {
	said := make(chan string)
	sup := supervisor.NewTyped(supervisor.Template[string, *session]{
		Spec: supervisor.Spec{
			Restart:    supervisor.Transient,
			BackoffMin: time.Millisecond,
		},
		Run: func(ctx context.Context, user string, s *session) error {
			if supervisor.Attempt(ctx) == 0 {
				said <- user + " connected to " + s.game
				return errors.New("connection reset by peer") // abnormal: restarted
			}
			said <- user + " reconnected to " + s.game
			<-ctx.Done()
			return ctx.Err() // normal: the supervisor asked it to stop
		},
	}, supervisor.Options{MaxChildren: 10_000, Logger: slog.New(slog.DiscardHandler)})

	if _, err := sup.StartChild("alice", &session{game: "demo"}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-said)
	fmt.Println(<-said)

	// A second attach for alice finds the running session, not a new one.
	s, err := sup.StartChild("alice", &session{game: "demo"})
	fmt.Println(errors.Is(err, supervisor.ErrAlreadyStarted), s.game)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sup.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("children left:", sup.Count())
	// Output:
	// alice connected to demo
	// alice reconnected to demo
	// true demo
	// children left: 0
}

// The final event of a child is where its owner releases what the child
// held. OnEvent runs on the child's goroutine, so it only hands the event on.
func ExampleOptions_onEvent() {
	final := make(chan supervisor.Event, 1)
	sup := supervisor.NewTyped(supervisor.Template[string, struct{}]{
		Spec: supervisor.Spec{Restart: supervisor.Transient},
		Run: func(context.Context, string, struct{}) error {
			return fmt.Errorf("game closed the connection: %w", supervisor.ErrNormal)
		},
	}, supervisor.Options{
		Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(e supervisor.Event) {
			if e.Kind.Final() {
				final <- e
			}
		},
	})
	if _, err := sup.StartChild("alice", struct{}{}); err != nil {
		fmt.Println(err)
		return
	}
	e := <-final
	fmt.Printf("%v %v: %v\n", e.Key, e.Kind, e.Reason)
	// Output: alice stopped: game closed the connection: supervisor: normal exit
}
