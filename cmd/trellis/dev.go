package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/sync/errgroup"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/console"
	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

// DevConfig configures `trellis dev`, the whole system in one process.
type DevConfig struct {
	Listen     string `default:"127.0.0.1:8080" desc:"where the edge listens (open this in a browser)"`
	DemoListen string `split_words:"true" default:"127.0.0.1:0" desc:"where the demo game listens (0: any free port)"`
	// RedisListen is fixed by default, so that the TRELLIS_REDIS_URL the
	// operator commands need is the same every run.
	RedisListen string `split_words:"true" default:"127.0.0.1:6380" desc:"where the embedded Redis listens, for the operator commands (trellis sessions ls...) in another terminal: a loopback address (it has no password); port 0: any free port. Unused when TRELLIS_REDIS_URL is set"`
}

// Validate checks the addresses parse, and that the embedded Redis, which
// has no password, is served on loopback only.
func (c DevConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("TRELLIS_DEV_LISTEN=%q: %v", c.Listen, err)
	}
	if _, _, err := net.SplitHostPort(c.DemoListen); err != nil {
		return fmt.Errorf("TRELLIS_DEV_DEMO_LISTEN=%q: %v", c.DemoListen, err)
	}
	host, _, err := net.SplitHostPort(c.RedisListen)
	if err != nil {
		return fmt.Errorf("TRELLIS_DEV_REDIS_LISTEN=%q: %v", c.RedisListen, err)
	}
	if a, err := netip.ParseAddr(host); (err != nil || !a.IsLoopback()) && host != "localhost" {
		return fmt.Errorf("TRELLIS_DEV_REDIS_LISTEN=%q: want a loopback address such as 127.0.0.1:6380 (the embedded Redis has no password)", c.RedisListen)
	}
	return nil
}

func runDev(ctx context.Context, args []string) error {
	var (
		dc DevConfig
		rc store.Config
		lc LogConfig
		wc worker.Config
		ec edge.Config
		ac auth.Config
		cc console.Config
	)
	sections := []envSection{{"TRELLIS_DEV", &dc}, redisSection(&rc), logSection(&lc)}
	// Help lists every variable dev honours, the components' too.
	fs := newFlags("dev", "dev\n\nWith TRELLIS_REDIS_URL unset, dev runs an embedded in-memory Redis on TRELLIS_DEV_REDIS_LISTEN\n"+
		"(it prints the TRELLIS_REDIS_URL that the operator commands need); guests are\n"+
		"let in and, without TRELLIS_AUTH_SECRET, tokens are signed with a random secret. The worker may\n"+
		"dial games on loopback (TRELLIS_WORKER_ALLOW_NETWORKS defaults to 127.0.0.0/8,::1/128 here).",
		append(sections, envSection{"TRELLIS_WORKER", &worker.Config{}}, envSection{"TRELLIS_EDGE", &edge.Config{}},
			envSection{"TRELLIS_AUTH", &auth.Config{}}, envSection{"TRELLIS_CONSOLE", &console.Config{}})...)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	start := time.Now()
	embedded := os.Getenv("TRELLIS_REDIS_URL") == ""
	if err := loadEnv(sections...); err != nil {
		return err
	}
	log, err := lc.logger(os.Stderr)
	if err != nil {
		return err
	}

	// Worker, edge and auth take their usual variables, with defaults
	// that suit one process on a laptop.
	if os.Getenv("TRELLIS_AUTH_SECRET") == "" {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		os.Setenv("TRELLIS_AUTH_SECRET", hex.EncodeToString(secret))
	}
	setDefaultEnv("TRELLIS_EDGE_LISTEN", dc.Listen)
	setDefaultEnv("TRELLIS_EDGE_GUEST", "true")
	// No admin listeners by default (their fixed ports would collide with
	// a local Prometheus on 9090, or a second dev); set
	// TRELLIS_EDGE_ADMIN_LISTEN=127.0.0.1:9090 for the edge's /metrics.
	setDefaultEnv("TRELLIS_EDGE_ADMIN_LISTEN", "")
	setDefaultEnv("TRELLIS_WORKER_ADMIN_LISTEN", "")
	setDefaultEnv("TRELLIS_WORKER_IDLE_GRACE", "10m")
	setDefaultEnv("TRELLIS_WORKER_DRAIN_TIMEOUT", "2s")
	// The demo game is on this host: let the worker dial it there. (Its
	// dial guard still refuses the Redis it uses, embedded or not.)
	setDefaultEnv("TRELLIS_WORKER_ALLOW_NETWORKS", devAllowNetworks(dc.DemoListen))
	if err := loadEnv(envSection{"TRELLIS_WORKER", &wc}, envSection{"TRELLIS_EDGE", &ec}, envSection{"TRELLIS_AUTH", &ac},
		envSection{"TRELLIS_CONSOLE", &cc}); err != nil {
		return err
	}

	var mini *miniredis.Miniredis
	if embedded {
		mini = miniredis.NewMiniRedis()
		if err := mini.StartAddr(dc.RedisListen); err != nil {
			return fmt.Errorf("embedded Redis: %w (is another trellis dev running? set TRELLIS_DEV_REDIS_LISTEN=127.0.0.1:0 for any free port)", err)
		}
		defer mini.Close()
		rc.URL = "redis://" + mini.Addr() + "/0"
	}
	st, err := store.Open(rc)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", dc.DemoListen)
	if err != nil {
		return fmt.Errorf("demo game: listen %s: %w", dc.DemoListen, err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		// Listening on every address: the worker dials it on loopback
		// (the dial guard refuses an unspecified address).
		host = "127.0.0.1"
	}
	if err := st.PutGame(ctx, store.Game{
		ID: "demo", Name: "Trellis Demo", Host: host, Port: port,
		Description: "The demo game that ships with Trellis: colours, GMCP vitals, a password prompt.",
	}); err != nil {
		ln.Close()
		return err
	}

	w, err := worker.New(wc, st, log.With("component", "worker"))
	if err != nil {
		ln.Close()
		return err
	}
	verifier, err := auth.NewVerifier([]byte(ac.Secret))
	if err != nil {
		ln.Close()
		return err
	}
	e, err := edge.New(ec, verifier, st, log.With("component", "edge"))
	if err != nil {
		ln.Close()
		return err
	}
	game := demogame.New(demogame.Config{Logger: log.With("component", "demo-game")})
	// Listen before saying where to go, so the printed URL works at once
	// and a busy port is reported before anything else starts.
	edgeLn, err := net.Listen("tcp", ec.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on %s: %w (is another Trellis running? set TRELLIS_DEV_LISTEN=127.0.0.1:8081)", ec.Listen, err)
	}

	con, err := console.New(cc, verifier, st, log.With("component", "console"))
	if err != nil {
		ln.Close()
		edgeLn.Close()
		return err
	}
	conLn, opToken, err := devConsole(cc, ac.Secret)
	if err != nil {
		ln.Close()
		edgeLn.Close()
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return game.Serve(gctx, ln) })
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return e.Serve(gctx, edgeLn) })
	g.Go(func() error { return con.Serve(gctx, conLn) })

	redisDesc := "embedded, in memory, at " + mini.Addr() + " (set TRELLIS_REDIS_URL to use a real Redis)"
	ops := "export TRELLIS_REDIS_URL=" + rc.URL
	if !embedded {
		redisDesc = redactURLs(rc.URL)
		ops = "(with the same TRELLIS_REDIS_URL)"
	}
	fmt.Fprintf(os.Stderr, `
  Trellis is running (ready in %s).

    Play:   http://%s/play/demo
    Games:  http://%s/
    Redis:  %s
    Demo game (telnet): %s

  Operator console: http://%s/
    sign in with this operator token (valid %s; mint others with
    'trellis token -operator NAME' and this process's TRELLIS_AUTH_SECRET):
    %s

  Operator commands, in another terminal:

    %s
    trellis sessions ls

  Press Ctrl-C to stop.

`, time.Since(start).Round(time.Millisecond), edgeLn.Addr(), edgeLn.Addr(), redisDesc, ln.Addr(),
		conLn.Addr(), devOperatorTTL, opToken, ops)
	if devListening != nil {
		devListening(edgeLn.Addr().String())
	}

	err = g.Wait()
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// devAllowNetworks is the default TRELLIS_WORKER_ALLOW_NETWORKS of dev:
// loopback, and the demo game's own address if it listens on another one.
func devAllowNetworks(demoListen string) string {
	allow := "127.0.0.0/8,::1/128"
	host, _, _ := net.SplitHostPort(demoListen)
	if a, err := netip.ParseAddr(host); err == nil && !a.IsLoopback() && !a.IsUnspecified() {
		allow += "," + a.WithZone("").String()
	}
	return allow
}

// devListening, when set (by tests), learns the edge's address once the
// whole stack is serving.
var devListening func(edgeAddr string)

// redactURLs hides the user info (a password) of each URL of a
// TRELLIS_REDIS_URL list, for printing. (store's redactURL does the same
// for its errors, but is not exported.)
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, u := range parts {
		start := 0
		if j := strings.Index(u, "://"); j >= 0 {
			start = j + 3
		}
		// The last '@' ends the user info: a password may hold '@' or
		// '/' unescaped. Hiding too much of a rare URL is harmless.
		if at := strings.LastIndexByte(u[start:], '@'); at >= 0 {
			parts[i] = u[:start] + "xxxxx" + u[start+at:]
		}
	}
	return strings.Join(parts, ",")
}

func setDefaultEnv(k, v string) {
	if _, ok := os.LookupEnv(k); !ok {
		os.Setenv(k, v)
	}
}
