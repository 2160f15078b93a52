package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the Redis connection of every component. It is read from the
// environment with the prefix TRELLIS_REDIS_.
type Config struct {
	// URL is a redis:// or rediss:// URL. A comma-separated list of
	// host:port addresses selects Redis Cluster instead.
	URL           string        `envconfig:"URL" default:"redis://127.0.0.1:6379/0" desc:"Redis URL (redis:// or rediss://), or a comma-separated list of cluster node addresses"`
	Password      string        `envconfig:"PASSWORD" desc:"Redis password (overrides the URL's); never logged"`
	PoolSize      int           `envconfig:"POOL_SIZE" default:"0" desc:"connection pool size per process (0: go-redis default, 10 per CPU)"`
	DialTimeout   time.Duration `envconfig:"DIAL_TIMEOUT" default:"2s" desc:"how long to wait for a connection to Redis"`
	ReadTimeout   time.Duration `envconfig:"READ_TIMEOUT" default:"2s" desc:"how long to wait for a reply (blocking reads add their block time)"`
	OutputMaxLen  int64         `envconfig:"OUTPUT_MAXLEN" default:"5000" desc:"entries kept per session output stream (the resume backlog)"`
	EventsMaxAge  time.Duration `envconfig:"EVENTS_RETENTION" default:"168h" desc:"how long lifecycle events are kept in trellis:events"`
	ControlMaxLen int64         `envconfig:"CONTROL_MAXLEN" default:"1000000" desc:"entries kept in the control stream for replay"`
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.URL) == "":
		return errors.New("TRELLIS_REDIS_URL is empty")
	case c.PoolSize < 0:
		return fmt.Errorf("TRELLIS_REDIS_POOL_SIZE=%d: must be 0 or more", c.PoolSize)
	case c.DialTimeout <= 0:
		return fmt.Errorf("TRELLIS_REDIS_DIAL_TIMEOUT=%s: must be positive", c.DialTimeout)
	case c.ReadTimeout <= 0:
		return fmt.Errorf("TRELLIS_REDIS_READ_TIMEOUT=%s: must be positive", c.ReadTimeout)
	case c.OutputMaxLen < 10:
		return fmt.Errorf("TRELLIS_REDIS_OUTPUT_MAXLEN=%d: must be at least 10", c.OutputMaxLen)
	case c.EventsMaxAge < time.Minute:
		return fmt.Errorf("TRELLIS_REDIS_EVENTS_RETENTION=%s: must be at least 1m", c.EventsMaxAge)
	case c.ControlMaxLen < 1000:
		return fmt.Errorf("TRELLIS_REDIS_CONTROL_MAXLEN=%d: must be at least 1000", c.ControlMaxLen)
	}
	if _, err := c.clientOptions(); err != nil {
		return err
	}
	return nil
}

func (c Config) clientOptions() (*redis.UniversalOptions, error) {
	var o redis.UniversalOptions
	if strings.Contains(c.URL, "://") {
		single, err := redis.ParseURL(c.URL)
		if err != nil {
			// url.Parse's errors quote the whole URL, password included.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			return nil, fmt.Errorf("TRELLIS_REDIS_URL=%q: %w", redactURL(c.URL), err)
		}
		o = redis.UniversalOptions{
			Addrs:     []string{single.Addr},
			DB:        single.DB,
			Username:  single.Username,
			Password:  single.Password,
			TLSConfig: single.TLSConfig,
		}
	} else {
		for _, a := range strings.Split(c.URL, ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.Addrs = append(o.Addrs, a)
			}
		}
		if len(o.Addrs) < 2 {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL=%q: want redis://host:port or a list of cluster nodes", c.URL)
		}
		o.IsClusterMode = true
	}
	if c.Password != "" {
		o.Password = c.Password
	}
	o.PoolSize = c.PoolSize
	o.DialTimeout = c.DialTimeout
	o.ReadTimeout = c.ReadTimeout
	o.WriteTimeout = c.ReadTimeout
	// Fail fast while Redis is away rather than queueing callers behind a
	// pool of dead connections; callers retry with their own policy.
	o.PoolTimeout = c.ReadTimeout + time.Second
	o.MaxRetries = 1
	// go-redis dials up to 5 times with a backoff before a command fails;
	// with MaxRetries that makes every call against a stopped Redis wait
	// about a second. One dial per attempt is enough: a refused connection
	// will not be accepted 100 ms later.
	o.DialerRetries = 1
	// Let callers' context deadlines bound every call; without this
	// go-redis waits out its own timeouts whatever the context says.
	o.ContextTimeoutEnabled = true
	// RESP2: Trellis uses no RESP3 feature, and go-redis's RESP3 push
	// notification handling has hung reads in recent releases (a peek that
	// waits for bytes the server never sends, go-redis #3935); under RESP2
	// that code path is never entered.
	o.Protocol = 2
	return &o, nil
}

// redactURL hides the user info of a URL for messages. It works on the raw
// text, because the URL it is given may be one url.Parse rejects; the last
// '@' of the authority ends the user info, as a password may hold an
// unescaped '@'.
func redactURL(u string) string {
	j := strings.Index(u, "://")
	if j < 0 {
		return u
	}
	auth := u[j+3:]
	if k := strings.IndexAny(auth, "/?#"); k >= 0 {
		auth = auth[:k]
	}
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		return u[:j+3] + "***" + u[j+3+i:]
	}
	return u
}

// Connect opens a client for cfg (a single node or a cluster) without
// talking to Redis yet: a component may start before Redis does.
func Connect(cfg Config) (redis.UniversalClient, error) {
	o, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}

// Store is Trellis's view of Redis. It is safe for concurrent use; its zero
// value is not usable: build it with New.
type Store struct {
	rdb           redis.UniversalClient
	outputMaxLen  int64
	eventsMaxAge  time.Duration
	controlMaxLen int64
	now           func() time.Time
}

// Option tunes a Store.
type Option func(*Store)

// WithOutputMaxLen sets how many entries an output stream keeps (approximately).
func WithOutputMaxLen(n int64) Option { return func(s *Store) { s.outputMaxLen = n } }

// WithEventsMaxAge sets the retention of the lifecycle event log.
func WithEventsMaxAge(d time.Duration) Option { return func(s *Store) { s.eventsMaxAge = d } }

// WithControlMaxLen sets how many entries the control stream keeps.
func WithControlMaxLen(n int64) Option { return func(s *Store) { s.controlMaxLen = n } }

// WithClock replaces time.Now, for tests of retention.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New wraps a client. The store does not own the client: closing it is the
// caller's job.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		rdb:           rdb,
		outputMaxLen:  5000,
		eventsMaxAge:  7 * 24 * time.Hour,
		controlMaxLen: 1_000_000,
		now:           time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects to Redis as cfg says and wraps the client in a Store.
func Open(cfg Config) (*Store, error) {
	rdb, err := Connect(cfg)
	if err != nil {
		return nil, err
	}
	return New(rdb,
		WithOutputMaxLen(cfg.OutputMaxLen),
		WithEventsMaxAge(cfg.EventsMaxAge),
		WithControlMaxLen(cfg.ControlMaxLen)), nil
}

// Client is the underlying client, for components that need pub/sub.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Close closes the underlying client.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}
