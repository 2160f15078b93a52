package drills

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the waits that are not failovers.
const (
	attachTimeout = 20 * time.Second // hello to the game's name prompt
	replyTimeout  = 10 * time.Second // a command to its answer
)

// figure logs one measured number of a drill in a form the report can
// collect: go test -run Drill -v ./internal/drills | grep DRILL.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("DRILL %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// twoByTwo starts the usual shape: two workers, then two edges.
func twoByTwo(t *testing.T) (c *cluster, workers, edges []*proc, addrs []string) {
	t.Helper()
	return twoByTwoOn(newCluster(t))
}

// twoByTwoOn is twoByTwo in a world already made (on a Redis Cluster, say).
func twoByTwoOn(c *cluster) (_ *cluster, workers, edges []*proc, addrs []string) {
	c.t.Helper()
	workers = []*proc{c.startWorker("w1"), c.startWorker("w2")}
	edges = []*proc{c.startEdge("e1"), c.startEdge("e2")}
	return c, workers, edges, []string{edges[0].addr, edges[1].addr}
}

// join connects a player through edges[first], waits for the welcome and
// the connected status, and logs the character in.
func join(t *testing.T, user string, addrs []string, first int) *player {
	t.Helper()
	p := newPlayer(t, user, addrs, first)
	p.waitFrame(0, "welcome", attachTimeout, func(f frame) bool { return f.Type == "welcome" })
	p.waitFrame(0, "status connected", attachTimeout, isStatus("connected"))
	p.login(0, attachTimeout)
	return p
}

// echo sends "echo <word>" and waits for the game to answer it.
func (p *player) echo(word string) {
	p.t.Helper()
	m := p.mark()
	p.send("echo " + word)
	p.waitText(m, word+"\n", replyTimeout)
}

// TestReloadStickiness: a page reload that comes back through the other
// edge lands on the same game connection, and the resume backlog replays
// what was said before the reload.
func TestReloadStickiness(t *testing.T) {
	slow(t)
	reloadStickiness(t, newCluster(t))
}

// TestReloadStickinessOnRedisCluster is TestReloadStickiness on a Redis
// Cluster.
func TestReloadStickinessOnRedisCluster(t *testing.T) {
	slow(t)
	reloadStickiness(t, onRedisCluster(t))
}

func reloadStickiness(t *testing.T, c *cluster) {
	c, _, _, addrs := twoByTwoOn(c)
	p := join(t, "alice", addrs, 0)
	before, ok := c.lease("alice")
	if !ok {
		t.Fatal("no lease after login")
	}

	resume := p.lastStreamID() // the browser's resume point before it spoke
	m := p.mark()
	p.send("say remember the red door")
	p.waitText(m, "You say: remember the red door", replyTimeout)

	m = p.mark()
	start := time.Now()
	p.reload(1, resume)
	w := p.waitFrame(m, "welcome after the reload", attachTimeout, func(f frame) bool { return f.Type == "welcome" })
	if !w.Resumed {
		t.Errorf("welcome after the reload: resumed=false, want true")
	}
	p.waitText(m, "You say: remember the red door", replyTimeout)
	backlog := time.Since(start)

	// The same game connection: the game saw one connection, the character
	// is online once, the lease (and its fence) did not move, and nobody
	// was asked to log in again.
	m2 := p.mark()
	p.send("who")
	p.waitText(m2, "Players online (", replyTimeout)
	if txt := p.textSince(m2); !strings.Contains(txt, "Players online (1)") {
		t.Errorf("who after the reload:\n%s\nwant one player", txt)
	}
	if n := c.game.Accepted(); n != 1 {
		t.Errorf("the game accepted %d connections, want 1 (the reload must reuse the session)", n)
	}
	if txt := p.textSince(m); strings.Contains(txt, "What is your name?") {
		t.Errorf("the reload was asked to log in again:\n%s", txt)
	}
	if f, ok := p.findFrame(m, isStatus("connecting", "connected", "reconnected")); ok {
		t.Errorf("status %q after the reload: the session was restarted", f.State)
	}
	after, ok := c.lease("alice")
	if !ok || after.Session != before.Session || after.Fence != before.Fence {
		t.Errorf("lease after the reload %+v (held=%v), want the same session and fence as %+v", after, ok, before)
	}
	if n := p.connections(); n != 2 {
		t.Errorf("%d connections, want 2 (one reload)", n)
	}
	p.checkOrder()
	p.checkSecret()
	c.checkSecretKept(p)
	figure(t, "reload via the other edge: backlog with the earlier line after %s; game connections 1; fence %d unchanged",
		backlog.Round(time.Millisecond), after.Fence)
}

// floodLine is one line of the demo game's "flood N": 80 bytes with CR LF,
// which the worker turns into LF.
var floodLine = regexp.MustCompile(`flood (\d{6}) x{65}\r?\n`)

// TestEdgeKilledDuringFlood: the edge relaying a 5000-line flood is
// SIGKILLed; the player resumes on the other edge and gets every line
// exactly once, in order.
func TestEdgeKilledDuringFlood(t *testing.T) {
	slow(t)
	edgeKilledDuringFlood(t, newCluster(t))
}

// TestEdgeKilledDuringFloodOnRedisCluster is TestEdgeKilledDuringFlood on
// a Redis Cluster.
func TestEdgeKilledDuringFloodOnRedisCluster(t *testing.T) {
	slow(t)
	edgeKilledDuringFlood(t, onRedisCluster(t))
}

func edgeKilledDuringFlood(t *testing.T, c *cluster) {
	const lines = 5000
	c, _, edges, addrs := twoByTwoOn(c)
	p := join(t, "bob", addrs, 0)

	m := p.mark()
	p.send(fmt.Sprintf("flood %d", lines))
	p.waitText(m, "flood 000001 ", replyTimeout)
	edges[0].kill()
	killed := time.Now()
	seenBeforeKill := len(floodLine.FindAllString(p.textSince(m), -1))

	last := fmt.Sprintf("flood %06d ", lines)
	p.waitFor(recoveryBound, "the flood's last line", func() bool {
		txt := p.textSinceLocked(m)
		i := strings.LastIndex(txt, last)
		return i >= 0 && strings.Contains(txt[i:], "\n")
	})
	done := time.Since(killed)
	resumedAt, _ := p.findFrame(m, func(f frame) bool { return f.conn == 2 })

	counts := make(map[int]int, lines)
	var order []int
	for _, sub := range floodLine.FindAllStringSubmatch(p.textSince(m), -1) {
		n, _ := strconv.Atoi(sub[1])
		counts[n]++
		order = append(order, n)
	}
	var lost, dup []int
	for n := 1; n <= lines; n++ {
		switch {
		case counts[n] == 0:
			lost = append(lost, n)
		case counts[n] > 1:
			dup = append(dup, n)
		}
	}
	if len(lost) > 0 || len(dup) > 0 {
		t.Errorf("after the edge died: %d lines lost (first %v), %d repeated (first %v)",
			len(lost), lost[:min(5, len(lost))], len(dup), dup[:min(5, len(dup))])
	}
	if !slices.IsSorted(order) {
		t.Errorf("flood lines out of order")
	}
	if n := p.connections(); n != 2 {
		t.Errorf("%d connections, want 2 (the first edge died once)", n)
	}
	if n := c.game.Accepted(); n != 1 {
		t.Errorf("the game accepted %d connections, want 1 (an edge dying must not touch the session)", n)
	}
	p.checkOrder()
	var reconnect time.Duration
	if !resumedAt.at.IsZero() {
		reconnect = resumedAt.at.Sub(killed)
	}
	figure(t, "edge SIGKILL after %d of %d lines; first frame via the other edge after %s; all lines after %s; lost %d, repeated %d",
		seenBeforeKill, lines, reconnect.Round(time.Millisecond), done.Round(time.Millisecond), len(lost), len(dup))
}

// TestWorkerKilled: the worker holding a session is SIGKILLed; the edge
// notices the lease expire, the session starts on the other worker with a
// higher fence, and the player is told (status reconnected) on the same
// WebSocket.
func TestWorkerKilled(t *testing.T) {
	slow(t)
	workerKilled(t, newCluster(t))
}

// TestWorkerKilledOnRedisCluster is TestWorkerKilled on a Redis Cluster.
func TestWorkerKilledOnRedisCluster(t *testing.T) {
	slow(t)
	workerKilled(t, onRedisCluster(t))
}

func workerKilled(t *testing.T, c *cluster) {
	c, workers, _, addrs := twoByTwoOn(c)
	p := join(t, "carol", addrs, 0)
	before, _ := c.lease("carol")
	owner := c.owner("carol")
	other := workers[0]
	if owner == workers[0] {
		other = workers[1]
	}

	m := p.mark()
	owner.kill()
	killed := time.Now()
	st := p.waitFrame(m, "status reconnected", recoveryBound, isStatus("reconnected"))
	recovered := st.at.Sub(killed)

	// The new game connection starts at the login, like any new one; the
	// input path goes to the new owner.
	p.login(m, attachTimeout)
	p.echo("after-failover")
	loggedIn := time.Since(killed)

	after, ok := c.lease("carol")
	switch {
	case !ok:
		t.Errorf("no lease after the failover")
	case after.Owner != other.instance:
		t.Errorf("lease owner %q after the failover, want the surviving worker %q", after.Owner, other.instance)
	case after.Fence <= before.Fence:
		t.Errorf("fence %d after the failover, want more than %d", after.Fence, before.Fence)
	}
	if n := c.game.Accepted(); n != 2 {
		t.Errorf("the game accepted %d connections, want 2 (the first and the failover)", n)
	}
	if f, ok := p.findFrame(m, isStatus("failed", "disconnected")); ok {
		t.Errorf("status %q %q during the failover", f.State, f.Message)
	}
	p.checkOrder()
	p.checkSecret()
	c.checkSecretKept(p)
	figure(t, "worker SIGKILL (lease TTL %s): status reconnected after %s; playing again (re-login, echo) after %s; WebSocket connections %d; fence %d -> %d",
		leaseTTL, recovered.Round(time.Millisecond), loggedIn.Round(time.Millisecond), p.connections(), before.Fence, after.Fence)
}

// TestRedisRestart: redis-server (AOF on) is stopped for a second and
// started again while the game keeps talking to a player (a bystander connected to the
// game directly says a numbered line every 20 ms). The session keeps its
// game connection and lease, the player's input works again, and every
// line the game sent — during the outage too — reaches the player exactly
// once.
func TestRedisRestart(t *testing.T) {
	slow(t)
	c, _, _, addrs := twoByTwo(t)
	p := join(t, "dave", addrs, 0)
	zed := newBystander(t, c.gameAddr, "Zed")
	p.echo("before-restart")
	before, _ := c.lease("dave")
	accepted := c.game.Accepted()

	// The ticker is owned by this test: stopped and waited for below, or
	// by the cleanup if the test fails first.
	m := p.mark()
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopTicks := func() { stopOnce.Do(func() { close(stop) }) }
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := zed.send(fmt.Sprintf("say tick %d", sent.Load()+1)); err != nil {
				t.Error(err)
				return
			}
			sent.Add(1)
		}
	}()
	t.Cleanup(func() { stopTicks(); wg.Wait() })
	p.waitText(m, "Zed says: tick 5\n", replyTimeout)

	down, sentBefore := time.Now(), sent.Load()
	if err := c.redis.Stop(); err != nil {
		t.Fatalf("stop redis: %v", err)
	}
	// Stay down for a while, as a restarted pod does, but well within the
	// lease TTL: longer, and the workers rightly fence themselves.
	time.Sleep(redisOutage)
	if err := c.redis.StartAgain(); err != nil {
		t.Fatalf("start redis again: %v", err)
	}
	up := time.Now()
	sentDuringOutage := sent.Load() - sentBefore

	// Lines typed while the edge reconnects may be refused; type until
	// one comes back, as a player would.
	var back time.Duration
	deadline := time.Now().Add(recoveryBound)
	for i := 1; ; i++ {
		word := fmt.Sprintf("after-restart-%d", i)
		mi := p.mark()
		if err := p.trySend("echo "+word, time.Second); err == nil {
			if p.waitUntil(time.Second, word, func() bool {
				return strings.Contains(p.textSinceLocked(mi), word+"\n")
			}) == nil {
				back = time.Since(up)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo within %s of the restart; last frames:\n%s", recoveryBound, p.recent(20))
		}
	}
	stopTicks()
	wg.Wait()
	last := fmt.Sprintf("Zed says: tick %d\n", sent.Load())
	p.waitText(m, last, recoveryBound)

	counts := map[int]int{}
	for _, sub := range tickLine.FindAllStringSubmatch(p.textSince(m), -1) {
		n, _ := strconv.Atoi(sub[1])
		counts[n]++
	}
	var lost, dup []int
	for n := 1; n <= int(sent.Load()); n++ {
		switch {
		case counts[n] == 0:
			lost = append(lost, n)
		case counts[n] > 1:
			dup = append(dup, n)
		}
	}
	if len(lost) > 0 || len(dup) > 0 {
		t.Errorf("game lines across the restart: %d lost %v, %d repeated %v", len(lost), lost[:min(10, len(lost))], len(dup), dup[:min(10, len(dup))])
		for _, n := range dup[:min(3, len(dup))] {
			t.Logf("stream entries with tick %d:\n%s", n, c.entriesContaining("dave", fmt.Sprintf("tick %d\n", n)))
		}
	}

	after, ok := c.lease("dave")
	if !ok || after.Session != before.Session || after.Fence != before.Fence {
		t.Errorf("lease after the restart %+v (held=%v), want the same session and fence as %+v", after, ok, before)
	}
	if n := c.game.Accepted(); n != accepted {
		t.Errorf("the game accepted %d connections, want %d (a Redis restart must not cost the game connection)", n, accepted)
	}
	if f, ok := p.findFrame(m, isStatus("reconnected", "failed", "disconnected", "connecting")); ok {
		t.Errorf("status %q %q after the Redis restart: the session was not kept", f.State, f.Message)
	}
	p.checkOrder()
	figure(t, "redis down for %s (SIGTERM, restart, AOF); the game said %d lines (%d while Redis was down): lost %d, repeated %d; echo answered %s after Redis was back; WebSocket connections %d",
		up.Sub(down).Round(time.Millisecond), sent.Load(), sentDuringOutage, len(lost), len(dup), back.Round(time.Millisecond), p.connections())
}

// redisOutage is how long the Redis drill keeps redis-server stopped.
const redisOutage = time.Second

// tickLine is a bystander's numbered line as a Trellis player sees it.
var tickLine = regexp.MustCompile(`Zed says: tick (\d+)\n`)

// TestRollingRestart: both workers are rolled with drain — SIGTERM one,
// wait for it to exit, start a replacement, SIGTERM the other. Every
// player ends up served on the replacement, was told of each move, and no
// process hangs.
func TestRollingRestart(t *testing.T) {
	slow(t)
	c, workers, edges, addrs := twoByTwo(t)
	names := []string{"erin", "frank", "grace", "heidi", "ivan", "judy"}
	players := make([]*player, len(names))
	for i, n := range names {
		players[i] = join(t, n, addrs, i)
	}
	perWorker := map[string]int{}
	for _, n := range names {
		perWorker[c.owner(n).name]++
	}
	figure(t, "sessions before the roll: %v", perWorker)

	// roll drains one worker and checks that its players moved, were told
	// (draining, then reconnected) and can play on.
	roll := func(w *proc) (drain, slowest time.Duration, moved int) {
		t.Helper()
		var onIt []*player
		marks := map[*player]int{}
		for _, p := range players {
			if c.owner(p.user) == w {
				onIt = append(onIt, p)
			}
			marks[p] = p.mark()
		}
		start := time.Now()
		took, err := w.terminate(exitTimeout)
		if err != nil {
			t.Errorf("drain %s: %v", w.name, err)
		}
		for _, p := range onIt {
			m := marks[p]
			p.waitFrame(m, "status draining", replyTimeout, isStatus("draining"))
			st := p.waitFrame(m, "status reconnected", recoveryBound, isStatus("reconnected"))
			slowest = max(slowest, st.at.Sub(start))
			p.login(m, attachTimeout)
		}
		for _, p := range players {
			p.echo("served-after-" + w.name)
		}
		return took, slowest, len(onIt)
	}

	drain1, move1, n1 := roll(workers[0])
	w3 := c.startWorker("w3")
	drain2, move2, n2 := roll(workers[1])

	for _, n := range names {
		if l, ok := c.lease(n); !ok || l.Owner != w3.instance {
			t.Errorf("%s: lease %+v (held=%v) after the roll, want owner %s", n, l, ok, w3.instance)
		}
	}
	// The first roll moves w1's sessions to w2; the second moves them all.
	if n1 != perWorker["w1"] || n2 != len(names) {
		t.Errorf("%d then %d sessions moved, want %d then %d", n1, n2, perWorker["w1"], len(names))
	}
	if want := int64(len(names) + n1 + n2); c.game.Accepted() != want {
		t.Errorf("the game accepted %d connections, want %d (one per session and move)", c.game.Accepted(), want)
	}
	if n := c.game.Conns(); n != len(names) {
		t.Errorf("the game has %d connections open, want %d (old ones closed)", n, len(names))
	}
	for _, p := range players {
		if f, ok := p.findFrame(0, isStatus("failed", "disconnected")); ok {
			t.Errorf("%s: status %q %q during the roll", p.user, f.State, f.Message)
		}
		p.checkOrder()
		p.checkSecret()
		c.checkSecretKept(p)
	}
	figure(t, "w1 drained and exited in %s, its %d sessions reconnected within %s of SIGTERM; w2 in %s, %d sessions within %s",
		drain1.Round(time.Millisecond), n1, move1.Round(time.Millisecond), drain2.Round(time.Millisecond), n2, move2.Round(time.Millisecond))

	// The edges, with every player still attached, shut down cleanly too.
	for _, e := range edges {
		took, err := e.terminate(exitTimeout)
		if err != nil {
			t.Errorf("stop %s: %v", e.name, err)
		}
		figure(t, "%s exited %s after SIGTERM", e.name, took.Round(time.Millisecond))
	}
}

// TestManyPlayersAttachAtOnce: 200 players open the game at the same
// moment, half through each edge; every one gets the welcome, the
// connected status and the game's banner.
func TestManyPlayersAttachAtOnce(t *testing.T) {
	slow(t)
	const n = 200
	c, workers, _, addrs := twoByTwo(t)

	start := time.Now()
	players := make([]*player, n)
	for i := range players {
		players[i] = newPlayer(t, "crowd"+letters(i), addrs, i)
	}
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, step := range []struct {
				what string
				ok   func(frame) bool
			}{
				{"welcome", func(f frame) bool { return f.Type == "welcome" }},
				{"status connected", isStatus("connected")},
			} {
				if errs[i] = p.waitUntil(60*time.Second, step.what, func() bool {
					_, ok := p.findFrameLocked(0, step.ok)
					return ok
				}); errs[i] != nil {
					return
				}
			}
			errs[i] = p.waitUntil(60*time.Second, "banner", func() bool {
				return strings.Contains(p.textSinceLocked(0), "Welcome to Trellis Demo!")
			})
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	all := time.Since(start)
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("%s: %v", players[i].user, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d players were not served", failed, n)
	}
	for _, p := range players {
		if f, ok := p.findFrame(0, func(f frame) bool { return f.Type == "error" || isStatus("failed", "disconnected")(f) }); ok {
			t.Errorf("%s: %s %s %q", p.user, f.Type, f.Code+f.State, f.Message)
		}
		p.checkOrder()
	}
	if got := c.game.Accepted(); got != n {
		t.Errorf("the game accepted %d connections, want %d", got, n)
	}
	var spread []string
	for _, w := range workers {
		h, err := w.health()
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		spread = append(spread, fmt.Sprintf("%s=%d", w.name, h.Sessions))
	}
	slices.Sort(took)
	figure(t, "%d players attached at once: all served in %s (to banner: p50 %s, p95 %s, max %s); sessions per worker %s",
		n, all.Round(time.Millisecond), took[n/2].Round(time.Millisecond), took[n*95/100].Round(time.Millisecond),
		took[n-1].Round(time.Millisecond), strings.Join(spread, " "))
}

// letters spells i in base 26 with a-z (user ids and names are letters
// only in the demo game).
func letters(i int) string {
	s := ""
	for {
		s = string(rune('a'+i%26)) + s
		i /= 26
		if i == 0 {
			return s
		}
		i--
	}
}
