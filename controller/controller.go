package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/internal/config"
	"github.com/trellis-mud/trellis/store"
)

// Sessions is the worker's session table, as the controller sees it.
type Sessions interface {
	// Deliver hands cmd (attach, detach, stop or resize) to the session of
	// cmd.Key() if it runs in this worker, and reports whether one did.
	Deliver(ctx context.Context, cmd store.Command) bool
	// Start starts a session for the attach cmd under lease, which the
	// controller has just acquired. The call must not wait for the game:
	// the session dials on its own. If Start fails, the controller releases
	// the lease and retries the command later.
	Start(ctx context.Context, cmd store.Command, lease store.Lease) error
	// Accepting reports whether this worker takes new sessions now: false
	// when it is full or draining. The controller stops reading the control
	// stream while it is false.
	Accepting() bool
}

// Config identifies the worker and tunes the control loop.
type Config struct {
	// Consumer is the worker's stable name in the consumer group
	// (TRELLIS_WORKER_NAME): a restarted worker reads its own pending
	// entries first.
	Consumer string
	// Owner is the worker's instance id: the lease owner and inbox name.
	Owner string
	// LeaseTTL is the TTL of leases the controller acquires.
	LeaseTTL time.Duration
	// ClaimMinIdle is how long an entry stays pending with a consumer
	// before another may claim it.
	ClaimMinIdle time.Duration `default:"15s"`
	// MaxDeliveries is how many times an entry is tried before it is
	// dead-lettered.
	MaxDeliveries int `default:"5"`
	// ReadBlock bounds one blocking read of the stream; it is also how long
	// a stop request may wait for the loop.
	ReadBlock time.Duration `default:"500ms"`
	// ReadCount is how many entries one read takes.
	ReadCount int64 `default:"32"`
	// MaxAge is how old a command may be and still be acted on. An older
	// one is acknowledged and dropped: its viewer has long reconnected
	// (with a fresh attach) or gone, and replaying it would act on a world
	// that moved on — a stop from an hour ago must not end today's session
	// if a consumer group is ever rebuilt from the start of the stream.
	MaxAge time.Duration `default:"5m"`
	// Registerer receives the controller's metrics (nil: not registered).
	Registerer prometheus.Registerer `ignored:"true"`
	Logger     *slog.Logger          `ignored:"true"`
}

// withDefaults fills zero fields from the default tags, the one statement
// of each default. The Config is not read from the environment (the worker
// fills it from its own); the tags use envconfig's syntax so that one
// filler serves every component. A negative value means nothing here and,
// as before, takes the default too.
func (c Config) withDefaults() Config {
	for _, d := range []*time.Duration{&c.ClaimMinIdle, &c.ReadBlock, &c.MaxAge} {
		*d = max(*d, 0)
	}
	c.MaxDeliveries, c.ReadCount = max(c.MaxDeliveries, 0), max(c.ReadCount, 0)
	config.SetDefaults(&c)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Errors a handler returns. Neither is acknowledged: the entry is retried
// after ClaimMinIdle, and dead-lettered after MaxDeliveries attempts.
var (
	// ErrNotAccepting: the worker is full or draining.
	ErrNotAccepting = errors.New("worker is not accepting sessions")
	// ErrSessionEnding: this worker still holds the lease of a session that
	// is shutting down; the command is retried once the lease is released.
	ErrSessionEnding = errors.New("session is ending on this worker")
)

// errPermanent marks a command no retry can help (unknown type): it is
// dead-lettered at once.
var errPermanent = errors.New("command cannot be handled")

// Controller consumes the control stream for one worker.
type Controller struct {
	cfg      Config
	st       *store.Store
	sessions Sessions
	log      *slog.Logger
	source   string
	m        metrics
}

// New returns a controller; Run starts it.
func New(st *store.Store, sessions Sessions, cfg Config) *Controller {
	cfg = cfg.withDefaults()
	return &Controller{
		cfg:      cfg,
		st:       st,
		sessions: sessions,
		log:      cfg.Logger.With("component", "controller"),
		source:   "worker/" + cfg.Owner,
		m:        newMetrics(cfg.Registerer),
	}
}

// Run reads and handles control entries until ctx is done. Entries read but
// not yet handled when ctx ends stay pending for this consumer name (or for
// a claim by another worker). Run returns nil after ctx is done; Redis
// errors are logged and retried with backoff, never returned.
func (c *Controller) Run(ctx context.Context) error {
	consumer := c.st.ControlConsumer(c.cfg.Consumer)
	defer consumer.Close()
	var (
		// One backoff for every Redis call of the loop: whichever fails,
		// Redis is what is away.
		retry     = backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
		nextClaim time.Time
		interval  = min(max(c.cfg.ClaimMinIdle/2, 10*time.Millisecond), 5*time.Second)
	)
	for ctx.Err() == nil {
		if err := c.st.EnsureControlGroup(ctx); err != nil {
			c.m.redisErrors.Inc()
			c.pause(ctx, &retry, "create control group", err)
			continue
		}
		break
	}
	for ctx.Err() == nil {
		if !c.sessions.Accepting() {
			// Full or draining: leave the work to others.
			_ = backoff.Sleep(ctx, c.cfg.ReadBlock)
			continue
		}
		if now := time.Now(); now.After(nextClaim) {
			nextClaim = now.Add(interval)
			c.updateLag(ctx)
			msgs, err := consumer.Claim(ctx, c.cfg.ClaimMinIdle, c.cfg.ReadCount)
			if err != nil && ctx.Err() == nil {
				c.m.redisErrors.Inc()
				c.pause(ctx, &retry, "claim control entries", err)
				continue
			}
			if len(msgs) > 0 {
				c.m.claimed.Add(float64(len(msgs)))
				c.log.Info("claimed idle control entries", "count", len(msgs))
				c.handleBatch(ctx, msgs)
			}
		}
		msgs, err := consumer.Read(ctx, c.cfg.ReadCount, c.cfg.ReadBlock)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.m.redisErrors.Inc()
			c.pause(ctx, &retry, "read control stream", err)
			continue
		}
		retry.Reset()
		c.handleBatch(ctx, msgs)
	}
	return nil
}

// pause logs a Redis failure and waits out the next delay of retry.
func (c *Controller) pause(ctx context.Context, retry *backoff.Backoff, what string, err error) {
	d := retry.Next()
	c.log.Warn(what+" failed; retrying", "err", err, "retry_in", d)
	_ = backoff.Sleep(ctx, d) // ctx's end is the loop's to see
}

func (c *Controller) updateLag(ctx context.Context) {
	st, err := c.st.ControlStatus(ctx)
	if err != nil {
		return
	}
	c.m.lag.Set(float64(st.Lag))
	c.m.pending.Set(float64(st.Pending))
}

// handleBatch handles msgs in order (attach before detach of one viewer)
// and acknowledges those that were handled or dead-lettered.
func (c *Controller) handleBatch(ctx context.Context, msgs []store.ControlMessage) {
	acks := make([]store.ControlMessage, 0, len(msgs))
	for _, m := range msgs {
		if ctx.Err() != nil {
			break // the rest stays pending
		}
		if m.Err != nil {
			c.deadLetter(ctx, m, "undecodable: "+m.Err.Error())
			continue
		}
		if int(m.Deliveries) > c.cfg.MaxDeliveries {
			c.deadLetter(ctx, m, fmt.Sprintf("failed %d deliveries", m.Deliveries-1))
			continue
		}
		if t := m.Command.Time; !t.IsZero() && time.Since(t) > c.cfg.MaxAge {
			c.m.commands.WithLabelValues(string(m.Command.Type), "expired").Inc()
			c.log.Info("control command too old; dropped", "id", m.ID, "type", m.Command.Type,
				"key", m.Command.Key().String(), "age", time.Since(t).Round(time.Second))
			acks = append(acks, m)
			continue
		}
		err := c.Handle(ctx, m.Command, false)
		c.m.commands.WithLabelValues(string(m.Command.Type), outcome(err)).Inc()
		switch {
		case err == nil:
			acks = append(acks, m)
		case errors.Is(err, errPermanent):
			c.deadLetter(ctx, m, err.Error())
		default:
			// Not acknowledged: claimed again after ClaimMinIdle.
			c.log.Warn("control command failed; will retry",
				"id", m.ID, "type", m.Command.Type, "key", m.Command.Key().String(),
				"deliveries", m.Deliveries, "correlation", m.Command.Correlation, "err", err)
		}
	}
	// Acknowledge even when ctx was cancelled mid-batch (SIGTERM): entries
	// already handled must not be handed out again after the drain.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.st.AckControl(actx, acks...); err != nil {
		c.m.redisErrors.Inc()
		c.log.Warn("ack control entries failed; they will be handled again", "count", len(acks), "err", err)
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errPermanent):
		return "rejected"
	default:
		return "retry"
	}
}

func (c *Controller) deadLetter(ctx context.Context, m store.ControlMessage, reason string) {
	if err := c.st.DeadLetter(ctx, m, reason); err != nil {
		c.m.redisErrors.Inc()
		c.log.Warn("dead-letter failed", "id", m.ID, "err", err)
		return
	}
	c.m.deadLetters.Inc()
	c.log.Warn("control entry dead-lettered", "id", m.ID, "type", m.Command.Type,
		"key", m.Command.Key().String(), "reason", reason)
	c.event(ctx, store.EvControlDeadLetter, m.Command, map[string]any{
		"id": m.ID, "type": m.Command.Type, "reason": reason, "deliveries": m.Deliveries,
	})
}

// Handle acts on one command. forwarded is true for a command that reached
// this worker through its inbox: such a command is handled here or dropped,
// never forwarded again. It returns nil when the command needs no retry.
func (c *Controller) Handle(ctx context.Context, cmd store.Command, forwarded bool) error {
	switch cmd.Type {
	case store.CmdAttach:
		return c.attach(ctx, cmd, forwarded)
	case store.CmdDetach, store.CmdStop, store.CmdResize:
		return c.route(ctx, cmd, forwarded)
	default:
		return fmt.Errorf("%w: type %q on the control path", errPermanent, cmd.Type)
	}
}

func (c *Controller) attach(ctx context.Context, cmd store.Command, forwarded bool) error {
	if c.sessions.Deliver(ctx, cmd) {
		return nil
	}
	key := cmd.Key()
	l, held, err := c.st.GetLease(ctx, key)
	if err != nil {
		return err
	}
	if held {
		return c.forward(ctx, cmd, l, forwarded)
	}
	if !c.sessions.Accepting() {
		if forwarded {
			// A forwarded attach reached a worker that is draining or full
			// and no longer runs the session: put it back where any worker
			// can take it.
			_, err := c.st.PublishControl(ctx, cmd)
			return err
		}
		return ErrNotAccepting
	}
	l, err = c.st.AcquireLease(ctx, key, c.cfg.Owner, uuid.NewString(), c.cfg.LeaseTTL)
	if errors.Is(err, store.ErrLeaseHeld) {
		// Another worker won the race for this key.
		return c.forward(ctx, cmd, l, forwarded)
	}
	if err != nil {
		return err
	}
	c.m.acquired.Inc()
	c.event(ctx, store.EvSessionStarting, cmd, map[string]any{
		"fence": l.Fence, "session": l.Session, "viewer": cmd.Viewer, "reason": cmd.Reason,
	})
	if err := c.sessions.Start(ctx, cmd, l); err != nil {
		if rerr := c.st.ReleaseLease(ctx, l); rerr != nil {
			c.log.Warn("release lease after failed start", "key", key.String(), "err", rerr)
		}
		return fmt.Errorf("start session %s: %w", key, err)
	}
	return nil
}

// forward sends cmd to the lease holder l.
func (c *Controller) forward(ctx context.Context, cmd store.Command, l store.Lease, forwarded bool) error {
	if l.Owner == c.cfg.Owner {
		if forwarded {
			return nil
		}
		return ErrSessionEnding
	}
	if forwarded {
		c.log.Debug("forwarded command dropped: session moved", "type", cmd.Type,
			"key", cmd.Key().String(), "owner", l.Owner, "correlation", cmd.Correlation)
		c.m.dropped.Inc()
		return nil
	}
	if _, err := c.st.SendInbox(ctx, l.Owner, cmd); err != nil {
		return err
	}
	c.m.forwarded.Inc()
	return nil
}

// route delivers a command about a running session (detach, stop, resize)
// to its owner. With no lease there is no session and nothing to do.
func (c *Controller) route(ctx context.Context, cmd store.Command, forwarded bool) error {
	if c.sessions.Deliver(ctx, cmd) {
		return nil
	}
	l, held, err := c.st.GetLease(ctx, cmd.Key())
	if err != nil {
		return err
	}
	if !held {
		return nil
	}
	if l.Owner == c.cfg.Owner {
		// Ending here: a detach or stop of an ending session is moot.
		return nil
	}
	return c.forward(ctx, cmd, l, forwarded)
}

func (c *Controller) event(ctx context.Context, typ string, cmd store.Command, data any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := c.st.AppendEvent(ctx, store.NewEvent(typ, c.source, cmd.Key(), cmd.Correlation, data)); err != nil {
		c.m.redisErrors.Inc()
		c.log.Warn("append event failed", "type", typ, "err", err)
	}
}
