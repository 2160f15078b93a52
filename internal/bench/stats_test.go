package bench

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentilesNearestRank(t *testing.T) {
	var l Latencies
	for i := 100; i >= 1; i-- { // unsorted on purpose
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	s := l.Summarize()
	want := map[string][2]time.Duration{
		"p50":   {s.P50, 50 * time.Millisecond},
		"p90":   {s.P90, 90 * time.Millisecond},
		"p99":   {s.P99, 99 * time.Millisecond},
		"p99.9": {s.P999, 100 * time.Millisecond}, // rank ceil(99.9) = 100
		"max":   {s.Max, 100 * time.Millisecond},
		"mean":  {s.Mean, 50500 * time.Microsecond},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
	if s.N != 100 {
		t.Errorf("N = %d, want 100", s.N)
	}
}

func TestPercentileSmallSets(t *testing.T) {
	if got := (Latencies{}).Summarize(); got != (Summary{}) {
		t.Errorf("empty set: %+v, want zero", got)
	}
	one := Latencies{7}
	if s := one.Summarize(); s.P50 != 7 || s.P999 != 7 || s.Max != 7 {
		t.Errorf("one sample: %+v", s)
	}
	two := Latencies{3, 1}
	two.Summarize()
	if p := two.Percentile(50); p != 1 {
		t.Errorf("p50 of {1,3} = %v, want 1 (nearest rank)", p)
	}
	if p := two.Percentile(51); p != 3 {
		t.Errorf("p51 of {1,3} = %v, want 3", p)
	}
}

// The nearest-rank percentile of a shuffled set must be the value that
// has exactly that many samples at or below it.
func TestPercentileMatchesRank(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	l := make(Latencies, 1000)
	for i := range l {
		l[i] = time.Duration(i + 1)
	}
	r.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	s := l.Summarize()
	if s.P50 != 500 || s.P90 != 900 || s.P99 != 990 || s.P999 != 999 {
		t.Errorf("summary %+v, want p50 500, p90 900, p99 990, p99.9 999", s)
	}
}

func TestRatio(t *testing.T) {
	if r := ratio(3, 2); !r.Valid() || r.String() != "1.50x" {
		t.Errorf("ratio(3,2) = %v", r)
	}
	for _, r := range []Ratio{ratio(1, 0), noRatio} {
		if r.Valid() || r.String() != "-" {
			t.Errorf("no-baseline ratio = %v, valid %v", r, r.Valid())
		}
		b, err := json.Marshal(struct{ R Ratio }{r})
		if err != nil || string(b) != `{"R":null}` {
			t.Errorf("json = %s, %v; want null", b, err)
		}
	}
}

func TestCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_xadd:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_publish:calls=5,usec=1\r\ncmdstat_info:calls=9,usec=1\r\n"
	before := redisSnapshot{Calls: map[string]int64{"xadd": 2, "info": 1}}
	after := redisSnapshot{Calls: parseCommandStats(info)}
	d := callsSince(before, after)
	if d["xadd"] != 10 || d["publish"] != 5 || len(d) != 2 {
		t.Errorf("delta = %v, want xadd 10, publish 5, info left out", d)
	}
	if v, ok := infoField("# Memory\r\nused_memory:1234\r\nused_memory_human:1K\r\n", "used_memory"); !ok || v != "1234" {
		t.Errorf("used_memory = %q, %v", v, ok)
	}
}

func TestLineSplitter(t *testing.T) {
	var s lineSplitter
	s.add([]byte("flood 000001 x\r\nflood 0000"))
	if got := s.take(); len(got) != 1 || got[0] != "flood 000001 x" {
		t.Fatalf("first = %q", got)
	}
	s.add([]byte("02 y\nbench"))
	got := s.take()
	if len(got) != 1 || got[0] != "flood 000002 y" {
		t.Fatalf("second = %q", got)
	}
	if n, ok := floodNumber(got[0]); !ok || n != 2 {
		t.Errorf("floodNumber = %d, %v", n, ok)
	}
	if _, ok := floodNumber("bench 1 2 3"); ok {
		t.Error("floodNumber accepted a bench line")
	}
}

func TestValidPrefix(t *testing.T) {
	e := []byte("caf\xc3\xa9") // café
	for cut, want := range map[int]int{5: 5, 4: 3, 3: 3} {
		if got := validPrefix(e[:cut]); got != want {
			t.Errorf("validPrefix(%q) = %d, want %d", e[:cut], got, want)
		}
	}
	euro := []byte("\xe2\x82\xac")
	if got := validPrefix(euro[:2]); got != 0 {
		t.Errorf("validPrefix(half a euro) = %d, want 0", got)
	}
}

func TestComponentOf(t *testing.T) {
	for fn, want := range map[string]string{
		modulePath + "edge.(*client).writeLoop":              CompEdge,
		modulePath + "edge/auth.(*Verifier).Verify":          CompEdge,
		modulePath + "worker/telnet.(*Decoder).Write":        CompWorker,
		modulePath + "controller.(*Controller).Run":          CompWorker,
		modulePath + "internal/demogame.(*session).run":      CompGame,
		modulePath + "internal/bench.readEchoes":             CompClient,
		modulePath + "store.(*Store).AppendOutputs":          "",
		"net/http.(*conn).serve":                             CompEdge,
		"github.com/redis/go-redis/v9.(*baseClient).Process": "",
	} {
		if got := component(fn); got != want {
			t.Errorf("component(%s) = %q, want %q", fn, got, want)
		}
	}
}

func TestEchoPeriodKeepsTheOfferedRate(t *testing.T) {
	for _, c := range []struct {
		n, rate int
		want    time.Duration
	}{
		{100, 1000, time.Second}, {1000, 1000, time.Second}, {10_000, 1000, 10 * time.Second},
		{3000, 2000, 1500 * time.Millisecond}, {10_000, 0, time.Second},
	} {
		if got := echoPeriod(c.n, c.rate); got != c.want {
			t.Errorf("echoPeriod(%d, %d) = %s, want %s", c.n, c.rate, got, c.want)
		}
	}
}
