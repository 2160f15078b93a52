package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// LoginGame is a demo game with login that the logged-in scenario plays.
type LoginGame struct {
	ID   string `json:"id"`
	MCCP bool   `json:"mccp2"` // the game offers MCCP2 (the worker accepts it by default)
}

// LoginIdleResult is what an idle session that logged in to a real game
// costs each process: measured from outside, on an edge and a worker that
// were started for this measurement alone.
type LoginIdleResult struct {
	Game     string `json:"game"`
	MCCP     bool   `json:"mccp2"`
	Sessions int    `json:"sessions"`
	Failed   int    `json:"failed"`
	// FirstFailure is why the first failed session did not log in; the
	// figures are per session that did.
	FirstFailure string     `json:"first_failure,omitempty"`
	Procs        []ProcIdle `json:"procs"`
	// RedisBefore and RedisAfter are the redis-server's memory split up
	// (redismem.go) before the sessions connect and once they are idle;
	// RedisGrowth is the difference per session, as report lines.
	RedisBefore *RedisBreakdown `json:"redis_before,omitempty"`
	RedisAfter  *RedisBreakdown `json:"redis_after,omitempty"`
	RedisGrowth []string        `json:"redis_growth_per_session,omitempty"`
	// RedisIdle is what one idle session costs Redis (used_memory per
	// session) without two things that do not grow with it, from the
	// breakdowns: RedisClients, the growth of the client connections
	// (the processes' pools, fresh before the sessions, grow to their
	// POOL_SIZE while the sessions log in: a fixed cost), and
	// RedisArrivals, the demo game's "X arrives." lines, which every
	// player in its one room gets for each later login (O(sessions) per
	// session). -1 when not measured.
	RedisIdle     int64  `json:"redis_idle_per_session"`
	RedisClients  int64  `json:"redis_clients_per_session"`
	RedisArrivals int64  `json:"redis_arrivals_per_session"`
	Error         string `json:"error,omitempty"`
}

// login measures, for each of env.LoginGames, the memory that
// opts.LoginSessions sessions logged in to that game cost, each on fresh
// edge and worker processes; then it restarts them once more so that the
// scenarios after it start clean too.
func (r *runner) login(ctx context.Context) {
	if r.env.Restart == nil || r.env.Memory == nil || len(r.env.LoginGames) == 0 {
		r.note("login: the stack is not run as separate processes (--procs); logged-in memory not measured")
		return
	}
	for _, g := range r.env.LoginGames {
		if err := r.env.Restart(ctx); err != nil {
			r.res.LoggedIn = append(r.res.LoggedIn, LoginIdleResult{Game: g.ID, MCCP: g.MCCP, Error: "restart: " + err.Error()})
			return
		}
		res := runLoginIdle(ctx, r.env, g, r.prefix("l"), r.opts.LoginSessions, r.opts.ConnectRate, r.deadline())
		r.res.LoggedIn = append(r.res.LoggedIn, res)
		if res.Failed > 0 {
			r.note("login %s: %d of %d sessions did not log in (first: %s); the figures are per session that did", g.ID, res.Failed, r.opts.LoginSessions, res.FirstFailure)
		}
		if res.Error != "" {
			r.progress("login %s: %s", g.ID, res.Error)
		}
		if e, ok := procOf(res.Procs, "worker"); ok {
			ed, _ := procOf(res.Procs, "edge")
			rd, _ := procOf(res.Procs, "redis")
			r.progress("login %s (mccp2 %v): %d sessions; RSS per session edge %s, worker %s, redis %s", g.ID, g.MCCP, res.Sessions, kib(ed.RSS), kib(e.RSS), kib(rd.RSS))
		}
		for _, l := range res.RedisGrowth {
			r.progress("  redis per session: %s", l)
		}

		r.settle(ctx)
	}
	if err := r.env.Restart(ctx); err != nil {
		r.note("login: restarting the stack afterwards: %v", err)
	}
}

func runLoginIdle(ctx context.Context, env Env, g LoginGame, prefix string, n, rate int, deadline time.Time) LoginIdleResult {
	res := LoginIdleResult{Game: g.ID, MCCP: g.MCCP, RedisIdle: -1}
	t := env.Stack
	t.Game = g.ID
	// A fresh process settles (pools, first GC) before the baseline.
	_ = sleepUntil(ctx, time.Now().Add(time.Second))
	before := env.Memory(ctx)
	breakdown := func() *RedisBreakdown {
		if env.Redis == nil {
			return nil
		}
		procs := map[int]string{os.Getpid(): "bench"}
		for _, p := range env.Memory(ctx) {
			if p.Name != "redis" {
				procs[p.Pid] = p.Name
			}
		}
		b := readBreakdown(ctx, env.Redis, socketOwners(procs))
		return &b
	}
	res.RedisBefore = breakdown()
	conns, failed, err := connectAllThen(ctx, &t, prefix, n, rate, deadline, func(c *conn, i int) error {
		return c.loginAs(playerName(i), deadline)
	})
	defer closeAll(conns)
	res.Failed = failed
	res.Sessions = n - failed
	if err != nil {
		res.FirstFailure = err.Error()
	}
	if failed > n/10 {
		res.Error = fmt.Sprintf("%d of %d sessions failed to log in; first: %v", failed, n, err)
		return res
	}
	if res.Sessions == 0 {
		res.Error = "no session logged in"
		return res
	}
	// Let the games' post-login output (room, GMCP) reach the stream.
	_ = sleepUntil(ctx, time.Now().Add(2*time.Second))
	res.Procs = procGrowth(before, env.Memory(ctx), res.Sessions)
	if res.RedisAfter = breakdown(); res.RedisBefore != nil && res.RedisAfter != nil {
		res.RedisGrowth = breakdownDelta(*res.RedisBefore, *res.RedisAfter, res.Sessions)
		res.RedisIdle, res.RedisClients, res.RedisArrivals = idleRedis(*res.RedisBefore, *res.RedisAfter, res.Sessions)
	}
	return res
}

// loginAs answers the demo game's name and password prompts and waits for
// its welcome. Prompts end without a newline, so it watches the text, not
// lines.
func (c *conn) loginAs(name string, deadline time.Time) error {
	c.ws.SetReadDeadline(deadline)
	defer c.ws.SetReadDeadline(time.Time{})
	last, retyped := "", 0
	for _, step := range []struct{ wait, send string }{
		{"name? ", name},
		{"Password: ", "pw-" + name},
		{"Welcome", ""}, // "Welcome, <name>." or "Welcome back"
	} {
		var seen strings.Builder
		for !strings.Contains(seen.String(), step.wait) {
			f, err := c.next()
			if err != nil {
				return fmt.Errorf("login %s: waiting for %q: %w", name, step.wait, err)
			}
			switch f.Type {
			case "error":
				// The edge could not confirm the line reached the game (a
				// loaded machine): a player types it again, and so do we.
				if f.Code == "input_lost" && last != "" && retyped < 3 {
					retyped++
					if err := c.send(last); err != nil {
						return fmt.Errorf("login %s: retype: %w", name, err)
					}
					continue
				}
				return fmt.Errorf("login %s: error frame %s: %s", name, f.Code, f.Message)
			case "output":
				seen.WriteString(f.Text)
			}
			c.lines.take()
		}
		if step.send != "" {
			if err := c.send(step.send); err != nil {
				return fmt.Errorf("login %s: %w", name, err)
			}
			last = step.send
		}
	}
	c.lines = lineSplitter{}
	return nil
}

// playerName is a demo-game name (letters only) unique to i.
func playerName(i int) string {
	b := []byte("Bn")
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}

// idleRedis splits used_memory growth per session into what an idle
// session costs, the client connections' growth and the demo game's
// arrival lines (see LoginIdleResult.RedisIdle); idle is -1 when a
// breakdown failed.
func idleRedis(before, after RedisBreakdown, n int) (idle, clients, arrivals int64) {
	if n <= 0 || before.Error != "" || after.Error != "" || after.Info["used_memory"] == 0 {
		return -1, 0, 0
	}
	k := int64(n)
	used := (after.Info["used_memory"] - before.Info["used_memory"]) / k
	clients = (after.Info["mem_clients_normal"] - before.Info["mem_clients_normal"]) / k
	arrivals = (after.OutKinds[ArrivalKind].Bytes - before.OutKinds[ArrivalKind].Bytes) / k
	return used - clients - arrivals, clients, arrivals
}
