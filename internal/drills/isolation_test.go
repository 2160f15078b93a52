package drills

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/store"
)

// The isolation drill's settings. The worker gets the FLUSH_BYTES,
// GMCP_MAX_PACKAGES and OUTPUT_MAX_BYTES below explicitly (the last two
// are the defaults the isolation work gives them; before it lands the
// worker ignores them), so the targets are checked against what the
// worker was told.
const (
	isoNeighbours       = 100
	isoEchoPeriod       = time.Second // each neighbour types one line a second
	isoFlushBytes       = 16 << 10    // TRELLIS_WORKER_FLUSH_BYTES
	isoGMCPMaxPackages  = 64          // TRELLIS_WORKER_GMCP_MAX_PACKAGES
	isoOutputMaxBytes   = 1 << 20     // TRELLIS_REDIS_OUTPUT_MAX_BYTES
	isoStreamSlack      = 512 << 10   // listpack and JSON overhead, one entry over the trim point
	isoP99Ratio         = 3.0         // hostile p99 within this many times the quiet p99 (or isoP99Floor)
	isoHostileRate      = 2 << 20     // bytes/s each flooding hostile game sends
	isoZipBombSize      = 16 << 20    // inflated size of one zip bomb
	isoGMCPFloodPackets = 50_000
	isoDeafLine         = 4000   // bytes of each line typed at the game that never reads
	isoTTYPERate        = 20_000 // terminal-type requests a second from the game that never reads
)

// isoWorkerRSSLimit is the worker's peak RSS the drill allows once the
// fixes are in. Measured: about 35 MiB quiet (106 sessions and the
// runtime); with the hostile games 300-400 MiB before the fixes (a zip
// bomb inflated whole, several copies of it on the way to Redis), about
// 50 MiB with them (181 MiB race-built). The limit leaves room for the
// garbage collector's slack and a busy machine; the race detector
// multiplies memory several times.
func isoWorkerRSSLimit() int64 {
	if raceEnabled {
		return 512 << 20
	}
	return 128 << 20
}

// isoP99Floor is the hostile p99 that meets the target whatever the
// quiet p99 was (a quiet p99 of 5 ms on a shared box says little about
// the next 15 seconds); race-built processes are several times slower.
func isoP99Floor() time.Duration {
	if raceEnabled {
		return 200 * time.Millisecond
	}
	return 50 * time.Millisecond
}

// isoPlan is how long each phase runs: short in go test, minutes with
// TRELLIS_DRILL_LONG=1.
type isoPlan struct {
	quiet, hostile, after time.Duration
	zipRounds             int64 // rounds of zip bombs (two bombs each), over all connections
}

func isolationPlan() isoPlan {
	if longDrill() {
		return isoPlan{quiet: 60 * time.Second, hostile: 180 * time.Second, after: 30 * time.Second, zipRounds: 10}
	}
	return isoPlan{quiet: 10 * time.Second, hostile: 15 * time.Second, after: 5 * time.Second, zipRounds: 3}
}

// pickHostiles keeps the hostile games named in TRELLIS_DRILL_HOSTILE
// (comma-separated ids, e.g. "zipbomb,gmcpflood"), to tell which one hurts
// the neighbours; all of them when it is unset. The others are stopped.
func pickHostiles(t *testing.T, all []*hostileGame) []*hostileGame {
	t.Helper()
	only := os.Getenv("TRELLIS_DRILL_HOSTILE")
	if only == "" {
		return all
	}
	want := map[string]bool{}
	for _, id := range strings.Split(only, ",") {
		want[strings.TrimSpace(id)] = true
	}
	var kept []*hostileGame
	for _, g := range all {
		if want[g.id] {
			kept = append(kept, g)
			delete(want, g.id)
		} else {
			g.stop()
		}
	}
	if len(want) > 0 || len(kept) == 0 {
		t.Fatalf("TRELLIS_DRILL_HOSTILE=%q: unknown ids %v (known: zipbomb, endlesssb, nonewline, gmcpflood, neverreads, trickle)", only, want)
	}
	t.Logf("hostile games picked by TRELLIS_DRILL_HOSTILE: %s", only)
	return kept
}

// echoStats is what the neighbours measured in one phase.
type echoStats struct {
	lat      latencies
	timeouts int
	errors   int
	firstErr error
}

func (e echoStats) String() string {
	return fmt.Sprintf("p50 %s p99 %s max %s (%d round trips, %d timeouts, %d errors)",
		ms(e.lat.pct(50)), ms(e.lat.pct(99)), ms(e.lat.pct(100)), len(e.lat), e.timeouts, e.errors)
}

// echoTimed sends "echo <word>" and returns the time until the frame that
// completed the game's answer arrived.
func (p *player) echoTimed(word string, timeout time.Duration) (time.Duration, error) {
	m := p.mark()
	start := time.Now()
	if err := p.trySend("echo "+word, timeout); err != nil {
		return 0, err
	}
	want := word + "\n"
	var at time.Time
	err := p.waitUntil(timeout, fmt.Sprintf("echo %q", word), func() bool {
		var b strings.Builder
		for _, f := range p.frames[min(m, len(p.frames)):] {
			if f.Type != "output" {
				continue
			}
			b.WriteString(f.Text)
			if strings.Contains(b.String(), want) {
				at = f.at
				return true
			}
		}
		return false
	})
	if err != nil {
		return 0, err
	}
	return at.Sub(start), nil
}

// runEchoes has every player type one echo per isoEchoPeriod for window,
// the players' slots spread evenly over the period, and times each.
func runEchoes(players []*player, tag string, window time.Duration) echoStats {
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(window)
	per := make([]echoStats, len(players))
	var wg sync.WaitGroup
	for i, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot := isoEchoPeriod * time.Duration(i) / time.Duration(len(players))
			for k := 0; ; k++ {
				// A round trip slower than the period skips the slots it
				// overran, so the phase ends with its window (plus at
				// most one timeout), however slow the answers.
				if late := time.Since(start.Add(slot)); late > 0 {
					k = max(k, int((late+isoEchoPeriod-1)/isoEchoPeriod))
				}
				at := start.Add(time.Duration(k)*isoEchoPeriod + slot)
				if !at.Before(end) {
					return
				}
				time.Sleep(time.Until(at))
				lat, err := p.echoTimed(fmt.Sprintf("%s%dk%d", tag, i, k), replyTimeout)
				switch {
				case err == nil:
					per[i].lat = append(per[i].lat, lat)
				case strings.Contains(err.Error(), "no echo"):
					per[i].timeouts++
					per[i].lat = append(per[i].lat, replyTimeout) // a timeout counts as the worst
				default:
					per[i].errors++
					if per[i].firstErr == nil {
						per[i].firstErr = fmt.Errorf("%s: %w", p.user, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	var all echoStats
	for _, s := range per {
		all.lat = append(all.lat, s.lat...)
		all.timeouts += s.timeouts
		all.errors += s.errors
		if all.firstErr == nil {
			all.firstErr = s.firstErr
		}
	}
	return all
}

// joinAll connects the players at once and logs each in.
func joinAll(t *testing.T, players []*player) {
	t.Helper()
	errs := make([]error, len(players))
	var wg sync.WaitGroup
	for i, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = p.waitUntil(60*time.Second, "status connected", func() bool {
				_, ok := p.findFrameLocked(0, isStatus("connected"))
				return ok
			}); errs[i] != nil {
				return
			}
			errs[i] = p.tryLogin(0, 60*time.Second)
		}()
	}
	wg.Wait()
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
		t.Fatalf("%d of %d neighbours could not log in", failed, len(players))
	}
}

// productionRedis gives the drill's Redis the settings of the deploy/
// base: fsync once a second (the drills' default, fsync always, would
// make every neighbour pay for the hostile games' disk writes in a way no
// production Redis does) and a memory cap with noeviction, so a game
// that fills Redis makes writes fail as they would in production.
func (c *cluster) productionRedis() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, kv := range [][2]string{{"appendfsync", "everysec"}, {"maxmemory", "1gb"}, {"maxmemory-policy", "noeviction"}} {
		if err := c.rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			c.t.Fatalf("CONFIG SET %s %s: %v", kv[0], kv[1], err)
		}
	}
}

// TestDrillHostileNeighbours: one worker and one edge serve 100 ordinary
// players of the demo game, who echo a line a second each; after a quiet
// phase, six hostile games join on the same worker (a zip bomb, an
// endless subnegotiation, text without newlines, a GMCP flood of 50,000
// packages, a game that never reads, a trickle of 1-5 byte writes), each
// with a player attached. The drill measures what the neighbours feel
// (echo p50/p99, quiet against hostile), what the worker pays (peak RSS)
// and what Redis holds (the largest output entry, bytes per session, the
// GMCP state of the flood). The targets are logged, and asserted once
// enforceIsolation is on.
func TestDrillHostileNeighbours(t *testing.T) {
	slow(t)
	began := time.Now()
	plan := isolationPlan()
	c := newCluster(t)
	c.productionRedis()
	w := c.startWorkerEnv("w1",
		fmt.Sprintf("TRELLIS_WORKER_FLUSH_BYTES=%d", isoFlushBytes),
		fmt.Sprintf("TRELLIS_WORKER_GMCP_MAX_PACKAGES=%d", isoGMCPMaxPackages),
		fmt.Sprintf("TRELLIS_REDIS_OUTPUT_MAX_BYTES=%d", isoOutputMaxBytes),
	)
	e := c.startEdge("e1")
	addrs := []string{e.addr}

	// The hostile games listen from the start (idle until dialled).
	bombs := buildZipBombs(t, isoZipBombSize)
	var zipRounds, gmcpConns atomic.Int64
	zipRounds.Store(plan.zipRounds)
	gmcpConns.Store(2)
	floodLimit := int64(isoHostileRate) * int64((plan.hostile + 30*time.Second).Seconds())
	hostiles := []*hostileGame{
		startHostile(t, "zipbomb", "Zip Bomb", "hzip", 0, zipBombHandler(bombs, &zipRounds, time.Second)),
		startHostile(t, "endlesssb", "Endless SB", "hsb", 0, endlessSBHandler(isoHostileRate, floodLimit)),
		startHostile(t, "nonewline", "No Newline", "hnonl", 0, noNewlineHandler(isoHostileRate, floodLimit)),
		startHostile(t, "gmcpflood", "GMCP Flood", "hgmcp", 0, gmcpFloodHandler(isoGMCPFloodPackets, &gmcpConns)),
		startHostile(t, "neverreads", "Never Reads", "hdeaf", 4096, neverReadsHandler(isoTTYPERate, isoTTYPERate*int((plan.hostile+30*time.Second).Seconds()))),
		startHostile(t, "trickle", "Trickle", "htrickle", 0, trickleHandler(int((plan.hostile+30*time.Second)/(2*time.Millisecond)))),
	}
	hostiles = pickHostiles(t, hostiles)
	for _, g := range hostiles {
		c.addGame(g.id, g.name, g.addr())
	}

	neighbours := make([]*player, isoNeighbours)
	for i := range neighbours {
		neighbours[i] = newPlayer(t, "n"+letters(i), addrs, 0)
	}
	joinAll(t, neighbours)
	setup := time.Since(began)

	mon := startMemMonitor(t, w, e, c.rdb, "quiet")
	quiet := runEchoes(neighbours, "q", plan.quiet)
	if quiet.errors > 0 || quiet.timeouts > 0 {
		t.Fatalf("quiet phase, no hostile game yet: %s; first error: %v", quiet, quiet.firstErr)
	}

	// The hostile games' players attach; the games start when the worker
	// dials them.
	mon.setPhase("hostile")
	hostileStart := time.Now()
	sinks := make([]*sink, len(hostiles))
	for i, g := range hostiles {
		line, period := "", time.Duration(0)
		if g.id == "neverreads" {
			// 18 lines a second, under the edge's input rate (20/s).
			line, period = strings.Repeat("q", isoDeafLine), 55*time.Millisecond
		}
		sinks[i] = startSink(t, g.user, g.id, addrs, line, period)
	}
	for _, s := range sinks { // bounded: a session that never says connected is a figure too
		deadline := time.Now().Add(5 * time.Second)
		for !s.sawState("connected", "failed", "disconnected") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	attached := time.Since(hostileStart)
	hostile := runEchoes(neighbours, "h", plan.hostile)

	// Redis as the hostile games left it, while they still run.
	inspectStart := time.Now()
	irdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr, Protocol: 2, ReadTimeout: 60 * time.Second})
	defer irdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inspect := func(key store.SessionKey) sessionRedis {
		r, err := inspectSession(ctx, irdb, key)
		if err != nil {
			t.Errorf("inspect %s: %v", key, err)
		}
		return r
	}
	queued := map[string]int64{}
	for _, g := range hostiles {
		queued[g.id] = g.kernelQueued()
	}
	hostileRedis := make([]sessionRedis, len(hostiles))
	for i, g := range hostiles {
		hostileRedis[i] = inspect(store.SessionKey{User: g.user, Game: g.id})
	}
	neighbourRedis := make([]sessionRedis, len(neighbours))
	for i, p := range neighbours {
		neighbourRedis[i] = inspect(store.SessionKey{User: p.user, Game: gameID})
	}
	inspectTook := time.Since(inspectStart)
	workerMetrics := metricLines(w, "trellis_worker_session_starts_total", "trellis_worker_session_restarts_total",
		"trellis_worker_sessions_ended_total", "trellis_worker_output_bytes_total", "trellis_worker_output_lost_bytes_total",
		"trellis_worker_redis_errors_total", "trellis_worker_input_dropped_total", "trellis_worker_self_fences_total", "trellis_worker_leases_lost_total")
	edgeMetrics := metricLines(e, "trellis_edge_closes_total", "trellis_edge_resyncs_total", "trellis_edge_redis_errors_total", "trellis_edge_error_frames_total")

	// The hostile games go away; the neighbours play on.
	for _, s := range sinks {
		s.close()
	}
	for _, g := range hostiles {
		g.stop()
	}
	mon.setPhase("after")
	after := runEchoes(neighbours, "a", plan.after)
	mon.close()

	// The report.
	qp, hp := mon.peak("quiet"), mon.peak("hostile")
	ap := mon.peak("after")
	hwm := mon.workerHWM()
	t.Logf("setup %s (processes, %d neighbours logged in); hostile players attached in %s; Redis inspected in %s",
		setup.Round(time.Millisecond), len(neighbours), attached.Round(time.Millisecond), inspectTook.Round(time.Millisecond))
	t.Logf("neighbour echo, quiet   (%s): %s", plan.quiet, quiet)
	t.Logf("neighbour echo, hostile (%s): %s", plan.hostile, hostile)
	t.Logf("neighbour echo, after   (%s): %s", plan.after, after)
	if hostile.firstErr != nil {
		t.Logf("first neighbour error while hostile: %v", hostile.firstErr)
	}
	t.Logf("worker RSS peak: quiet %s, hostile %s, after %s; VmHWM %s (race=%v)", mib(qp.workerRSS), mib(hp.workerRSS), mib(ap.workerRSS), mib(hwm), raceEnabled)
	t.Logf("edge RSS peak: quiet %s, hostile %s, after %s", mib(qp.edgeRSS), mib(hp.edgeRSS), mib(ap.edgeRSS))
	t.Logf("Redis used_memory peak: quiet %s, hostile %s, after %s", mib(qp.redisUsed), mib(hp.redisUsed), mib(ap.redisUsed))
	for _, b := range bombs {
		t.Logf("zip bomb %q: %s compressed -> %s", b.name, mib(int64(len(b.compressed))), mib(int64(b.inflated)))
	}
	for i, g := range hostiles {
		r := hostileRedis[i]
		note, _ := g.note.Load().(string)
		t.Logf("%-10s game: %d connections, wrote %s, events %d, unread in the kernel from the worker %s %s",
			g.id, g.accepted.Load(), mib(g.written.Load()), g.events.Load(), mib(queued[g.id]), note)
		t.Logf("%-10s redis: out %s (%d entries, %s of values; largest value %s, largest text %s at %s), gmcp %s (%d fields), other %s",
			g.id, mib(r.outBytes), r.entries, mib(r.payload), mib(r.maxEntry), mib(r.maxText), r.maxTextID, mib(r.gmcpBytes), r.gmcpFields, mib(r.otherBytes))
		t.Logf("%-10s player: %s", g.id, sinks[i].summary())
	}
	var nTotals []int64
	var nMax sessionRedis
	for _, r := range neighbourRedis {
		nTotals = append(nTotals, r.total())
		if r.maxText > nMax.maxText {
			nMax = r
		}
	}
	slices.Sort(nTotals)
	t.Logf("neighbours' redis: per session median %s, max %s; largest neighbour text entry %s (%s)",
		mib(nTotals[len(nTotals)/2]), mib(nTotals[len(nTotals)-1]), mib(nMax.maxText), nMax.key)
	t.Logf("worker metrics:\n%s", workerMetrics)
	t.Logf("edge metrics:\n%s", edgeMetrics)

	// The largest entry and the biggest session, over every session.
	all := append(slices.Clone(hostileRedis), neighbourRedis...)
	var largest, biggest sessionRedis
	var gmcpFields int64
	for _, r := range all {
		if r.maxText > largest.maxText {
			largest = r
		}
		if r.outBytes > biggest.outBytes {
			biggest = r
		}
		if r.key.Game == "gmcpflood" {
			gmcpFields = r.gmcpFields
		}
	}
	ratio := float64(hostile.lat.pct(99)) / float64(max(1, quiet.lat.pct(99)))
	figure(t, "neighbours' echo p50/p99 quiet %s/%s, hostile %s/%s (x%.1f, %d timeouts), after %s/%s; worker peak RSS quiet %s hostile %s (VmHWM %s); largest entry %s of text (%s); biggest output stream %s (%s); redis per neighbour session %s; gmcp fields %d; redis used %s",
		ms(quiet.lat.pct(50)), ms(quiet.lat.pct(99)), ms(hostile.lat.pct(50)), ms(hostile.lat.pct(99)), ratio, hostile.timeouts,
		ms(after.lat.pct(50)), ms(after.lat.pct(99)), mib(qp.workerRSS), mib(hp.workerRSS), mib(hwm),
		mib(largest.maxText), largest.key, mib(biggest.outBytes), biggest.key, mib(nTotals[len(nTotals)/2]), gmcpFields, mib(hp.redisUsed))

	// The targets of the isolation work.
	p99Bound := max(time.Duration(isoP99Ratio*float64(quiet.lat.pct(99))), isoP99Floor())
	latencyTarget(t, hostile.lat.pct(99) <= p99Bound && hostile.timeouts == 0 && hostile.errors == 0,
		"neighbours' p99 with hostile games %s <= %s (%.0fx quiet p99 %s, at least %s), no timeouts (%d) or errors (%d)",
		ms(hostile.lat.pct(99)), ms(p99Bound), isoP99Ratio, ms(quiet.lat.pct(99)), ms(isoP99Floor()), hostile.timeouts, hostile.errors)
	target(t, largest.maxText <= isoFlushBytes, "largest output entry %d bytes of text (%s at %s) <= FLUSH_BYTES %d",
		largest.maxText, largest.key, largest.maxTextID, isoFlushBytes)
	target(t, gmcpFields <= isoGMCPMaxPackages, "GMCP state of the flood %d packages <= GMCP_MAX_PACKAGES %d", gmcpFields, isoGMCPMaxPackages)
	target(t, biggest.outBytes <= isoOutputMaxBytes+isoStreamSlack, "largest output stream %d bytes (%s) <= OUTPUT_MAX_BYTES %d + %d slack",
		biggest.outBytes, biggest.key, isoOutputMaxBytes, isoStreamSlack)
	target(t, hwm <= isoWorkerRSSLimit(), "worker peak RSS %s <= %s", mib(hwm), mib(isoWorkerRSSLimit()))
	t.Logf("drill ran %s", time.Since(began).Round(time.Millisecond))
}
