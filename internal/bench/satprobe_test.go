package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trellis-mud/trellis/internal/redistest"
)

// Flooding sessions are named so that every primary holds the same number
// of them, and the probe counts each session on the primary that really
// holds its keys (asked of the cluster, node by node, not of our slot map).
func TestBalancedUsersAndProbeMapping(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis cluster")
	}
	cl, err := redistest.StartCluster(redistest.ClusterOptions{Primaries: 3, Replicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	rdb := cl.Client(t)
	keyOf := func(u string) string { return "trellis:{ug:" + u + ":bench}:out" }
	const n = 20
	users, err := balancedUsers(ctx, rdb, keyOf, "s1", n)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n {
		t.Fatalf("%d users, want %d", len(users), n)
	}
	perNode := map[string]int{}
	for _, u := range users {
		node, err := cl.PrimaryFor(keyOf(u))
		if err != nil {
			t.Fatal(err)
		}
		perNode[node.Addr]++
	}
	for addr, k := range perNode {
		if k != n/3 && k != n/3+1 {
			t.Errorf("primary %s holds %d of %d sessions, want %d or %d (all: %v)", addr, k, n, n/3, n/3+1, perNode)
		}
	}
	if len(perNode) != 3 {
		t.Errorf("sessions on %d primaries, want 3: %v", len(perNode), perNode)
	}

	p, err := newSatProbe(ctx, rdb, users, keyOf)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		node, _ := cl.PrimaryFor(keyOf(u))
		info, err := node.Client(t).Info(ctx, "server").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := infoField(info, "process_id")
		pid, _ := strconv.Atoi(v)
		if got := p.pids[p.owner[i]]; got != pid {
			t.Errorf("session %s counted on redis-server %d, its keys are on %d (%s)", u, got, pid, node.Addr)
		}
	}
	// The probe samples every server's CPU, in nanoseconds.
	p.sample()
	for i, pid := range p.pids {
		if d := p.samples[0].cpu[i]; d <= 0 {
			t.Errorf("redis-server %d: CPU %v from schedstat, want > 0", pid, d)
		}
	}
}

// The steady window runs from the last session's first line to the first
// session's last, taken between the samples inside it.
func TestSteadyWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var samples []probeSample
	for ms := 0; ms <= 4000; ms += 100 {
		// 2 primaries: the first delivers 100 entries/s and uses 0.05
		// cores, the second 50 entries/s and 0.025 cores.
		samples = append(samples, probeSample{
			at:      at(ms),
			entries: []int64{int64(ms / 10), int64(ms / 20)},
			cpu:     []time.Duration{time.Duration(ms) * time.Millisecond / 20, time.Duration(ms) * time.Millisecond / 40},
			self:    time.Duration(ms) * time.Millisecond / 2,
		})
	}
	spans := []sessionSpan{{first: at(150), last: at(3950)}, {first: at(420), last: at(2710)}, {first: at(10), last: at(4000)}}
	w := steadyWindow(t0, spans, samples)
	if !w.Valid() {
		t.Fatalf("window %+v, want a valid one", w)
	}
	if w.Start != 500*time.Millisecond || w.End != 2700*time.Millisecond {
		t.Errorf("window %v-%v, want 500ms-2.7s (samples inside 420ms-2.71s)", w.Start, w.End)
	}
	if w.Entries != 220+110 || fmt.Sprintf("%.0f", w.EntriesPerSec) != "150" {
		t.Errorf("window entries %d at %.1f/s, want 330 at 150/s", w.Entries, w.EntriesPerSec)
	}
	if fmt.Sprintf("%.3f %.3f %.2f", w.Redis[0], w.Redis[1], w.Trellis) != "0.050 0.025 0.50" {
		t.Errorf("window cpu %v trellis %.2f, want 0.05, 0.025 and 0.5", w.Redis, w.Trellis)
	}
	// A session that finished before another started leaves no window.
	if w := steadyWindow(t0, []sessionSpan{{first: at(0), last: at(900)}, {first: at(1000), last: at(3000)}}, samples); w.Valid() {
		t.Errorf("window %+v for disjoint sessions, want none", w)
	}
	if w := steadyWindow(t0, []sessionSpan{{first: at(0)}}, samples); w != nil {
		t.Errorf("window %+v with a session that got no line, want nil", w)
	}
}

// The breakdown counts keys by kind, streams' entries, and connections by
// the process holding them.
func TestReadBreakdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	for _, u := range []string{"a", "b"} {
		for i := range 3 {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "trellis:{ug:" + u + ":g}:out", Values: []string{"v", strconv.Itoa(i)}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		rdb.Set(ctx, "trellis:{ug:"+u+":g}:lease", "x", 0)
	}
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "trellis:{ctl:3}:control", Values: []string{"v", "1"}})
	sub := rdb.Subscribe(ctx, "trellis:ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	b := readBreakdown(ctx, rdb, socketOwners(map[int]string{os.Getpid(): "bench"}))
	if b.Error != "" {
		t.Fatal(b.Error)
	}
	if k := b.KeyKinds["session:out"]; k.Count != 2 || k.Entries != 6 || k.Bytes <= 0 {
		t.Errorf("session:out %+v, want 2 keys, 6 entries", k)
	}
	if k := b.KeyKinds["session:lease"]; k.Count != 2 {
		t.Errorf("session:lease %+v, want 2 keys", k)
	}
	if k := b.KeyKinds["{*}:control"]; k.Count != 1 || k.Entries != 1 {
		t.Errorf("{*}:control %+v, want 1 stream of 1 entry (all kinds: %v)", k, b.KeyKinds)
	}
	if b.Keys != 5 || b.Info["used_memory"] <= 0 {
		t.Errorf("keys %d, used_memory %d; want 5 keys", b.Keys, b.Info["used_memory"])
	}
	g := b.Clients["bench"]
	if g.Count < 2 || g.Subs != 1 || g.TotMem <= 0 {
		t.Errorf("clients of this process %+v, want 2 or more, one subscribed (all: %v)", g, b.Clients)
	}
	if b.PubSubChannels != 1 {
		t.Errorf("%d pubsub channels, want 1", b.PubSubChannels)
	}
	lines := breakdownDelta(RedisBreakdown{}, b, 2)
	if len(lines) == 0 {
		t.Error("no delta lines")
	}
}

// The logged-in Redis figure is judged on what an idle session costs:
// used_memory growth less the client pools' growth and the demo game's
// arrival lines, which grow with the number of players in its one room.
func TestLoginVerdictJudgesIdleRedis(t *testing.T) {
	const n = 1000
	before := RedisBreakdown{Info: map[string]int64{"used_memory": 1 << 20, "mem_clients_normal": 100 << 10}}
	after := RedisBreakdown{
		Info:     map[string]int64{"used_memory": 1<<20 + n*40<<10, "mem_clients_normal": 100<<10 + n*2<<10},
		OutKinds: map[string]KeyKind{ArrivalKind: {Count: n * 300, Entries: n * 300, Bytes: n * 30 << 10}, "text": {Bytes: n * 3 << 10}},
	}
	l := LoginIdleResult{Game: LoginGameMCCP, MCCP: true, Sessions: n, RedisBefore: &before, RedisAfter: &after, Procs: []ProcIdle{
		{Name: "edge", RSS: 7 << 10}, {Name: "worker", RSS: 39 << 10}, {Name: "redis", RSS: 41 << 10, Heap: 40 << 10},
	}}
	l.RedisIdle, l.RedisClients, l.RedisArrivals = idleRedis(before, after, n)
	if l.RedisIdle != 8<<10 || l.RedisClients != 2<<10 || l.RedisArrivals != 30<<10 {
		t.Fatalf("idle %d, clients %d, arrivals %d; want 8, 2 and 30 KiB", l.RedisIdle, l.RedisClients, l.RedisArrivals)
	}
	r := &Results{LoggedIn: []LoginIdleResult{l}}
	m, met := r.loginVerdict(true)
	if met == nil || !*met || !strings.Contains(m, "Redis 8.0 KiB idle") || !strings.Contains(m, "arrival lines 30.0 KiB") {
		t.Errorf("verdict %q %v, want MET on 8 KiB idle, the arrivals shown", m, met)
	}
	// Without a breakdown the row is judged on RSS, as before.
	l.RedisBefore, l.RedisAfter = nil, nil
	r.LoggedIn[0] = l
	if m, met := r.loginVerdict(true); met == nil || *met {
		t.Errorf("verdict without a breakdown %q %v, want MISS on 41 KiB RSS", m, met)
	}
}

func TestIsArrival(t *testing.T) {
	for text, want := range map[string]bool{
		"\nBnd arrives.\n> ":               true,
		"\nBnd arrives.\n\nBne arrives.\n": true,
		"\nWelcome, Bnk. Bnd arrives.\n":   false,
		"Password: ":                       false,
	} {
		if got := isArrival(text); got != want {
			t.Errorf("isArrival(%q) = %v, want %v", text, got, want)
		}
	}
}

// schedstat's CPU time of a process agrees with /proc's ticks to within a
// few ticks, at nanosecond resolution.
func TestSchedCPU(t *testing.T) {
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	_ = x
	ticks, err := procCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	ns := schedCPU(os.Getpid())
	if ns <= 0 || ns%time.Millisecond == 0 && ns%(10*time.Millisecond) == 0 {
		t.Fatalf("schedstat CPU %v: want nanoseconds, not ticks", ns)
	}
	if d := ns - ticks; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("schedstat %v, /proc stat %v: want them within 50 ms", ns, ticks)
	}
}
