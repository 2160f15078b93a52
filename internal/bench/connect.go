package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// connectAll opens n connections as users prefix-0 ... prefix-(n-1), rate
// per second, at most 64 handshakes in flight, and waits until each session
// takes input. Connections that fail are nil in the result and counted.
// Staggering matters: 10,000 simultaneous handshakes would measure the
// accept queue, not the stack.
func connectAll(ctx context.Context, t *Target, prefix string, n, rate int, deadline time.Time) ([]*conn, int, error) {
	return connectAllThen(ctx, t, prefix, n, rate, deadline, nil)
}

// connectAllThen is connectAll with a step each connection takes once its
// session takes input (logging in to the game, say), within the same
// handshake limit and deadline.
func connectAllThen(ctx context.Context, t *Target, prefix string, n, rate int, deadline time.Time, then func(c *conn, i int) error) ([]*conn, int, error) {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return connectUsers(ctx, t, users, rate, deadline, then)
}

// connectUsers is connectAllThen with the users named.
func connectUsers(ctx context.Context, t *Target, users []string, rate int, deadline time.Time, then func(c *conn, i int) error) ([]*conn, int, error) {
	n := len(users)
	conns := make([]*conn, n)
	var (
		mu     sync.Mutex
		failed int
		first  error
	)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	interval := time.Second / time.Duration(max(rate, 1))
	start := time.Now()
	for i := range n {
		if err := sleepUntil(gctx, start.Add(time.Duration(i)*interval)); err != nil {
			break
		}
		g.Go(func() error {
			c, err := dial(gctx, t, users[i], "")
			if err == nil {
				if err = c.waitReady(deadline); err == nil && then != nil {
					err = then(c, i)
				}
				if err != nil {
					c.ws.Close()
				}
			}
			if err != nil {
				mu.Lock()
				failed++
				if first == nil {
					first = err
				}
				mu.Unlock()
				return nil
			}
			conns[i] = c
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil && failed == 0 {
		failed = countNil(conns)
		first = fmt.Errorf("connect %d clients: %w", n, err)
	}
	return conns, failed, first
}

func countNil(cs []*conn) int {
	k := 0
	for _, c := range cs {
		if c == nil {
			k++
		}
	}
	return k
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}
}

// sleepUntil waits for t or ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
