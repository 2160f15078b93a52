package drills

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/store"
)

// Shared by the isolation drills (isolation_test.go, fencing_test.go):
// the switch that turns their targets into assertions, percentiles,
// process memory, and a look at a session's keys in Redis as an operator
// would take it.

// enforceIsolation turns the targets of the isolation work into
// assertions: in TestDrillHostileNeighbours the largest output entry
// (FLUSH_BYTES), the GMCP state cap, the bytes of each session's output
// stream and the worker's peak RSS; in the fencing drills, "lines missing
// ⇒ a gap frame seen". They held on the code before the isolation work
// only as logged misses (a zip bomb became one 27 MiB entry, GMCP state was
// unbounded, a self-fenced session dropped its output without a gap).
//
// The neighbours' p99 is a wall-clock figure on a shared machine: it is
// measured and printed every run, and asserted only when
// TRELLIS_DRILL_ENFORCE=1 asks for it (see latencyTarget).
//
// What is asserted always: the drills ran (processes started, players
// served in the quiet phase), no process raced or panicked, and no flood
// line reached a browser twice.
const enforceIsolation = true

func enforcing() bool { return enforceIsolation || os.Getenv("TRELLIS_DRILL_ENFORCE") == "1" }

// longDrill asks for the long versions of the isolation drills
// (TRELLIS_DRILL_LONG=1): minutes of hostile traffic instead of seconds.
func longDrill() bool { return os.Getenv("TRELLIS_DRILL_LONG") == "1" }

// target checks one target of the isolation work: an error when
// enforcing, a log line saying it was missed otherwise.
func target(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	switch {
	case ok:
		t.Logf("target met: %s", msg)
	case enforcing():
		t.Errorf("target missed: %s", msg)
	default:
		t.Logf("TARGET MISSED (not enforced yet): %s", msg)
	}
}

// latencyTarget is target for a wall-clock figure: asserted only when
// TRELLIS_DRILL_ENFORCE=1, logged otherwise (a loaded CI box must not fail
// a build on a latency; the figure is what the drill is for).
func latencyTarget(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	switch {
	case ok:
		t.Logf("target met: %s", msg)
	case os.Getenv("TRELLIS_DRILL_ENFORCE") == "1":
		t.Errorf("target missed: %s", msg)
	default:
		t.Logf("TARGET MISSED (latency, logged only): %s", msg)
	}
}

// latencies is a set of round-trip times.
type latencies []time.Duration

// pct returns the p-th percentile (0..100), exact, or 0 for no samples.
func (l latencies) pct(p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := len(s) * p / 100
	return s[min(i, len(s)-1)]
}

// ms renders a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// mib renders bytes in MiB with one decimal, KiB below 1 MiB, bytes below 1 KiB.
func mib(b int64) string {
	if b < 1<<10 {
		return fmt.Sprintf("%d B", b)
	}
	if b < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// procMem reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, field := range []struct {
			name string
			dst  *int64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if v, ok := strings.CutPrefix(line, field.name); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				*field.dst = kb << 10
			}
		}
	}
	return rss, hwm, sc.Err()
}

// memMonitor samples the memory of the worker, the edge and Redis while a
// drill runs, keeping the peak of each per phase.
type memMonitor struct {
	worker, edge *proc
	rdb          *redis.Client

	mu     sync.Mutex
	phase  string
	peaks  map[string]*memPeak
	order  []string
	hwm    int64 // the worker's VmHWM at the last sample
	errors int

	stop chan struct{}
	done chan struct{}
}

type memPeak struct{ workerRSS, edgeRSS, redisUsed int64 }

func startMemMonitor(t *testing.T, worker, edge *proc, rdb *redis.Client, phase string) *memMonitor {
	m := &memMonitor{worker: worker, edge: edge, rdb: rdb, peaks: map[string]*memPeak{},
		stop: make(chan struct{}), done: make(chan struct{})}
	m.setPhase(phase)
	go m.run()
	t.Cleanup(m.close)
	return m
}

func (m *memMonitor) setPhase(phase string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = phase
	if m.peaks[phase] == nil {
		m.peaks[phase] = &memPeak{}
		m.order = append(m.order, phase)
	}
}

func (m *memMonitor) run() {
	defer close(m.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		m.sample(i%5 == 0) // Redis once a second
		select {
		case <-m.stop:
			m.sample(true)
			return
		case <-tick.C:
		}
	}
}

func (m *memMonitor) sample(withRedis bool) {
	wrss, whwm, werr := procMem(m.worker.cmd.Process.Pid)
	erss, _, eerr := procMem(m.edge.cmd.Process.Pid)
	var used int64
	if withRedis {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := m.rdb.Info(ctx, "memory").Result()
		cancel()
		if err == nil {
			if v, ok := infoValue(info, "used_memory"); ok {
				used, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if werr != nil || eerr != nil {
		m.errors++
	}
	p := m.peaks[m.phase]
	p.workerRSS = max(p.workerRSS, wrss)
	p.edgeRSS = max(p.edgeRSS, erss)
	p.redisUsed = max(p.redisUsed, used)
	m.hwm = max(m.hwm, whwm)
}

func (m *memMonitor) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// peak returns the peaks of one phase.
func (m *memMonitor) peak(phase string) memPeak {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peaks[phase]; p != nil {
		return *p
	}
	return memPeak{}
}

// workerHWM is the worker's peak RSS since it started (VmHWM).
func (m *memMonitor) workerHWM() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hwm
}

func infoValue(info, name string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// sessionRedis is what one session costs in Redis, and its largest output
// entry.
type sessionRedis struct {
	key        store.SessionKey
	outBytes   int64 // MEMORY USAGE of the output stream
	gmcpBytes  int64 // ... of the GMCP state hash
	otherBytes int64 // ... of the lease, fence and session record
	entries    int64 // XLEN
	payload    int64 // bytes of the entries' JSON values, summed
	maxEntry   int64 // the largest entry's JSON value
	maxText    int64 // the largest text payload (decoded), in bytes
	maxTextID  string
	gmcpFields int64 // HLEN of the GMCP state
}

func (s sessionRedis) total() int64 { return s.outBytes + s.gmcpBytes + s.otherBytes }

// plainID is what a user or game id must look like for sessionTag to
// name its keys the way store/keys.go does (escaping changes nothing).
var plainID = regexp.MustCompile(`^[A-Za-z0-9._@-]+$`)

// sessionTag replicates store/keys.go's key naming (store does not export
// it) for ids that need no escaping.
func sessionTag(key store.SessionKey) (string, error) {
	if !plainID.MatchString(key.User) || !plainID.MatchString(key.Game) {
		return "", fmt.Errorf("session %s: ids would be escaped in keys; pick plain ones", key)
	}
	return store.Prefix + "{ug:" + key.User + ":" + key.Game + "}", nil
}

// entryScan scans a page of an output stream inside Redis and returns the
// entry count, the largest JSON value, the largest decoded text payload and
// its id, the values' total size and the last id of the page: the page
// never leaves Redis, so a stream of 16 MiB entries costs the test nothing.
var entryScan = redis.NewScript(`
local res = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local maxv, maxt, maxid, total, last = 0, 0, '', 0, ''
for _, e in ipairs(res) do
  last = e[1]
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 'v' then
      local v = f[i + 1]
      total = total + #v
      if #v > maxv then maxv = #v end
      local ok, o = pcall(cjson.decode, v)
      if ok and type(o) == 'table' and type(o.t) == 'string' and #o.t > maxt then
        maxt = #o.t
        maxid = e[1]
      end
    end
  end
end
return {#res, maxv, maxt, maxid, total, last}
`)

// inspectSession measures one session's keys. rdb should have a generous
// read timeout: MEMORY USAGE of a big stream takes a moment.
func inspectSession(ctx context.Context, rdb *redis.Client, key store.SessionKey) (sessionRedis, error) {
	r := sessionRedis{key: key}
	tag, err := sessionTag(key)
	if err != nil {
		return r, err
	}
	usage := func(k string) (int64, error) {
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return n, err
	}
	if r.outBytes, err = usage(tag + ":out"); err != nil {
		return r, fmt.Errorf("memory usage of %s: %w", tag+":out", err)
	}
	if r.gmcpBytes, err = usage(tag + ":gmcp"); err != nil {
		return r, err
	}
	for _, k := range []string{":lease", ":fence", ":session"} {
		n, err := usage(tag + k)
		if err != nil {
			return r, err
		}
		r.otherBytes += n
	}
	if r.entries, err = rdb.XLen(ctx, tag+":out").Result(); err != nil {
		return r, err
	}
	if r.gmcpFields, err = rdb.HLen(ctx, tag+":gmcp").Result(); err != nil {
		return r, err
	}
	// Pages of about 8 MiB inside Redis.
	page := int64(500)
	if r.entries > 0 {
		page = max(1, min(500, (8<<20)/max(1, r.outBytes/r.entries)))
	}
	from := "-"
	for range 100_000 { // bounded: a stream holds fewer pages than that
		v, err := entryScan.Run(ctx, rdb, []string{tag + ":out"}, from, page).Slice()
		if err != nil {
			return r, fmt.Errorf("scan %s: %w", tag+":out", err)
		}
		if len(v) != 6 {
			return r, fmt.Errorf("scan %s: %d values", tag+":out", len(v))
		}
		n, _ := v[0].(int64)
		if n == 0 {
			break
		}
		mv, _ := v[1].(int64)
		mt, _ := v[2].(int64)
		id, _ := v[3].(string)
		tot, _ := v[4].(int64)
		last, _ := v[5].(string)
		r.maxEntry = max(r.maxEntry, mv)
		if mt > r.maxText {
			r.maxText, r.maxTextID = mt, id
		}
		r.payload += tot
		if n < page {
			break
		}
		from = "(" + last
	}
	return r, nil
}

// metricLines fetches a process's /metrics and returns the samples whose
// name starts with one of prefixes, for the report.
func metricLines(p *proc, prefixes ...string) string {
	addr := p.addr
	if p.admin != "" {
		addr = p.admin // an edge serves /metrics on its admin listener only
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return "metrics: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, pre := range prefixes {
			if strings.HasPrefix(line, pre) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
