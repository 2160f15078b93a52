package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/config"
)

// Config is the Redis connection of every component. It is read from the
// environment with the prefix TRELLIS_REDIS_.
type Config struct {
	// URL is a redis:// or rediss:// URL. A comma-separated list selects
	// Redis Cluster instead: of redis:// URLs (which must agree on user,
	// password and TLS) or of host:port addresses.
	URL            string        `envconfig:"URL" default:"redis://127.0.0.1:6379/0" desc:"Redis URL (redis:// or rediss://), or a comma-separated list of cluster nodes (URLs, or host:port addresses)"`
	Password       string        `envconfig:"PASSWORD" desc:"Redis password (overrides the URL's); never logged"`
	PoolSize       int           `envconfig:"POOL_SIZE" default:"0" desc:"connection pool size per process (0: go-redis default, 10 per CPU)"`
	DialTimeout    time.Duration `envconfig:"DIAL_TIMEOUT" default:"2s" desc:"how long to wait for a connection to Redis"`
	ReadTimeout    time.Duration `envconfig:"READ_TIMEOUT" default:"2s" desc:"how long to wait for a reply (blocking reads add their block time)"`
	OutputMaxLen   int64         `envconfig:"OUTPUT_MAXLEN" default:"20000" desc:"entries kept per session output stream at most (a backstop: OUTPUT_MAX_BYTES is the real bound)"`
	OutputMaxBytes int64         `envconfig:"OUTPUT_MAX_BYTES" default:"1048576" desc:"bytes kept per session output stream, payload plus a fixed per-entry overhead; a trickling game keeps a useful resume window and a flooding one cannot fill Redis"`
	EventsMaxAge   time.Duration `envconfig:"EVENTS_RETENTION" default:"168h" desc:"how long lifecycle events are kept in trellis:events"`
	ControlMaxLen  int64         `envconfig:"CONTROL_MAXLEN" default:"1000000" desc:"entries kept in each control stream for replay"`
	// Namespace keeps installations that share one Redis apart; on a
	// cluster, where there is only database 0, it is the only way.
	Namespace string `envconfig:"NAMESPACE" default:"trellis" desc:"first part of every key and channel name (letters, digits, '-', '_', '.'); installations sharing a Redis need different ones"`
	// ControlShards is read once, when a namespace is new; afterwards the
	// namespace's own count rules and a different setting is refused.
	ControlShards int `envconfig:"CONTROL_SHARDS" default:"0" desc:"control streams of a new namespace (0: 1 on a single node, 8 on a cluster); a namespace keeps the count it was created with"`
}

const minOutputMaxBytes = 64 << 10

// DefaultConfig is the configuration an empty environment gives: the
// default tags above are the only statement of the defaults.
func DefaultConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

// SetDefaults fills zero fields from their default tags, so a Config built
// in code (tests, tools) gets what the environment would give.
func (c *Config) SetDefaults() { config.SetDefaults(c) }

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
	case c.OutputMaxBytes < minOutputMaxBytes:
		return fmt.Errorf("TRELLIS_REDIS_OUTPUT_MAX_BYTES=%d: must be at least %d (64 KiB)", c.OutputMaxBytes, minOutputMaxBytes)
	case c.EventsMaxAge < time.Minute:
		return fmt.Errorf("TRELLIS_REDIS_EVENTS_RETENTION=%s: must be at least 1m", c.EventsMaxAge)
	case c.ControlMaxLen < 1000:
		return fmt.Errorf("TRELLIS_REDIS_CONTROL_MAXLEN=%d: must be at least 1000", c.ControlMaxLen)
	case c.ControlShards < 0 || c.ControlShards > MaxControlShards:
		return fmt.Errorf("TRELLIS_REDIS_CONTROL_SHARDS=%d: want 0 (the default for the topology) to %d", c.ControlShards, MaxControlShards)
	}
	if err := ValidNamespace(c.Namespace); c.Namespace != "" && err != nil {
		return fmt.Errorf("TRELLIS_REDIS_NAMESPACE=%q: %w", c.Namespace, err)
	}
	if _, err := c.clientOptions(); err != nil {
		return err
	}
	return nil
}

// secrets are the strings no message may show: the password setting, and
// the user info and password of every URL in the URL setting (as written
// and percent-decoded). They are found in the raw text, because a URL that
// fails to parse must not leak either.
func (c Config) secrets() []string {
	out := []string{c.Password}
	for _, part := range strings.Split(c.URL, ",") {
		userinfo, ok := rawUserinfo(strings.TrimSpace(part))
		if !ok {
			continue
		}
		out = append(out, userinfo)
		if dec, err := url.PathUnescape(userinfo); err == nil {
			out = append(out, dec)
		}
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			out = append(out, pw)
			if dec, err := url.PathUnescape(pw); err == nil {
				out = append(out, dec)
			}
		}
	}
	return out
}

// rawUserinfo is the user info of a URL (or of a bare user@host:port), found
// on the raw text: the last '@' of the authority ends it, as a password may
// hold an unescaped '@'.
func rawUserinfo(u string) (string, bool) {
	auth := u
	if j := strings.Index(u, "://"); j >= 0 {
		auth = u[j+3:]
	}
	if k := strings.IndexAny(auth, "/?#"); k >= 0 {
		auth = auth[:k]
	}
	i := strings.LastIndex(auth, "@")
	if i < 0 {
		return "", false
	}
	return auth[:i], true
}

func (c Config) clientOptions() (*redis.UniversalOptions, error) {
	o, err := c.parseURL()
	if err != nil {
		return nil, redactErr(err, c.secrets()...)
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
	return o, nil
}

// parseURL reads the URL setting: one redis:// (rediss://, unix://) URL, or
// a list of cluster nodes, all URLs or all host:port addresses. Its errors
// may quote the setting: clientOptions redacts them.
func (c Config) parseURL() (*redis.UniversalOptions, error) {
	var parts []string
	for _, p := range strings.Split(c.URL, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	urls := 0
	for _, p := range parts {
		if strings.Contains(p, "://") {
			urls++
		}
	}
	switch {
	case len(parts) == 0:
		return nil, errors.New("TRELLIS_REDIS_URL is empty")
	case urls == 1 && len(parts) == 1:
		single, err := parseOneURL(parts[0])
		if err != nil {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL=%q: %w", redactURL(parts[0]), err)
		}
		return &redis.UniversalOptions{
			Addrs:     []string{single.Addr},
			DB:        single.DB,
			Username:  single.Username,
			Password:  single.Password,
			TLSConfig: single.TLSConfig,
		}, nil
	case urls == 0:
		if len(parts) < 2 {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL=%q: want redis://host:port or a list of cluster nodes", redactURL(c.URL))
		}
		o := &redis.UniversalOptions{IsClusterMode: true}
		for i, a := range parts {
			if !validHostPort(a) {
				return nil, fmt.Errorf("TRELLIS_REDIS_URL node %d (%q): want host:port", i+1, redactURL(a))
			}
			o.Addrs = append(o.Addrs, a)
		}
		return o, nil
	case urls != len(parts):
		return nil, errors.New("TRELLIS_REDIS_URL: a list of cluster nodes must give every node as a redis:// URL, or every node as host:port, not a mix")
	}
	o := &redis.UniversalOptions{IsClusterMode: true}
	var first *redis.Options
	for i, p := range parts {
		n, err := parseOneURL(p)
		if err != nil {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL node %d (%q): %w", i+1, redactURL(p), err)
		}
		if n.Network == "unix" {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL node %d (%q): cluster nodes are reached by TCP, not a unix socket", i+1, redactURL(p))
		}
		if n.DB != 0 {
			return nil, fmt.Errorf("TRELLIS_REDIS_URL node %d (%q): Redis Cluster has only database 0", i+1, redactURL(p))
		}
		if first == nil {
			first = n
		} else {
			var differ []string
			if n.Username != first.Username {
				differ = append(differ, "user")
			}
			if n.Password != first.Password {
				differ = append(differ, "password")
			}
			if (n.TLSConfig == nil) != (first.TLSConfig == nil) ||
				(n.TLSConfig != nil && n.TLSConfig.InsecureSkipVerify != first.TLSConfig.InsecureSkipVerify) {
				differ = append(differ, "TLS (rediss:// or skip_verify)")
			}
			if len(differ) > 0 {
				return nil, fmt.Errorf("TRELLIS_REDIS_URL node %d (%q): differs from node 1 in %s; every node of a cluster takes the same user, password and TLS setting",
					i+1, redactURL(p), strings.Join(differ, " and "))
			}
		}
		o.Addrs = append(o.Addrs, n.Addr)
	}
	o.Username, o.Password = first.Username, first.Password
	if first.TLSConfig != nil {
		// One TLS config serves every node: let each connection verify
		// its own node's name rather than node 1's.
		o.TLSConfig = first.TLSConfig.Clone()
		o.TLSConfig.ServerName = ""
	}
	return o, nil
}

func parseOneURL(u string) (*redis.Options, error) {
	o, err := redis.ParseURL(u)
	if err != nil {
		// url.Parse's errors quote the whole URL, password included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, err
	}
	return o, nil
}

func validHostPort(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || strings.ContainsAny(host, "@/") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// redactURL hides the user info of a URL (or of a bare user@host:port) for
// messages. It works on the raw text, because the URL it is given may be one
// url.Parse rejects; the last '@' of the authority ends the user info, as a
// password may hold an unescaped '@'.
func redactURL(u string) string {
	userinfo, ok := rawUserinfo(u)
	if !ok {
		return u
	}
	start := 0
	if j := strings.Index(u, "://"); j >= 0 {
		start = j + 3
	}
	return u[:start] + redacted + u[start+len(userinfo):]
}

// redacted replaces a secret in messages.
const redacted = "xxxxx"

// redactErr returns err with every secret in its message replaced by
// "xxxxx" (longest first, so a password inside a user info goes with it).
// The result still matches what err matched (errors.Is), but does not
// unwrap to err: unwrapping would hand out the unredacted message.
func redactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var found []string
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return err
	}
	sort.Slice(found, func(i, j int) bool { return len(found[i]) > len(found[j]) })
	for _, s := range found {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// Connect opens a client for cfg (a single node or a cluster) without
// talking to Redis yet: a component may start before Redis does. Its
// errors never show a password or a URL's user info.
func Connect(cfg Config) (redis.UniversalClient, error) {
	o, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	rdb := redis.NewUniversalClient(o)
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		cc.AddHook(reloadHook{cc: cc})
	}
	return rdb, nil
}

// Store is Trellis's view of Redis. It is safe for concurrent use; its zero
// value is not usable: build it with New.
type Store struct {
	rdb            redis.UniversalClient
	outputMaxLen   int64
	outputMaxBytes int64
	eventsMaxAge   time.Duration
	controlMaxLen  int64
	now            func() time.Time
	secrets        []string // redacted from connection errors (Ping)
	// sharded selects sharded pub/sub (SPUBLISH, SSUBSCRIBE), chosen once
	// from the client: on Redis Cluster a plain PUBLISH is broadcast to
	// every node over the cluster bus and counts only the receivers of the
	// node it was sent to, while a shard channel lives on its slot's owner,
	// like the stream of the same name.
	sharded bool

	ks         keyspace
	wantShards int          // configured control shards (0: the topology's default)
	ctlShards  atomic.Int32 // the namespace's, once known
}

// Option tunes a Store.
type Option func(*Store)

// WithOutputMaxLen sets how many entries an output stream keeps at most
// (approximately: MAXLEN ~).
func WithOutputMaxLen(n int64) Option { return func(s *Store) { s.outputMaxLen = n } }

// WithOutputMaxBytes sets how many bytes an output stream keeps at most,
// counting each entry's payload plus OutputEntryOverhead. Config insists on
// at least 64 KiB; tests may go lower (at least 1).
func WithOutputMaxBytes(n int64) Option { return func(s *Store) { s.outputMaxBytes = max(n, 1) } }

// WithEventsMaxAge sets the retention of the lifecycle event log.
func WithEventsMaxAge(d time.Duration) Option { return func(s *Store) { s.eventsMaxAge = d } }

// WithControlMaxLen sets how many entries the control stream keeps.
func WithControlMaxLen(n int64) Option { return func(s *Store) { s.controlMaxLen = n } }

// WithNamespace sets the first part of every key and channel name (see
// ValidNamespace); tests sharing one Redis Cluster give each test its own.
func WithNamespace(ns string) Option { return func(s *Store) { s.ks = newKeyspace(ns) } }

// WithControlShards sets the control shard count a new namespace gets (0:
// the topology's default); see ControlShards.
func WithControlShards(n int) Option { return func(s *Store) { s.wantShards = n } }

// ValidNamespace accepts 1 to 64 letters, digits, '-', '_' and '.': no ':'
// (the separator), no braces (a hash tag must come from Trellis alone).
func ValidNamespace(ns string) error {
	if ns == "" || len(ns) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q is not allowed: use letters, digits, '-', '_' and '.'", r)
		}
	}
	return nil
}

// WithClock replaces time.Now, for tests of retention.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New wraps a client. The store does not own the client: closing it is the
// caller's job.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	d := DefaultConfig()
	s := &Store{
		rdb:            rdb,
		outputMaxLen:   d.OutputMaxLen,
		outputMaxBytes: d.OutputMaxBytes,
		eventsMaxAge:   d.EventsMaxAge,
		controlMaxLen:  d.ControlMaxLen,
		now:            time.Now,
		ks:             newKeyspace(d.Namespace),
	}
	switch c := rdb.(type) {
	case *redis.Client:
		s.secrets = []string{c.Options().Password}
	case *redis.ClusterClient:
		s.secrets = []string{c.Options().Password}
		s.sharded = true
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects to Redis as cfg says and wraps the client in a Store.
func Open(cfg Config) (*Store, error) {
	// A Config built in code rather than read from the environment may
	// leave fields 0: they take the defaults then, never "keep nothing".
	cfg.SetDefaults()
	if err := ValidNamespace(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("TRELLIS_REDIS_NAMESPACE=%q: %w", cfg.Namespace, err)
	}
	rdb, err := Connect(cfg)
	if err != nil {
		return nil, err
	}
	s := New(rdb, WithEventsMaxAge(cfg.EventsMaxAge), WithControlMaxLen(cfg.ControlMaxLen),
		WithControlShards(cfg.ControlShards), WithNamespace(cfg.Namespace),
		WithOutputMaxLen(cfg.OutputMaxLen), WithOutputMaxBytes(cfg.OutputMaxBytes))
	s.secrets = append(s.secrets, cfg.secrets()...)
	return s, nil
}

// Client is the underlying client, for tools that look at Redis itself
// (benchmarks' memory and command counts). Pub/sub goes through
// NewSubscriber.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Close closes the underlying client.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping checks that Redis answers. Its error never shows a password or a
// URL's user info.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return redactErr(fmt.Errorf("ping redis: %w", err), s.secrets...)
	}
	return nil
}

// NodeEndpoints is Endpoints plus, on a cluster, every node the cluster
// knows now (primaries and replicas, with their cluster bus ports), from
// CLUSTER NODES: the seed list alone leaves the others dialable by a game
// inside an allowed network. Best effort: when the cluster cannot be asked,
// the seeds are returned with the error.
func (s *Store) NodeEndpoints(ctx context.Context) ([]string, error) {
	out := s.Endpoints()
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return out, nil
	}
	text, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return out, fmt.Errorf("cluster nodes: %w", err)
	}
	seen := make(map[string]bool, len(out))
	for _, a := range out {
		seen[a] = true
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// <ip:port@cport[,hostname]>
		addr, _, _ := strings.Cut(f[1], ",")
		data, bus, _ := strings.Cut(addr, "@")
		host, _, err := net.SplitHostPort(data)
		if err != nil || host == "" {
			continue
		}
		for _, a := range []string{data, net.JoinHostPort(host, bus)} {
			if _, p, err := net.SplitHostPort(a); err == nil && p != "" && p != "0" && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// Endpoints returns the host:port of every Redis node the store is
// configured with: the address of a single node, or the nodes a cluster
// client was given (not the ones it discovers later). A unix socket is no
// host:port and is left out. The worker's dial guard uses it to refuse a
// game that points at Trellis's own Redis.
func (s *Store) Endpoints() []string {
	switch c := s.rdb.(type) {
	case *redis.Client:
		if o := c.Options(); o.Network != "unix" && o.Addr != "" {
			return []string{o.Addr}
		}
	case *redis.ClusterClient:
		return slices.Clone(c.Options().Addrs)
	case *redis.Ring:
		var out []string
		for _, a := range c.Options().Addrs {
			out = append(out, a)
		}
		sort.Strings(out)
		return out
	}
	return nil
}
