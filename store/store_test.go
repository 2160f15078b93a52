package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

func validConfig() Config {
	return Config{
		URL: "redis://127.0.0.1:6379/0", DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
		OutputMaxLen: 20000, OutputMaxBytes: 1 << 20, EventsMaxAge: 168 * time.Hour, ControlMaxLen: 1_000_000,
	}
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	t.Parallel()
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for variable, mutate := range map[string]func(*Config){
		"TRELLIS_REDIS_URL":              func(c *Config) { c.URL = " " },
		"TRELLIS_REDIS_POOL_SIZE":        func(c *Config) { c.PoolSize = -1 },
		"TRELLIS_REDIS_DIAL_TIMEOUT":     func(c *Config) { c.DialTimeout = 0 },
		"TRELLIS_REDIS_READ_TIMEOUT":     func(c *Config) { c.ReadTimeout = -time.Second },
		"TRELLIS_REDIS_OUTPUT_MAXLEN":    func(c *Config) { c.OutputMaxLen = 9 },
		"TRELLIS_REDIS_OUTPUT_MAX_BYTES": func(c *Config) { c.OutputMaxBytes = 64<<10 - 1 },
		"TRELLIS_REDIS_EVENTS_RETENTION": func(c *Config) { c.EventsMaxAge = time.Second },
		"TRELLIS_REDIS_CONTROL_MAXLEN":   func(c *Config) { c.ControlMaxLen = 999 },
	} {
		c := validConfig()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), variable) {
			t.Errorf("%s: err=%v, want one naming the variable", variable, err)
		}
	}
	for _, url := range []string{
		"127.0.0.1:6379",                     // one node without a scheme
		"redis://127.0.0.1:6379/notanumber",  // bad database
		"http://127.0.0.1:6379",              // not redis
		"redis://u:s3cret@127.0.0.1:bad/0",   // bad port, with a password
		"redis://u:s3cr@t@127.0.0.1:%zz/0",   // bad escape, '@' in the password
		"rediss://:s3cret@h:1/0?bogus=yes&x", // unknown option
	} {
		c := validConfig()
		c.URL = url
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "TRELLIS_REDIS_URL") {
			t.Errorf("URL %q: err=%v, want one naming TRELLIS_REDIS_URL", url, err)
			continue
		}
		if strings.Contains(err.Error(), "s3c") {
			t.Errorf("URL %q: the error shows the password: %v", url, err)
		}
	}
}

func TestConnectParsesURLsAndClusterLists(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.URL = "redis://alice:pw@127.0.0.1:6390/7"
	c.PoolSize = 3
	rdb, err := Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	single, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("redis:// URL gave %T, want *redis.Client", rdb)
	}
	o := single.Options()
	if o.Addr != "127.0.0.1:6390" || o.DB != 7 || o.Username != "alice" || o.Password != "pw" || o.PoolSize != 3 ||
		o.ReadTimeout != 2*time.Second || !o.ContextTimeoutEnabled || o.TLSConfig != nil {
		t.Errorf("options %+v", o)
	}

	c.URL = "rediss://127.0.0.1:6390/0"
	c.Password = "override"
	rdb, err = Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if o := rdb.(*redis.Client).Options(); o.TLSConfig == nil || o.Password != "override" {
		t.Errorf("rediss with a password: TLS %v, password %q", o.TLSConfig, o.Password)
	}

	c = validConfig()
	c.URL = "10.0.0.1:7000, 10.0.0.2:7000,,10.0.0.3:7000"
	rdb, err = Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("node list gave %T, want *redis.ClusterClient", rdb)
	}
	if addrs := cluster.Options().Addrs; strings.Join(addrs, ",") != "10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000" {
		t.Errorf("cluster addrs %q", addrs)
	}

	c.URL = "redis://[bad"
	if _, err := Connect(c); err == nil {
		t.Error("Connect accepted a bad URL")
	}
	if _, err := Open(c); err == nil {
		t.Error("Open accepted a bad URL")
	}
}

func TestOpenTalksToRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	c := validConfig()
	c.URL = srv.URL(srv.NewDB(t))
	c.OutputMaxLen, c.ControlMaxLen, c.EventsMaxAge = 10, 1000, time.Hour
	s, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testContext(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if s.outputMaxLen != 10 || s.controlMaxLen != 1000 || s.eventsMaxAge != time.Hour {
		t.Errorf("Open ignored the config: %+v", s)
	}
	if s.Client() == nil {
		t.Error("Client() is nil")
	}
}

// TestRedisStoppedAndBack stops Redis under a working store: calls fail
// fast with an error, and once Redis is back the same store (same client,
// scripts no longer cached in Redis) works again with its data intact.
func TestRedisStoppedAndBack(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{AOF: true})
	s := New(srv.Client(t), WithOutputMaxLen(100))
	ctx := testContext(t)
	key := SessionKey{User: "outage", Game: "g"}

	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, key, "w1", "s1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	outID, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "before", Fence: lease.Fence})
	if err != nil {
		t.Fatal(err)
	}
	ctlID, err := s.PublishControl(ctx, attach("outage", "g"))
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Each call gets a few seconds; it must come back with its own error
	// (connection refused) well before that, not by running out the clock.
	for name, call := range map[string]func(context.Context) error{
		"AcquireLease": func(ctx context.Context) error {
			_, err := s.AcquireLease(ctx, SessionKey{User: "x", Game: "g"}, "w", "s", time.Minute)
			return err
		},
		"AppendOutput": func(ctx context.Context) error {
			_, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "lost", Fence: lease.Fence})
			return err
		},
		"PublishControl": func(ctx context.Context) error {
			_, err := s.PublishControl(ctx, attach("x", "g"))
			return err
		},
		"RenewLeases": func(ctx context.Context) error {
			_, err := s.RenewLeases(ctx, []Lease{lease}, time.Hour, 0)
			return err
		},
		"ControlConsumer.Read": func(ctx context.Context) error {
			_, err := s.ControlConsumer("w1").Read(ctx, 10, time.Second)
			return err
		},
	} {
		down, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := call(down)
		if err == nil {
			t.Errorf("%s with Redis down: no error", name)
		} else if down.Err() != nil {
			t.Errorf("%s with Redis down: hung until its context ended (%v)", name, err)
		}
		cancel()
	}

	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "store reconnects", func() bool { return s.Ping(ctx) == nil })

	// Redis restarted with an empty script cache: the batch path (EVALSHA
	// in a pipeline) must load the script and retry.
	if r, err := s.RenewLeases(ctx, []Lease{lease}, time.Hour, 0); err != nil || len(r.Lost) != 0 {
		t.Fatalf("RenewLeases after restart: %+v, err %v", r, err)
	}
	// AOF kept the data.
	if l, ok, err := s.GetLease(ctx, key); err != nil || !ok || l.Fence != lease.Fence {
		t.Errorf("lease after restart: %+v ok=%v err=%v", l, ok, err)
	}
	if got, _, err := s.ReadOutput(ctx, key, "", 10); err != nil || len(got) != 1 || got[0].ID != outID {
		t.Errorf("output after restart: %+v, %v; want %s only", got, err, outID)
	}
	if msgs, err := s.ControlConsumer("w1").Read(ctx, 10, 100*time.Millisecond); err != nil || len(msgs) != 1 || msgs[0].ID != ctlID {
		t.Errorf("control after restart: %v, %v; want %s", ids(msgs), err, ctlID)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutText, Text: "after", Fence: lease.Fence}); err != nil {
		t.Errorf("AppendOutput after restart: %v", err)
	}

	// Script.Run (single calls) falls back to EVAL on NOSCRIPT; flush the
	// cache again to make sure both paths meet an empty one.
	rdb := s.Client()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, SessionKey{User: "fresh", Game: "g"}, "w", "s", time.Minute); err != nil {
		t.Errorf("AcquireLease after SCRIPT FLUSH: %v", err)
	}
	if _, err := s.RenewLease(ctx, lease, time.Hour); err != nil {
		t.Errorf("RenewLease after SCRIPT FLUSH: %v", err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.AppendOutputs(ctx, []Append{
		{Key: key, Out: Output{Kind: OutText, Text: "a", Fence: lease.Fence}},
		{Key: key, Out: Output{Kind: OutText, Text: "b", Fence: lease.Fence + 1}},
	})
	if err != nil || res[0].Err != nil || !errors.Is(res[1].Err, ErrStaleFence) {
		t.Errorf("AppendOutputs after SCRIPT FLUSH: %+v, %v", res, err)
	}
}

// TestRedisKilledMidBlock kills Redis while a reader waits in a blocking
// read: the reader gets an error instead of hanging.
func TestRedisKilledMidBlock(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	s := New(srv.Client(t))
	ctx := testContext(t)
	if err := s.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.ControlConsumer("w")
	if _, err := c.Read(ctx, 10, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, 10, 0)
		done <- err
	}()
	eventually(t, "reader blocked", func() bool {
		list, err := s.Client().ClientList(ctx).Result()
		return err == nil && strings.Contains(list, "cmd=xreadgroup")
	})
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("blocked read returned no error when Redis died")
	}
}

func TestClusterNodesAsURLs(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.URL = "redis://alice:pw@10.0.0.1:7000, redis://alice:pw@10.0.0.2:7001/0,redis://alice:pw@[::1]:7002"
	rdb, err := Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("a list of URLs gave %T, want *redis.ClusterClient", rdb)
	}
	o := cluster.Options()
	if strings.Join(o.Addrs, ",") != "10.0.0.1:7000,10.0.0.2:7001,[::1]:7002" || o.Username != "alice" || o.Password != "pw" || o.TLSConfig != nil {
		t.Errorf("cluster options: addrs %q user %q password %q tls %v", o.Addrs, o.Username, o.Password, o.TLSConfig)
	}

	c.URL = "rediss://:pw@a.example:7000,rediss://:pw@b.example:7000?skip_verify=false"
	c.Password = "override"
	rdb, err = Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if o := rdb.(*redis.ClusterClient).Options(); o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.Password != "override" {
		t.Errorf("TLS cluster: tls %+v password %q; want TLS verifying each node's own name", o.TLSConfig, o.Password)
	}

	for name, url := range map[string]string{
		"passwords differ": "redis://u:first-s3cret@h1:1,redis://u:second-s3cret@h2:1",
		"users differ":     "redis://u1:s3cret@h1:1,redis://u2:s3cret@h2:1",
		"TLS differs":      "rediss://:s3cret@h1:1,redis://:s3cret@h2:1",
		"skip_verify":      "rediss://:s3cret@h1:1,rediss://:s3cret@h2:1?skip_verify=true",
		"a database":       "redis://:s3cret@h1:1/0,redis://:s3cret@h2:1/3",
		"a mix":            "redis://:s3cret@h1:1,h2:1",
		"a unix socket":    "redis://:s3cret@h1:1,unix://:s3cret@/tmp/redis.sock",
		"bad second URL":   "redis://:s3cret@h1:1/0,redis://u:s3cr@t@h2:%zz/0",
		"bad scheme":       "redis://:s3cret@h1:1,http://:s3cret@h2:1",
		"bare node junk":   "h1:1,:s3cret@h2:1",
		"bare no port":     "h1:1,h2",
		"bare one node":    "u:s3cret@h1:6379",
	} {
		c := validConfig()
		c.URL = url
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: %q accepted", name, url)
			continue
		}
		if !strings.HasPrefix(err.Error(), "TRELLIS_REDIS_URL") {
			t.Errorf("%s: %v does not name TRELLIS_REDIS_URL", name, err)
		}
		if strings.Contains(err.Error(), "s3c") {
			t.Errorf("%s: the error shows a password: %v", name, err)
		}
		if _, err := Connect(c); err == nil || strings.Contains(err.Error(), "s3c") {
			t.Errorf("%s: Connect: %v", name, err)
		}
	}
}

// TestRedisURLSecretsNeverShow: the second URL's password leaked through
// the old parser's error (it redacted only the first URL's user info).
// Neither any URL's password nor TRELLIS_REDIS_PASSWORD may appear in any
// error: parsing, connecting or talking to a Redis that refuses them.
func TestRedisURLSecretsNeverShow(t *testing.T) {
	t.Parallel()
	const envPassword = "env-pw-Zq81"
	secrets := []string{"first-pw-Kx", "second-pw-Jy", envPassword}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error shows %q: %v", what, s, err)
			}
		}
	}
	for _, url := range []string{
		"redis://a:first-pw-Kx@h1:1/0,redis://b:second-pw-Jy@h2:bad/0",
		"redis://a:first-pw-Kx@h1:1/0,redis://b:second-pw-Jy@[bad",
		"redis://a:first-pw-Kx@h1:1/0,redis://b:second-pw-Jy@h2:1/0",
		"redis://a:first-pw-Kx@h1:1/0?nonsense=1,redis://b:second-pw-Jy@h2:1/0",
		"redis://a:first-pw-Kx@h1:bad/0",
		"redis://a:first%2Dpw%2DKx@h1:bad/0",
	} {
		c := validConfig()
		c.URL, c.Password = url, envPassword
		check("Validate "+redactURL(url), c.Validate())
		_, err := Connect(c)
		check("Connect "+redactURL(url), err)
		_, err = Open(c)
		check("Open "+redactURL(url), err)
	}

	// A Redis that wants a password, given wrong ones.
	srv := redistest.New(t, redistest.Options{})
	ctx := testContext(t)
	admin := srv.Client(t)
	if err := admin.ConfigSet(ctx, "requirepass", "right-pw").Err(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"URL password":     {URL: "redis://:first-pw-Kx@" + srv.Addr + "/0"},
		"URL user":         {URL: "redis://nobody:first-pw-Kx@" + srv.Addr + "/0"},
		"PASSWORD setting": {URL: "redis://" + srv.Addr + "/0", Password: envPassword},
		"closed port":      {URL: "redis://:first-pw-Kx@127.0.0.1:1/0", Password: envPassword},
	} {
		c.DialTimeout, c.ReadTimeout = time.Second, time.Second
		s, err := Open(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+": Ping", s.Ping(ctx))
		s.Close()
	}
	s, err := Open(Config{URL: "redis://" + srv.Addr + "/0", Password: "right-pw", DialTimeout: time.Second, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping with the right password: %v", err)
	}
}

func TestRedactErr(t *testing.T) {
	t.Parallel()
	base := fmt.Errorf("dial redis://bob:pa%%40ss@h:1 (password pa@ss): %w", context.DeadlineExceeded)
	err := redactErr(base, "", "pa@ss", "bob:pa%40ss", "pa%40ss")
	if msg := err.Error(); strings.Contains(msg, "pa@ss") || strings.Contains(msg, "pa%40ss") || strings.Contains(msg, "bob") ||
		msg != "dial redis://xxxxx@h:1 (password xxxxx): context deadline exceeded" {
		t.Errorf("redacted: %q", msg)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("the redacted error no longer matches its cause")
	}
	if errors.Unwrap(err) != nil {
		t.Error("the redacted error unwraps to the unredacted one")
	}
	plain := errors.New("nothing secret")
	if redactErr(plain, "pw") != plain || redactErr(nil, "pw") != nil {
		t.Error("an error without secrets was changed")
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	if got := New(srv.Client(t)).Endpoints(); strings.Join(got, ",") != srv.Addr {
		t.Errorf("single node: %v, want [%s]", got, srv.Addr)
	}
	for url, want := range map[string]string{
		"redis://u:pw@10.0.0.1:7000/2":                          "10.0.0.1:7000",
		"redis://redis.internal":                                "redis.internal:6379",
		"redis://u:pw@10.0.0.1:7000,redis://u:pw@10.0.0.2:7001": "10.0.0.1:7000,10.0.0.2:7001",
		"10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002":             "10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002",
		"unix:///run/redis.sock":                                "",
	} {
		c := validConfig()
		c.URL = url
		s, err := Open(c)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if got := strings.Join(s.Endpoints(), ","); got != want {
			t.Errorf("%s: endpoints %q, want %q", url, got, want)
		}
		s.Close()
	}
}
