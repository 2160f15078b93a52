package drills

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// The fencing drills: the owner of a flooding session loses its lease
// while it holds output nobody has stored yet — because it was paused
// (SIGSTOP) past the lease TTL, or because Redis was away longer than the
// TTL and it fenced itself. Another worker takes the session over. The
// browser must see no line twice, and every line the game sent that it
// never sees must be reported by a gap frame.
//
// The game is the demo game behind a counting proxy, so the drill knows
// the highest flood line the game got into the old worker's connection;
// the workers refuse MCCP2 so that the proxy can read the numbers.

const (
	fenceFloodLines = 100_000                  // "flood 100000": 8 MB of numbered 80-byte lines
	fenceRedisAway  = leaseTTL + 2*time.Second // longer than the lease TTL: the owner fences itself
	fenceGame       = "fenced"
)

// floodProxy forwards TCP connections to the demo game and notes, for
// each, the bytes and the highest flood line number it passed on toward
// the worker.
type floodProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []*proxied
	wg    sync.WaitGroup
}

type proxied struct {
	worker, game net.Conn
	toWorker     atomic.Int64 // bytes written to the worker
	lastLine     atomic.Int64 // highest flood line number written to the worker
	floodStart   atomic.Int64 // offset of "flood 000001 " in the bytes to the worker; -1 before
	last         atomic.Pointer[queueSample]
	closed       chan struct{}
}

// queueSample is how much of what the proxy wrote toward the worker was
// still in the kernel (the proxy's send queue and the worker's receive
// queue) at one moment: the rest the worker had read.
type queueSample struct {
	toWorker, kernel int64
	at               time.Time
}

// read is what the worker had read of the connection at the last sample
// before it closed.
func (pc *proxied) read() (read, kernel int64, ok bool) {
	s := pc.last.Load()
	if s == nil {
		return 0, 0, false
	}
	return s.toWorker - s.kernel, s.kernel, true
}

// linesRead converts bytes read into flood lines read (80 bytes each).
func (pc *proxied) linesRead(read int64) int {
	start := pc.floodStart.Load()
	if start < 0 || read < start {
		return 0
	}
	return int((read - start) / 80)
}

// sample watches the connection's kernel queues every 50 ms until it
// closes (bounded).
func (pc *proxied) sample() {
	proxyPort := pc.worker.LocalAddr().(*net.TCPAddr).Port
	workerPort := pc.worker.RemoteAddr().(*net.TCPAddr).Port
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range 20 * 60 * 10 { // ten minutes at most
		sent := pc.toWorker.Load()
		if k, ok := kernelQueued(proxyPort, workerPort); ok {
			pc.last.Store(&queueSample{toWorker: sent, kernel: k, at: time.Now()})
		}
		select {
		case <-pc.closed:
			return
		case <-tick.C:
		}
	}
}

// kernelQueued reads /proc/net/tcp for the bytes queued in the kernel on
// the loopback connection between ports a (the proxy) and b (the worker):
// a's send queue plus b's receive queue.
func kernelQueued(a, b int) (int64, bool) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	var total int64
	found := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		lp, rp := hexPort(f[1]), hexPort(f[2])
		tx, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			continue
		}
		switch {
		case lp == a && rp == b: // the proxy's socket: its send queue
			n, _ := strconv.ParseInt(tx, 16, 64)
			total += n
			found++
		case lp == b && rp == a: // the worker's socket: its receive queue
			n, _ := strconv.ParseInt(rx, 16, 64)
			total += n
			found++
		}
	}
	return total, found == 2
}

func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

func startFloodProxy(t *testing.T, target string) *floodProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	px := &floodProxy{ln: ln, target: target}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(px.close)
	return px
}

func (px *floodProxy) addr() string { return px.ln.Addr().String() }

func (px *floodProxy) accept() {
	defer px.wg.Done()
	for range 1000 { // bounded: a drill makes a handful of game connections
		w, err := px.ln.Accept()
		if err != nil {
			return
		}
		g, err := net.DialTimeout("tcp", px.target, 5*time.Second)
		if err != nil {
			w.Close()
			continue
		}
		pc := &proxied{worker: w, game: g, closed: make(chan struct{})}
		pc.floodStart.Store(-1)
		px.mu.Lock()
		px.conns = append(px.conns, pc)
		px.mu.Unlock()
		var once sync.Once
		shut := func() { once.Do(func() { w.Close(); g.Close(); close(pc.closed) }) }
		px.wg.Add(3)
		go func() {
			defer px.wg.Done()
			pc.sample()
		}()
		go func() { // worker -> game
			defer px.wg.Done()
			defer shut()
			_, _ = io.Copy(g, w)
		}()
		go func() { // game -> worker, counting
			defer px.wg.Done()
			defer shut()
			pc.forward()
		}()
	}
}

var floodNumber = regexp.MustCompile(`flood (\d{6})`)

func (pc *proxied) forward() {
	buf := make([]byte, 32<<10)
	var carry []byte // the end of the previous chunk, for a number split across reads
	for {
		n, err := pc.game.Read(buf)
		if n > 0 {
			scan := append(carry, buf[:n]...)
			last := int64(0)
			if i := bytes.LastIndex(scan, []byte("flood ")); i >= 0 {
				// The last complete number in the chunk; search back from the
				// end for one that is whole.
				for _, m := range floodNumber.FindAllSubmatch(scan[max(0, i-160):], -1) {
					v, _ := strconv.ParseInt(string(m[1]), 10, 64)
					last = max(last, v)
				}
			}
			if pc.floodStart.Load() < 0 {
				if i := bytes.Index(scan, []byte("flood 000001 ")); i >= 0 {
					pc.floodStart.Store(pc.toWorker.Load() - int64(len(carry)) + int64(i))
				}
			}
			if _, werr := pc.worker.Write(buf[:n]); werr != nil {
				return
			}
			pc.toWorker.Add(int64(n))
			if last > pc.lastLine.Load() {
				pc.lastLine.Store(last)
			}
			carry = append(carry[:0], scan[max(0, len(scan)-16):]...)
		}
		if err != nil {
			return
		}
	}
}

// conn returns the i-th game connection (0 is the first), or nil.
func (px *floodProxy) conn(i int) *proxied {
	px.mu.Lock()
	defer px.mu.Unlock()
	if i < len(px.conns) {
		return px.conns[i]
	}
	return nil
}

func (px *floodProxy) count() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return len(px.conns)
}

func (px *floodProxy) close() {
	px.ln.Close()
	px.mu.Lock()
	for _, pc := range px.conns {
		pc.worker.Close()
		pc.game.Close()
	}
	px.mu.Unlock()
	px.wg.Wait()
}

// floodReport is what a browser saw of a flood that was cut by a
// takeover, against what the game sent.
type floodReport struct {
	requested int // lines asked for
	forwarded int // highest line the game got into the old worker's connection
	distinct  int // distinct lines the browser saw
	dup       int // lines seen more than once
	disorder  int // lines that came after a higher one
	lastSeen  int
	holes     int // lines missing before the last one seen
	stretches int // runs of missing lines (holes and the tail)
	tail      int // lines after the last one seen, up to forwarded
	uncovered []string
	gapFrames int
	gapBytes  int64 // bytes the gap frames said were lost

	// What the old owner had read from its game connection when it closed
	// (the proxy's count less the kernel's socket queues): lines it read
	// but never stored were lost inside Trellis; the rest of the missing
	// lines were still in the kernel when the connection closed.
	readLines   int
	readBytes   int64
	kernelBytes int64
	sampled     bool
}

func (r floodReport) missing() int { return r.holes + r.tail }

// unstored is the lines the old owner read and never stored.
func (r floodReport) unstored() int { return max(0, r.readLines-r.lastSeen) }

func (r floodReport) String() string {
	inside := "not sampled"
	if r.sampled {
		inside = fmt.Sprintf("the old owner had read %s of the connection (to line %d): %d lines (~%s) read and never stored, %s still in the kernel's socket queues",
			mib(r.readBytes), r.readLines, r.unstored(), mib(int64(r.unstored())*80), mib(r.kernelBytes))
	}
	return inside + "; " + fmt.Sprintf("flood %d: the game got lines up to %d into the old owner's connection; the browser saw %d distinct (last %d), %d twice, %d out of order; missing %d (%d before the last seen, %d after it; ~%s of game text) in %d stretches, %d of them without a gap frame; %d gap frames reporting %s",
		r.requested, r.forwarded, r.distinct, r.lastSeen, r.dup, r.disorder, r.missing(), r.holes, r.tail,
		mib(int64(r.missing())*80), r.stretches, len(r.uncovered), r.gapFrames, mib(r.gapBytes))
}

var (
	floodOrGap = regexp.MustCompile(`flood (\d{6}) x{65}\r?\n|\x00GAP\x00`)
	gapBytesRe = regexp.MustCompile(`(\d+) bytes`)
)

// analyseFlood reads the frames a browser got after the flood command: the
// flood lines in order, and where gap frames fell among them.
func analyseFlood(frames []frame, requested int, old *proxied) floodReport {
	r := floodReport{requested: requested}
	if old != nil {
		r.forwarded = int(old.lastLine.Load())
		if read, kernel, ok := old.read(); ok {
			r.readBytes, r.kernelBytes, r.sampled = read, kernel, true
			r.readLines = old.linesRead(read)
		}
	}
	var b bytes.Buffer
	for _, f := range frames {
		switch f.Type {
		case "output":
			b.WriteString(f.Text)
		case "gap":
			r.gapFrames++
			if m := gapBytesRe.FindStringSubmatch(f.Message); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				r.gapBytes += n
			}
			b.WriteString("\x00GAP\x00")
		}
	}
	counts := map[int]int{}
	last, gapSince := 0, false
	stretch := func(from, to int) {
		r.stretches++
		if !gapSince {
			r.uncovered = append(r.uncovered, fmt.Sprintf("%d-%d", from, to))
		}
	}
	for _, m := range floodOrGap.FindAllSubmatch(b.Bytes(), -1) {
		if m[1] == nil {
			gapSince = true
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		counts[n]++
		switch {
		case counts[n] > 1:
			r.dup++
			continue
		case n < last:
			r.disorder++
			continue
		case n > last+1:
			stretch(last+1, n-1)
		}
		last, gapSince = n, false
	}
	r.distinct, r.lastSeen = len(counts), last
	for n := 1; n < last; n++ {
		if counts[n] == 0 {
			r.holes++
		}
	}
	r.forwarded = max(r.forwarded, last)
	if r.forwarded > last {
		r.tail = r.forwarded - last
		stretch(last+1, r.forwarded)
	}
	return r
}

// framesSince copies the frames after mark.
func (p *player) framesSince(mark int) []frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]frame(nil), p.frames[min(mark, len(p.frames)):]...)
}

// indexOf is the position of the first frame after mark that match
// accepts (a mark for what came after it), or the current end.
func (p *player) indexOf(mark int, match func(frame) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := min(mark, len(p.frames)); i < len(p.frames); i++ {
		if match(p.frames[i]) {
			return i
		}
	}
	return len(p.frames)
}

// signal sends sig to a process (SIGSTOP, SIGCONT).
func (p *proc) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s %s: %w", sig, p.name, err)
	}
	return nil
}

// fenceSetup is the fencing drills' world: two workers that refuse MCCP2,
// two edges, the demo game behind a flood proxy, and a logged-in player
// on it.
func fenceSetup(t *testing.T, user string) (c *cluster, workers []*proc, px *floodProxy, p *player) {
	t.Helper()
	c = newCluster(t)
	noMCCP := "TRELLIS_WORKER_REFUSE_COMPRESSION=true"
	workers = []*proc{c.startWorkerEnv("w1", noMCCP), c.startWorkerEnv("w2", noMCCP)}
	edges := []*proc{c.startEdge("e1"), c.startEdge("e2")}
	px = startFloodProxy(t, c.gameAddr)
	c.addGame(fenceGame, "Fenced Demo", px.addr())
	p = newPlayerIn(t, user, fenceGame, []string{edges[0].addr, edges[1].addr}, 0)
	p.waitFrame(0, "welcome", attachTimeout, func(f frame) bool { return f.Type == "welcome" })
	p.waitFrame(0, "status connected", attachTimeout, isStatus("connected"))
	p.login(0, attachTimeout)
	// Let the edges' watchdogs see the lease before anything breaks: a
	// watchdog re-attaches only sessions whose lease it has seen once (a
	// session whose owner is lost within the first lease check after it
	// started is not failed over, and its player waits forever — found by
	// this drill; kept out of it here, it is not what the drill is about).
	time.Sleep(3 * leaseCheck)
	return c, workers, px, p
}

// startFlood types the flood and waits for its first line.
func startFlood(p *player) int {
	p.t.Helper()
	m := p.mark()
	p.send(fmt.Sprintf("flood %d", fenceFloodLines))
	p.waitText(m, "flood 000001 ", replyTimeout)
	return m
}

// afterTakeover waits for the old game connection to close (the old owner
// noticed, or the game gave up on it), lets the old owner try to write,
// then logs in on the new game connection and plays a line. It returns
// how long the old connection stayed open after from.
func afterTakeover(t *testing.T, px *floodProxy, p *player, m int, from time.Time) time.Duration {
	t.Helper()
	var oldOpen time.Duration
	if old := px.conn(0); old != nil {
		select {
		case <-old.closed:
		case <-time.After(recoveryBound):
			t.Errorf("the old owner's game connection is still open %s later", recoveryBound)
		}
		oldOpen = time.Since(from)
	}
	time.Sleep(time.Second) // the old owner's last chance to write something
	at := p.indexOf(m, isStatus("reconnected"))
	p.login(at, attachTimeout)
	p.echo("after-takeover")
	return oldOpen
}

// staleWrites counts the entries of the session's stream written with a
// fence below the newest one after an entry of the newest one: writes by
// an owner that had lost the lease, which the fence must refuse. Gap
// entries are counted apart (lostGaps): a writer that lost its lease may
// still record that it lost output (store.AppendLostGap), and only that.
func staleWrites(t *testing.T, c *cluster, key store.SessionKey) (stale, lostGaps int, fences string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := c.st.OutputRange(ctx, key, "-", "+", 200_000)
	if err != nil {
		t.Errorf("read the output stream: %v", err)
		return 0, 0, ""
	}
	var top int64
	seen := map[int64]int{}
	var order []int64
	for _, o := range entries {
		if o.Fence == 0 {
			continue
		}
		if seen[o.Fence] == 0 {
			order = append(order, o.Fence)
		}
		seen[o.Fence]++
		if o.Fence < top {
			if o.Kind == store.OutGap {
				lostGaps++
			} else {
				stale++
			}
		}
		top = max(top, o.Fence)
	}
	for _, f := range order {
		fences += fmt.Sprintf(" fence %d: %d entries;", f, seen[f])
	}
	return stale, lostGaps, fences
}

// logFenceMetrics logs what the workers counted of leases and lost output.
func logFenceMetrics(t *testing.T, workers []*proc) {
	t.Helper()
	for _, w := range workers {
		t.Logf("%s metrics:\n%s", w.name, metricLines(w, "trellis_worker_self_fences_total", "trellis_worker_leases_lost_total",
			"trellis_worker_output_lost_bytes_total", "trellis_worker_output_bytes_total", "trellis_worker_session_failovers_total",
			"trellis_worker_sessions_ended_total", "trellis_worker_redis_errors_total"))
	}
}

// checkFlood asserts what always holds and the gap target.
func checkFlood(t *testing.T, r floodReport) {
	t.Helper()
	if r.dup > 0 || r.disorder > 0 {
		t.Errorf("flood lines twice: %d, out of order: %d", r.dup, r.disorder)
	}
	if r.distinct == 0 {
		t.Errorf("the browser saw no flood line at all")
	}
	target(t, r.missing() == 0 || (r.gapFrames > 0 && len(r.uncovered) == 0),
		"%d flood lines missing (stretches %v without a gap frame); %d gap frames reporting %d bytes, ~%d bytes of game text missing",
		r.missing(), r.uncovered[:min(5, len(r.uncovered))], r.gapFrames, r.gapBytes, r.missing()*80)
}

// TestDrillFenceWorkerStopped: the worker owning a flooding session is
// paused (SIGSTOP) past the lease TTL; the other worker takes the session
// over; the old one is resumed (SIGCONT) with unstored output in its
// outbox and its socket. Nothing it writes after that may reach the
// stream (the fence), no line may reach the browser twice, and the lines
// lost with the old connection must be reported by a gap frame.
func TestDrillFenceWorkerStopped(t *testing.T) {
	slow(t)
	began := time.Now()
	c, workers, px, p := fenceSetup(t, "fiona")
	key := store.SessionKey{User: "fiona", Game: fenceGame}
	before, _ := c.leaseOf(key)
	owner := c.ownerOf(key)
	other := workers[0]
	if owner == workers[0] {
		other = workers[1]
	}

	m := startFlood(p)
	if err := owner.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	continued := false
	defer func() {
		if !continued {
			_ = owner.signal(syscall.SIGCONT)
		}
	}()
	st := p.waitFrame(m, "status reconnected", recoveryBound, isStatus("reconnected"))
	takeover := st.at.Sub(stopped)
	if d := leaseTTL + time.Second - time.Since(stopped); d > 0 {
		time.Sleep(d) // paused past the TTL whatever the edge noticed
	}
	if err := owner.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued = true
	pausedFor := time.Since(stopped)
	oldOpen := afterTakeover(t, px, p, m, time.Now())

	after, ok := c.leaseOf(key)
	switch {
	case !ok:
		t.Errorf("no lease after the takeover")
	case after.Owner != other.instance:
		t.Errorf("lease owner %q after the takeover, want the other worker %q", after.Owner, other.instance)
	case after.Fence <= before.Fence:
		t.Errorf("fence %d after the takeover, want more than %d", after.Fence, before.Fence)
	}
	stale, lostGaps, fences := staleWrites(t, c, key)
	if stale > 0 {
		t.Errorf("%d entries written with an old fence after the new owner's:%s", stale, fences)
	}
	p.checkOrder()
	r := analyseFlood(p.framesSince(m), fenceFloodLines, px.conn(0))
	logFenceMetrics(t, workers)
	h, _ := owner.health()
	t.Logf("%s", r)
	t.Logf("old owner %s after SIGCONT: /healthz %+v; its game connection closed %s after SIGCONT; game connections through the proxy %d; stream:%s",
		owner.name, h, oldOpen.Round(time.Millisecond), px.count(), fences)
	figure(t, "owner SIGSTOPped for %s (TTL %s) mid-flood: reconnected via %s after %s; duplicated %d, missing %d lines (%d inside, %d at the cut; ~%s) in %d stretches, %d without a gap; read by the old owner and never stored %d lines (~%s); gap frames %d (%s reported); stale entries %d (gaps by the old owner %d); fence %d -> %d; ran %s",
		pausedFor.Round(time.Millisecond), leaseTTL, other.name, takeover.Round(time.Millisecond), r.dup, r.missing(), r.holes, r.tail,
		mib(int64(r.missing())*80), r.stretches, len(r.uncovered), r.unstored(), mib(int64(r.unstored())*80), r.gapFrames, mib(r.gapBytes), stale, lostGaps, before.Fence, after.Fence,
		time.Since(began).Round(time.Millisecond))
	checkFlood(t, r)
}

// TestDrillFenceRedisAway: Redis is stopped for longer than the lease TTL
// while a session floods; the owner buffers what it reads, cannot renew,
// fences itself; when Redis is back another (or the same) worker starts
// the session again. No line may reach the browser twice, and the lines
// lost with the fenced session must be reported by a gap frame.
func TestDrillFenceRedisAway(t *testing.T) {
	slow(t)
	began := time.Now()
	c, workers, px, p := fenceSetup(t, "gwen")
	key := store.SessionKey{User: "gwen", Game: fenceGame}
	before, _ := c.leaseOf(key)

	m := startFlood(p)
	if err := c.redis.Stop(); err != nil {
		t.Fatalf("stop redis: %v", err)
	}
	down := time.Now()
	time.Sleep(fenceRedisAway)
	if err := c.redis.StartAgain(); err != nil {
		t.Fatalf("start redis again: %v", err)
	}
	up := time.Now()
	st := p.waitFrame(m, "status reconnected", recoveryBound, isStatus("reconnected"))
	back := st.at.Sub(up)
	oldOpen := afterTakeover(t, px, p, m, down)

	after, ok := c.leaseOf(key)
	if !ok || after.Fence <= before.Fence {
		t.Errorf("lease after Redis came back %+v (held=%v), want a fence above %d", after, ok, before.Fence)
	}
	stale, lostGaps, fences := staleWrites(t, c, key)
	if stale > 0 {
		t.Errorf("%d entries written with an old fence after the new owner's:%s", stale, fences)
	}
	p.checkOrder()
	r := analyseFlood(p.framesSince(m), fenceFloodLines, px.conn(0))
	logFenceMetrics(t, workers)
	t.Logf("%s", r)
	t.Logf("old game connection closed %s after Redis stopped; game connections through the proxy %d; WebSocket connections %d; stream:%s",
		oldOpen.Round(time.Millisecond), px.count(), p.connections(), fences)
	figure(t, "redis away %s (TTL %s) mid-flood: reconnected %s after Redis was back; duplicated %d, missing %d lines (%d inside, %d at the cut; ~%s) in %d stretches, %d without a gap; read by the old owner and never stored %d lines (~%s); gap frames %d (%s reported); stale entries %d (gaps by the old owner %d); fence %d -> %d; ran %s",
		up.Sub(down).Round(time.Millisecond), leaseTTL, back.Round(time.Millisecond), r.dup, r.missing(), r.holes, r.tail,
		mib(int64(r.missing())*80), r.stretches, len(r.uncovered), r.unstored(), mib(int64(r.unstored())*80), r.gapFrames, mib(r.gapBytes), stale, lostGaps, before.Fence, after.Fence,
		time.Since(began).Round(time.Millisecond))
	checkFlood(t, r)
}
