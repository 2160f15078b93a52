package drills

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// The Redis Cluster drills: the drill world runs on a Redis Cluster of its
// own (newRedisCluster), and the drill breaks the cluster under a playing
// session — it kills the primary serving the session's slot (its replica
// is promoted), or moves the slot to another primary. The browser must see
// no line twice, and every line it never sees must be reported by a gap
// frame: replication is asynchronous, so entries the dead primary
// acknowledged but had not sent to its replica are gone, and the player
// must be told.

const (
	// clusterFloodLines at the worker's default output rate (1 MiB/s per
	// session, 80-byte lines) is about 3 s of flood, more with -race: it
	// runs before, across and after a failover of about 2.5 s.
	clusterFloodLines = 40_000
	clusterFloodBound = 15 * time.Second // from the kill to the flood's end
	clusterKillAt     = 3_000            // flood lines seen before the kill
	// deadPrimaryGrace is how long after the cluster is healthy again the
	// processes may still try the dead primary: a client learns of the
	// new one from an error and a reload of the slot map.
	deadPrimaryGrace = 5 * time.Second
)

// numberedReport is what a browser saw of numbered lines (1..sent) that
// the game sent after a mark, and where gap frames fell among them.
type numberedReport struct {
	sent      int // the game sent lines 1..sent
	distinct  int
	dup       int // lines seen more than once
	replayed  int // of them, seen again after a reset gap frame: the edge said it replays the kept output
	disorder  int // lines that came after a higher one
	lastSeen  int
	missing   int      // lines in 1..sent never seen
	silent    int      // of them, lines in stretches with no gap frame before the next line seen
	stretches int      // runs of missing lines
	uncovered []string // the silent stretches, "from-to"
	gapFrames int
	resets    int   // gap frames that reset the position (the stream lost entries the edge had sent)
	gapBytes  int64 // bytes the gap frames said were lost
}

func (r numberedReport) String() string {
	return fmt.Sprintf("sent %d, seen %d distinct (last %d), %d twice (%d of them replayed after a reset gap), %d out of order; missing %d in %d stretches, %d lines in %d stretches without a gap frame %v; %d gap frames (%d position resets) reporting %s",
		r.sent, r.distinct, r.lastSeen, r.dup, r.replayed, r.disorder, r.missing, r.stretches, r.silent, len(r.uncovered),
		r.uncovered[:min(5, len(r.uncovered))], r.gapFrames, r.resets, mib(r.gapBytes))
}

const (
	gapMark   = "\x00GAP\x00"
	resetMark = "\x00RESET\x00" // always followed by gapMark
)

// analyseNumbered reads the frames a browser got: line matches re (its
// first group is the line's number), gap frames mark where the edge said
// output was lost.
func analyseNumbered(frames []frame, re *regexp.Regexp, sent int) numberedReport {
	r := numberedReport{sent: sent}
	var b bytes.Buffer
	for _, f := range frames {
		switch f.Type {
		case "output":
			b.WriteString(sgr.ReplaceAllString(f.Text, ""))
		case "gap":
			r.gapFrames++
			if f.Reset {
				r.resets++
				b.WriteString(resetMark)
			}
			if m := gapBytesRe.FindStringSubmatch(f.Message); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				r.gapBytes += n
			}
			b.WriteString(gapMark)
		}
	}
	withGap := regexp.MustCompile(re.String() + "|" + regexp.QuoteMeta(gapMark) + "|" + regexp.QuoteMeta(resetMark))
	counts := map[int]int{}
	last, gapSince, replay := 0, false, false
	stretch := func(from, to int) {
		r.stretches++
		if !gapSince {
			r.silent += to - from + 1
			r.uncovered = append(r.uncovered, fmt.Sprintf("%d-%d", from, to))
		}
	}
	for _, m := range withGap.FindAllSubmatch(b.Bytes(), -1) {
		if m[1] == nil {
			gapSince = true
			if string(m[0]) == resetMark {
				// What follows is the kept output from its start: lines
				// seen before may come again, announced. Numbering goes
				// on from the highest line seen.
				replay = true
			}
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		counts[n]++
		switch {
		case counts[n] > 1:
			r.dup++
			if replay {
				r.replayed++
			}
			continue
		case n < last:
			if !replay {
				r.disorder++
			}
			continue
		case n > last+1:
			stretch(last+1, n-1)
		}
		last, gapSince, replay = n, false, false
	}
	if sent > last {
		stretch(last+1, sent)
	}
	r.distinct, r.lastSeen = len(counts), last
	for n := 1; n <= sent; n++ {
		if counts[n] == 0 {
			r.missing++
		}
	}
	return r
}

// outputStall is the longest time the browser went without an output
// frame between from and to (counting from the last frame before from,
// and up to to if no frame came after the last one).
func outputStall(frames []frame, from, to time.Time) time.Duration {
	prev := from
	var stall time.Duration
	for _, f := range frames {
		if f.Type != "output" {
			continue
		}
		if !f.at.After(from) {
			prev = f.at
			continue
		}
		stall = max(stall, f.at.Sub(prev))
		prev = f.at
	}
	return max(stall, to.Sub(prev))
}

// firstWrittenAfter is the first output frame whose entry was written
// after t, by its stream id (milliseconds of the Redis server's clock, the
// same machine's as ours): when output written after a failover reached
// the browser, however far behind the browser was reading.
func firstWrittenAfter(frames []frame, t time.Time) (frame, time.Time, bool) {
	for _, f := range frames {
		if f.Type != "output" || f.ID == "" {
			continue
		}
		msPart, _, _ := strings.Cut(f.ID, "-")
		ms, err := strconv.ParseInt(msPart, 10, 64)
		if err != nil {
			continue
		}
		if w := time.UnixMilli(ms); w.After(t) {
			return f, w, true
		}
	}
	return frame{}, time.Time{}, false
}

// streamReport is what the session's output stream holds after a drill,
// as the operator reads it from the new slot owner: the entries written
// by each fence and the holes in their sequence numbers — entries the
// worker wrote (and Redis acknowledged) that the stream no longer has.
type streamReport struct {
	entries, gaps int
	holes         int // runs of missing sequence numbers
	holeEntries   int // sequence numbers missing
	covered       int // holes right after which a gap entry follows
	first         []string
}

func (s streamReport) String() string {
	return fmt.Sprintf("%d entries (%d gap entries); %d sequence holes (%d entries, %d followed by a gap entry) %v",
		s.entries, s.gaps, s.holes, s.holeEntries, s.covered, s.first)
}

func readStream(t *testing.T, c *cluster, key store.SessionKey) streamReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := c.st.OutputRange(ctx, key, "-", "+", 200_000)
	if err != nil {
		t.Errorf("read the output stream: %v", err)
		return streamReport{}
	}
	var r streamReport
	last := map[int64]uint64{}
	for i, o := range entries {
		r.entries++
		if o.Kind == store.OutGap {
			r.gaps++
		}
		if o.Fence == 0 || o.Seq == 0 {
			continue
		}
		prev, ok := last[o.Fence]
		last[o.Fence] = o.Seq
		if !ok || o.Seq <= prev+1 {
			continue
		}
		r.holes++
		r.holeEntries += int(o.Seq - prev - 1)
		if o.Kind == store.OutGap || (i+1 < len(entries) && entries[i+1].Kind == store.OutGap) {
			r.covered++
		}
		if len(r.first) < 5 {
			r.first = append(r.first, fmt.Sprintf("fence %d seq %d->%d at %s (%s)", o.Fence, prev, o.Seq, o.ID, o.Kind))
		}
	}
	return r
}

// clusterTarget asserts an outcome the issue promises on a Redis Cluster:
// what the player sees (no silent hole, no line twice, the session plays
// on and keeps its game connection). These were FINDINGs, logged and not
// asserted, until the store's slot-map reload and its TRYAGAIN handling
// landed; every run since meets them.
func clusterTarget(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if ok {
		t.Logf("target met: %s", msg)
	} else {
		t.Errorf("target missed: %s", msg)
	}
	return ok
}

// clusterFinding is a target measured in wall-clock time on a shared
// machine (unit tests never assert wall-clock time), or one missed
// intermittently for a reason not yet found: asserted with
// TRELLIS_DRILL_ENFORCE=1, logged as a FINDING otherwise, so every run
// reports it.
func clusterFinding(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	switch {
	case ok:
		t.Logf("target met: %s", msg)
	case os.Getenv("TRELLIS_DRILL_ENFORCE") == "1":
		t.Errorf("target missed: %s", msg)
	default:
		t.Logf("FINDING (asserted with TRELLIS_DRILL_ENFORCE=1): %s", msg)
	}
	return ok
}

// dumpIfMissed prints the processes' logs when a target was missed but
// the drill passed (a failed drill prints them anyway): the evidence.
func dumpIfMissed(t *testing.T, c *cluster, met ...bool) {
	t.Helper()
	if !t.Failed() && slices.Contains(met, false) {
		c.dumpLogs()
	}
}

// deadDials counts the lines of every process's log, stamped after from,
// that name addr (a killed node) with a refused or reset connection: how
// long the processes kept sending commands to a primary that was gone.
func deadDials(c *cluster, addr string, from time.Time) (n int, last time.Time) {
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		for _, line := range strings.Split(p.log.String(), "\n") {
			if !strings.Contains(line, addr) || !strings.Contains(line, "connection refused") {
				continue
			}
			ts, ok := strings.CutPrefix(strings.TrimSpace(line), "time=")
			if !ok {
				continue // go-redis's own log lines carry seconds only
			}
			ts, _, _ = strings.Cut(ts, " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || !at.After(from) {
				continue
			}
			n++
			if at.After(last) {
				last = at
			}
		}
	}
	return n, last
}

// gapFrames lists the first gap frames after mark, with when they came
// relative to at.
func gapFrames(frames []frame, at time.Time) string {
	var out []string
	for _, f := range frames {
		if f.Type == "gap" && len(out) < 5 {
			out = append(out, fmt.Sprintf("%+.1fs %q", f.at.Sub(at).Seconds(), f.Message))
		}
	}
	return strings.Join(out, "; ")
}

// clusterWorld is the Redis Cluster drills' shape: two workers and two
// edges on a cluster of the drill's own, and a logged-in player.
func clusterWorld(t *testing.T, user string) (c *cluster, workers, edges []*proc, p *player, key store.SessionKey) {
	t.Helper()
	c = newRedisCluster(t)
	workers = []*proc{c.startWorker("w1"), c.startWorker("w2")}
	edges = []*proc{c.startEdge("e1"), c.startEdge("e2")}
	p = join(t, user, []string{edges[0].addr, edges[1].addr}, 0)
	// Let the edges' watchdogs see the lease before anything breaks (see
	// fenceSetup).
	time.Sleep(3 * leaseCheck)
	key = store.SessionKey{User: user, Game: gameID}
	// The session's keys share the hash tag {ug:<user>:<game>}; plain
	// ASCII ids need no escaping (store/keys.go).
	out := "trellis:{ug:" + user + ":" + gameID + "}:out"
	if got := c.st.OutputChannel(key); got != out {
		t.Fatalf("output key %q, want %q: the drill would break the wrong slot", got, out)
	}
	return c, workers, edges, p, key
}

func logClusterMetrics(t *testing.T, workers, edges []*proc) {
	t.Helper()
	for _, w := range workers {
		t.Logf("%s metrics:\n%s", w.name, metricLines(w, "trellis_worker_output_lost_bytes_total", "trellis_worker_redis_errors_total",
			"trellis_worker_leases_lost_total", "trellis_worker_self_fences_total", "trellis_worker_session_failovers_total"))
	}
	for _, e := range edges {
		t.Logf("%s metrics:\n%s", e.name, metricLines(e, "trellis_edge_resyncs_total", "trellis_edge_redis_errors_total",
			"trellis_edge_failover_attaches_total", "trellis_edge_input_lost"))
	}
}

// TestDrillClusterFailover: a session floods; the primary serving its
// slot is SIGKILLed mid-flood and its replica promoted. The session should
// keep its game connection and lease (the lease TTL outlasts the
// failover), the flood reach its end and input work again; at the browser
// no flood line may arrive twice, and every missing one must be covered by
// a gap frame.
func TestDrillClusterFailover(t *testing.T) {
	slow(t)
	clusterFailover(t, "hana", 0)
}

// TestDrillClusterFailoverUnreplicated is TestDrillClusterFailover with
// writes the dead primary acknowledged and never replicated, for certain:
// its replica is paused (SIGSTOP) for a second before the primary is
// killed, and resumed after, so the promoted replica lacks that second of
// the session's stream. Replication is asynchronous; this is the case the
// player must be told about by a gap.
func TestDrillClusterFailoverUnreplicated(t *testing.T) {
	slow(t)
	clusterFailover(t, "ines", time.Second)
}

func clusterFailover(t *testing.T, user string, unreplicated time.Duration) {
	began := time.Now()
	c, workers, edges, p, key := clusterWorld(t, user)
	outKey := c.st.OutputChannel(key)
	primary, err := c.rc.PrimaryFor(outKey)
	if err != nil {
		t.Fatal(err)
	}
	var replica *redistest.Node
	if unreplicated > 0 {
		rs, err := c.rc.ReplicasOf(primary)
		if err != nil || len(rs) == 0 {
			t.Fatalf("replicas of %s: %v %v", primary, rs, err)
		}
		replica = rs[0]
	}
	before, _ := c.lease(user)

	m := p.mark()
	p.send(fmt.Sprintf("flood %d", clusterFloodLines))
	p.waitText(m, fmt.Sprintf("flood %06d ", clusterKillAt), replyTimeout)
	var lagOffset string
	if replica != nil {
		lagOffset = pauseReplica(t, primary, replica, unreplicated)
	}
	seenAtKill := len(floodLine.FindAllString(p.textSince(m), -1))
	killed := time.Now()
	var promoted *redistest.Node
	if replica == nil {
		promoted, err = c.rc.KillPrimary(primary)
	} else {
		// The replica is paused: KillPrimary would refuse (no replica it
		// can see running) or wait on it. Kill, resume, wait.
		err = c.rc.Kill(primary)
		if err == nil {
			err = signalNode(t, replica, syscall.SIGCONT)
		}
		if err == nil {
			err = c.rc.WaitHealthy()
		}
		if err == nil {
			promoted, err = c.rc.PrimaryFor(outKey)
		}
	}
	if err != nil {
		t.Fatalf("kill primary %s of slot %d: %v", primary, redistest.Slot(outKey), err)
	}
	failover := time.Since(killed)
	healthy := time.Now()
	if replica != nil {
		t.Logf("replica %s paused %s before the kill; replication then (the replica's offset is its last acknowledgement, a second or more old): %s", replica, unreplicated, lagOffset)
	}
	c.newOperatorClient()

	// Bounded: a session that does not recover is the finding, reported
	// below, not a hung drill.
	lastLine := fmt.Sprintf("flood %06d ", clusterFloodLines)
	floodErr := p.waitUntil(clusterFloodBound-time.Since(killed), "the flood's last line", func() bool {
		txt := p.textSinceLocked(m)
		i := strings.LastIndex(txt, lastLine)
		return i >= 0 && strings.Contains(txt[i:], "\n")
	})
	floodDone := time.Now()
	flooded := floodDone.Sub(killed)
	// The player types until the game answers, retyping a line the edge
	// refused (told "not sent"); a line lost without a word would still
	// fail this.
	echoErr := p.answer("echo after-failover", "after-failover\n", 15*time.Second)

	frames := p.framesSince(m)
	r := analyseNumbered(frames, floodLine, clusterFloodLines)
	// The replica cannot be promoted before the node timeout has passed
	// (1 s): an entry written later was written on the new primary. The
	// browser reads behind the flood, so output that had been written
	// before the kill keeps arriving for a while after it.
	recovery, writeResumed := "none", "none"
	if f, w, ok := firstWrittenAfter(frames, killed.Add(time.Second)); ok {
		recovery = f.at.Sub(killed).Round(time.Millisecond).String()
		writeResumed = w.Sub(killed).Round(time.Millisecond).String()
	}
	stall := outputStall(frames, killed, floodDone)
	after, ok := c.lease(user)
	accepted := c.game.Accepted()
	sr := readStream(t, c, key)
	dials, lastDial := deadDials(c, primary.Addr, healthy)
	deadFor := "0s"
	if dials > 0 {
		deadFor = lastDial.Sub(healthy).Round(time.Millisecond).String()
	}
	logClusterMetrics(t, workers, edges)
	t.Logf("killed primary %s (slot %d) after %d flood lines at the browser; replica %s promoted, cluster healthy after %s", primary, redistest.Slot(outKey), seenAtKill, promoted, failover.Round(time.Millisecond))
	t.Logf("after the cluster was healthy the processes logged %d refused connections to the dead primary, the last %s later", dials, deadFor)
	fences := selfFenced(workers)
	t.Logf("lease before %+v, after %+v (held=%v); game connections %d; WebSocket connections %d", before, after, ok, accepted, p.connections())
	t.Logf("browser: %s", r)
	t.Logf("gap frames: %s", gapFrames(frames, killed))
	t.Logf("stream on the new primary: %s", sr)
	name := "cluster-failover"
	if unreplicated > 0 {
		name = "cluster-failover-unreplicated"
	}
	t.Logf("DRILL %s lost=%d gap=%d dup=%d recovery=%s silent=%d replayed=%d disorder=%d resets=%d written_again=%s stall=%s failover=%s flood_end=%s dead_primary_dials=%d/%s stream_holes=%d/%d game_conns=%d fence=%d->%d self_fences=%d ran=%s",
		name, r.missing, r.gapFrames, r.dup, recovery, r.silent, r.replayed, r.disorder, r.resets, writeResumed,
		stall.Round(time.Millisecond), failover.Round(time.Millisecond), flooded.Round(time.Millisecond), dials, deadFor,
		sr.holes, sr.holeEntries, accepted, before.Fence, after.Fence, fences, time.Since(began).Round(time.Millisecond))

	p.checkOrder()
	if r.distinct == 0 {
		t.Errorf("the browser saw no flood line")
	}
	if r.dup-r.replayed > 0 || r.disorder > 0 {
		t.Errorf("flood lines twice without a reset gap before them: %d, out of order: %d", r.dup-r.replayed, r.disorder)
	}
	dumpIfMissed(t, c,
		clusterTarget(t, r.replayed == 0, "no flood line twice, even announced: %d lines came again after a reset gap frame (the edge lost the resume point and replayed the kept output)", r.replayed),
		// Missed once in about eight runs before the edge reported holes
		// in the output numbers where they are: 617 lines the worker could
		// not store were reported by a gap frame, but only after lines
		// that followed them (the gap entry lands when the write is
		// retried).
		clusterTarget(t, r.silent == 0, "flood lines missing without a gap frame before the next line seen: %d, in stretches %v", r.silent, r.uncovered[:min(5, len(r.uncovered))]),
		clusterTarget(t, floodErr == nil && echoErr == nil, "the session plays on after the failover (flood end: %v; echo: %v)", errLine(floodErr), errLine(echoErr)),
		clusterTarget(t, accepted == 1, "the session kept its game connection (game connections %d)", accepted),
		// Missed with the replica paused, for two reasons, both fixed.
		// Before renewals restored a lease Redis forgot: the renewals the
		// dead primary acknowledged never reached the replica, whose copy
		// expired. And in two loaded CI runs after that: the session's
		// first renewal round found no renew script on the nodes, and
		// go-redis loads a script on every node, the paused replica
		// included; the round waited out its budget on it, the failover's
		// renewals failed, and the worker self-fenced at the TTL (store's
		// TestScriptFirstUseIgnoresAHungReplica).
		clusterTarget(t, ok && after.Fence == before.Fence && fences == 0, "the session kept its lease (fence %d -> %d, worker self-fences %d)", before.Fence, after.Fence, fences),
		clusterFinding(t, dials == 0 || lastDial.Sub(healthy) < deadPrimaryGrace, "the processes stop sending commands to the dead primary within %s of the cluster being healthy (%d refused connections logged after it, the last %s later)", deadPrimaryGrace, dials, deadFor))
}

// selfFenced sums the workers' self-fence counters.
func selfFenced(workers []*proc) int {
	n := 0
	for _, w := range workers {
		for _, line := range strings.Split(metricLines(w, "trellis_worker_self_fences_total"), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				n += int(v)
			}
		}
	}
	return n
}

// pauseReplica SIGSTOPs replica for d while primary keeps taking the
// session's writes, and returns the replication offsets seen then: the
// bytes primary acknowledged that replica will never get.
func pauseReplica(t *testing.T, primary, replica *redistest.Node, d time.Duration) string {
	t.Helper()
	if err := signalNode(t, replica, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Resumed by the drill after the kill; here only if it fails first.
	t.Cleanup(func() { _ = signalNode(t, replica, syscall.SIGCONT) })
	time.Sleep(d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := primary.Client(t).Info(ctx, "replication").Result()
	if err != nil {
		return "INFO replication: " + err.Error()
	}
	var master, slave string
	for _, line := range strings.Split(info, "\r\n") {
		switch {
		case strings.HasPrefix(line, "master_repl_offset:"):
			master = strings.TrimPrefix(line, "master_repl_offset:")
		case strings.HasPrefix(line, "slave0:"):
			slave = strings.TrimPrefix(line, "slave0:")
		}
	}
	return fmt.Sprintf("primary at %s, replica %s", master, slave)
}

// signalNode sends sig to a node's redis-server, found by the process id
// it reports (INFO server) — a process this test started. SIGCONT goes
// by the pid remembered from the SIGSTOP, since a stopped server cannot
// answer.
func signalNode(t *testing.T, n *redistest.Node, sig syscall.Signal) error {
	t.Helper()
	nodePIDsMu.Lock()
	pid, ok := nodePIDs[n.ID]
	nodePIDsMu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := n.Client(t).Info(ctx, "server").Result()
		if err != nil {
			return fmt.Errorf("INFO server of %s: %w", n, err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, found := strings.CutPrefix(line, "process_id:"); found {
				pid, _ = strconv.Atoi(v)
			}
		}
		if pid <= 0 {
			return fmt.Errorf("no process_id in INFO server of %s", n)
		}
		nodePIDsMu.Lock()
		nodePIDs[n.ID] = pid
		nodePIDsMu.Unlock()
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s to %s (pid %d): %w", sig, n, pid, err)
	}
	return nil
}

var (
	nodePIDsMu sync.Mutex
	nodePIDs   = map[string]int{} // by cluster node id: unique, unlike a port reused by a later drill's cluster
)

// tryEcho is echo that returns instead of failing the test.
func (p *player) tryEcho(word string, timeout time.Duration) error {
	m := p.mark()
	if err := p.trySend("echo "+word, timeout); err != nil {
		return err
	}
	return p.waitUntil(timeout, "echo "+word, func() bool { return strings.Contains(p.textSinceLocked(m), word+"\n") })
}

// errLine is the first line of err, or "ok".
func errLine(err error) string {
	if err == nil {
		return "ok"
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return first
}

// TestDrillClusterReshard: while a player types (echo) and a bystander's
// lines arrive as game output, the session's slot is migrated to another
// primary (MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE, as redis-cli
// --cluster reshard does), then the slot of the owning worker's input
// channel, then the session's slot back. Every echo comes back, every
// bystander line arrives once, and anything missing is covered by a gap.
func TestDrillClusterReshard(t *testing.T) {
	slow(t)
	began := time.Now()
	c, workers, edges, p, key := clusterWorld(t, "iris")
	zed := newBystander(t, c.gameAddr, "Zed")
	outKey := c.st.OutputChannel(key)
	owner := c.owner("iris")
	inChan := "trellis:{w:" + owner.instance + "}:input"

	// Output: Zed says a numbered line every 20 ms. Input: the player
	// types numbered echoes, each waiting for its answer (bounded), so a
	// lost line shows as a missing echo, not as a stuck test.
	m := p.mark()
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	var ticks, echoes, echoFails atomic.Int64
	var maxEcho atomic.Int64 // nanoseconds
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 5000 { // bounded: 100 s at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := zed.send(fmt.Sprintf("say tick %d", ticks.Load()+1)); err != nil {
				t.Error(err)
				return
			}
			ticks.Add(1)
		}
	})
	wg.Go(func() {
		// A line that could not be sent (no connection) is typed again
		// under the same number; one sent must come back.
		for i, tries := 1, 0; i <= 5000 && tries < 10000; tries++ {
			select {
			case <-stop:
				return
			default:
			}
			word := fmt.Sprintf("r-%05d", i)
			mi := p.mark()
			sent := time.Now()
			if err := p.trySend("echo "+word, 2*time.Second); err != nil {
				continue
			}
			echoes.Store(int64(i))
			i++
			if err := p.waitUntil(5*time.Second, word, func() bool {
				return strings.Contains(p.textSinceLocked(mi), word+"\n")
			}); err != nil {
				echoFails.Add(1)
				continue
			}
			if d := int64(time.Since(sent)); d > maxEcho.Load() {
				maxEcho.Store(d)
			}
			time.Sleep(30 * time.Millisecond)
		}
	})
	t.Cleanup(func() { stopAll(); wg.Wait() })
	p.waitText(m, "Zed says: tick 10\n", replyTimeout)

	// Some output on top: a short flood during the first move.
	p.send("flood 2000")

	primaries, err := c.rc.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	// Three moves as MoveSlot makes them (all of a slot's keys in one
	// MIGRATE: near-atomic for a session's dozen keys), and one key by key
	// with pauses, as a reshard of a well-filled slot looks to a session:
	// for a while some of its keys are on one node and some on the other,
	// and a script that touches both gets TRYAGAIN.
	sessionSlot, inputSlot := redistest.Slot(outKey), redistest.Slot(inChan)
	home, err := c.rc.PrimaryForSlot(sessionSlot)
	if err != nil {
		t.Fatal(err)
	}
	other := func(not ...*redistest.Node) *redistest.Node {
		for _, n := range primaries {
			if !slices.Contains(not, n) {
				return n
			}
		}
		t.Fatalf("no primary besides %v", not)
		return nil
	}
	moves := []struct {
		what string
		slot int
		to   func(from *redistest.Node) *redistest.Node
		slow bool
	}{
		{"session", sessionSlot, func(from *redistest.Node) *redistest.Node { return other(from) }, false},
		{"worker input", inputSlot, func(from *redistest.Node) *redistest.Node { return other(from) }, false},
		{"session key by key", sessionSlot, func(from *redistest.Node) *redistest.Node { return other(from, home) }, true},
		{"session back", sessionSlot, func(*redistest.Node) *redistest.Node { return home }, false},
	}
	var moveLog []string
	var moveTotal time.Duration
	var movesStart time.Time
	for i, mv := range moves {
		from, err := c.rc.PrimaryForSlot(mv.slot)
		if err != nil {
			t.Fatal(err)
		}
		to := mv.to(from)
		time.Sleep(500 * time.Millisecond) // play on the old owner first
		start := time.Now()
		if i == 0 {
			movesStart = start
		}
		if mv.slow {
			err = slowMoveSlot(t, c.rc, mv.slot, from, to, 300*time.Millisecond)
		} else {
			err = c.rc.MoveSlot(mv.slot, to)
		}
		if err != nil {
			t.Fatalf("move the %s slot %d from %s to %s: %v", mv.what, mv.slot, from, to, err)
		}
		took := time.Since(start)
		moveTotal += took
		moveLog = append(moveLog, fmt.Sprintf("%s slot %d %s->%s in %s", mv.what, mv.slot, from, to, took.Round(time.Millisecond)))
	}
	movesEnd := time.Now()
	time.Sleep(time.Second) // play on the new owner
	stopAll()
	wg.Wait()
	sentTicks := int(ticks.Load())
	tickErr := p.waitUntil(recoveryBound, "the last tick", func() bool {
		return strings.Contains(p.textSinceLocked(m), fmt.Sprintf("Zed says: tick %d\n", sentTicks))
	})
	echoErr := p.tryEcho("after-reshard", 5*time.Second)
	// A typed line whose echo is missing outside any output gap should be
	// reported lost by the edge once its ack timeout has passed.
	typed := int(echoes.Load())
	if n := analyseNumbered(p.framesSince(m), echoLine, typed).silent; n > 0 {
		_ = p.waitUntil(inputReportWait, "input_lost reports", func() bool {
			return inputLostLines(p.frames[min(m, len(p.frames)):]) >= n
		})
	}

	frames := p.framesSince(m)
	tr := analyseNumbered(frames, tickLine, sentTicks)
	er := analyseNumbered(frames, echoLine, typed)
	fr := analyseNumbered(frames, floodLine, 2000)
	stall := outputStall(frames, movesStart, movesEnd)
	accepted := c.game.Accepted()
	sr := readStream(t, c, key)
	logClusterMetrics(t, workers, edges)
	t.Logf("moves: %s", strings.Join(moveLog, "; "))
	t.Logf("ticks: %s", tr)
	t.Logf("echoes: %s; %d of %d typed lines got no echo within 5 s; slowest echo %s", er, echoFails.Load(), typed, time.Duration(maxEcho.Load()).Round(time.Millisecond))
	t.Logf("flood: %s", fr)
	t.Logf("stream: %s", sr)
	// Echoes missing without an output gap are lines whose input was lost
	// (or whose answer was): the edge's input_lost reports cover them.
	inputLost := inputLostLines(frames)
	for _, f := range frames {
		if f.Type == "error" {
			t.Logf("error frame: %s %q", f.Code, f.Message)
		}
	}
	echoSilent := max(0, er.silent-inputLost)
	lost, gaps, dup, silent := tr.missing+er.missing+fr.missing, tr.gapFrames, tr.dup+er.dup+fr.dup, tr.silent+echoSilent+fr.silent
	disorder := tr.disorder + er.disorder + fr.disorder
	t.Logf("gap frames: %s", gapFrames(frames, movesStart))
	t.Logf("DRILL cluster-reshard lost=%d gap=%d dup=%d silent=%d replayed=%d input_lost_reported=%d moves=%d move_time=%s ticks=%d/%d echoes=%d/%d echo_fail=%d echo_max=%s flood=%d/2000 stall=%s stream_holes=%d/%d game_conns=%d ran=%s",
		lost, gaps, dup, silent, tr.replayed+er.replayed+fr.replayed, inputLost, len(moves), moveTotal.Round(time.Millisecond), tr.distinct, sentTicks, er.distinct, typed, echoFails.Load(),
		time.Duration(maxEcho.Load()).Round(time.Millisecond), fr.distinct, stall.Round(time.Millisecond), sr.holes, sr.holeEntries, accepted,
		time.Since(began).Round(time.Millisecond))

	p.checkOrder()
	replayed := tr.replayed + er.replayed + fr.replayed
	if dup-replayed > 0 || disorder > 0 {
		t.Errorf("lines twice without a reset gap before them: %d, out of order: %d", dup-replayed, disorder)
	}
	dumpIfMissed(t, c,
		clusterTarget(t, replayed == 0, "no line twice, even announced: %d lines came again after a reset gap frame", replayed),
		clusterTarget(t, tr.silent+fr.silent == 0, "output lines missing without a gap frame: %d (ticks %v, flood %v)", tr.silent+fr.silent, tr.uncovered, fr.uncovered),
		clusterTarget(t, tickErr == nil && echoErr == nil, "input and output keep working across the moves (last tick: %s; echo after: %s)", errLine(tickErr), errLine(echoErr)),
		// A typed line lost without a report was seen once in about ten
		// runs, on a loaded machine, while the worker's input channel's
		// slot moved; not reproduced since, cause not found: a FINDING
		// until it is.
		clusterFinding(t, echoSilent == 0 && echoFails.Load() == 0, "typed lines lost without an input_lost or no_session report: %d (echoes %v, %d lines reported; typed lines without an echo within 5 s: %d)", echoSilent, er.uncovered, inputLost, echoFails.Load()),
		clusterTarget(t, accepted == 2, "the session kept its game connection (the game accepted %d connections, want 2: the player's and Zed's)", accepted))
}

// slowMoveSlot moves slot from one primary to another the way redis-cli
// --cluster reshard does (SETSLOT IMPORTING and MIGRATING, MIGRATE,
// SETSLOT NODE), but one key per MIGRATE with a pause after each, so that
// the slot's keys are split between the two nodes for a while. It waits
// until the cluster is healthy again.
func slowMoveSlot(t *testing.T, rc *redistest.Cluster, slot int, from, to *redistest.Node, pause time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, dst := from.Client(t), to.Client(t)
	if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", from.ID).Err(); err != nil {
		return fmt.Errorf("SETSLOT IMPORTING: %w", err)
	}
	if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", to.ID).Err(); err != nil {
		return fmt.Errorf("SETSLOT MIGRATING: %w", err)
	}
	moved := 0
	for range 200 { // bounded: a session has a dozen keys
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 1).Result()
		if err != nil {
			return fmt.Errorf("GETKEYSINSLOT: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		if err := src.Do(ctx, "migrate", "127.0.0.1", to.Port, "", 0, 5000, "keys", keys[0]).Err(); err != nil {
			return fmt.Errorf("MIGRATE %s: %w", keys[0], err)
		}
		moved++
		time.Sleep(pause)
	}
	primaries, err := rc.Primaries()
	if err != nil {
		return err
	}
	owners := []*redistest.Node{to, from}
	for _, n := range primaries {
		if n != to && n != from {
			owners = append(owners, n)
		}
	}
	for _, n := range owners {
		if err := n.Client(t).Do(ctx, "cluster", "setslot", slot, "node", to.ID).Err(); err != nil {
			return fmt.Errorf("SETSLOT NODE on %s: %w", n, err)
		}
	}
	t.Logf("moved slot %d key by key (%d keys, %s apart)", slot, moved, pause)
	return rc.WaitHealthy()
}

// inputLostLines counts the typed lines the player was told about: what
// the edge's input_lost error frames said (lines that may not have reached
// the game, reported after the edge's 10 s ack timeout), and one for each
// line refused at once (no_session, internal: "the line was not sent").
func inputLostLines(frames []frame) int {
	n := 0
	for _, f := range frames {
		if f.Type == "error" && (f.Code == "no_session" || f.Code == "internal") {
			// The line was refused at once ("the line was not sent"): the
			// player was told about that one line.
			n++
			continue
		}
		if f.Type != "error" || f.Code != "input_lost" {
			continue
		}
		k := 1
		if m := leadingNumber.FindStringSubmatch(f.Message); m != nil {
			k, _ = strconv.Atoi(m[1])
		}
		n += k
	}
	return n
}

var leadingNumber = regexp.MustCompile(`^(\d+) lines`)

// inputReportWait bounds the wait for the edge to report typed lines that
// were never confirmed: its ack timeout (10 s) and a margin.
const inputReportWait = 14 * time.Second

// echoLine is the demo game's answer to "echo r-NNNNN".
var echoLine = regexp.MustCompile(`r-(\d{5})\n`)

// TestDrillClusterWaitCost measures what WAIT 1 (block until one replica
// has the write) would cost the output path: the round trip of an append
// (XADD) alone, with WAIT after it, and with one WAIT after a batch of 64
// as the worker's flusher would issue it, on a cluster primary with one
// replica over loopback. It asserts only that the replica acknowledged.
// WAIT narrows the window in which a failover loses acknowledged output;
// it does not close it (a write is applied before WAIT is asked).
func TestDrillClusterWaitCost(t *testing.T) {
	slow(t)
	rc := redistest.NewCluster(t, redistest.ClusterOptions{})
	key := "trellis:{ug:waitcost:demo}:out"
	primary, err := rc.PrimaryFor(key)
	if err != nil {
		t.Fatal(err)
	}
	rdb := primary.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payload := strings.Repeat("x", 200)
	xadd := func(pipe redis.Pipeliner) {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: 10_000, Approx: true, Values: []any{"d", payload}})
	}
	const rounds, batch = 1000, 64
	measure := func(what string, perRound int, wait bool) latencies {
		var l latencies
		for range rounds {
			pipe := rdb.Pipeline()
			for range perRound {
				xadd(pipe)
			}
			var w *redis.Cmd
			if wait {
				w = pipe.Do(ctx, "wait", 1, 1000) // one replica, 1 s at most
			}
			start := time.Now()
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			l = append(l, time.Since(start))
			if w != nil {
				if n, err := w.Int(); err != nil || n != 1 {
					t.Fatalf("%s: WAIT 1 answered %d replicas (%v)", what, n, err)
				}
			}
		}
		return l
	}
	one, oneWait := measure("xadd", 1, false), measure("xadd+wait", 1, true)
	many, manyWait := measure("64 xadd", batch, false), measure("64 xadd+wait", batch, true)
	t.Logf("DRILL cluster-wait append p50/p99: alone %s/%s, with WAIT 1 %s/%s; batch of %d: %s/%s, with one WAIT %s/%s (%d rounds each, loopback, -race client)",
		ms(one.pct(50)), ms(one.pct(99)), ms(oneWait.pct(50)), ms(oneWait.pct(99)), batch,
		ms(many.pct(50)), ms(many.pct(99)), ms(manyWait.pct(50)), ms(manyWait.pct(99)), rounds)
}
