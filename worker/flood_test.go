package worker

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
)

// A game flooding far faster than one session's writes to Redis must lose
// nothing while Redis is healthy: the session stops reading (TCP flow
// control slows the game) instead of dropping output. The outbox is kept
// tiny here so the flood is many times what it may hold.
func TestFloodLosesNothingWhileRedisIsHealthy(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	// The stream must keep the whole flood for the count below.
	e.st = store.New(e.rdb, store.WithNamespace(e.ns), store.WithOutputMaxBytes(64<<20))
	cfg := testConfig()
	cfg.FlushBytes = 4096
	cfg.SessionBuffer = backpressureFactor * cfg.FlushBytes
	cfg.OutputRate = -1 // the pipeline, not the rate cap, is under test
	e.startWorker(cfg)
	u := e.user("flood")
	e.attach(u, "v1", "", "")
	e.login(u, "Flo", "secret")

	const lines = 20000 // 20000 x 200 bytes = 4 MB through a 16 KiB outbox
	e.input(u, "flood "+strconv.Itoa(lines)+" 200")
	last := "flood " + strconv.Itoa(1000000 + lines)[1:]
	waitFor(t, 60*time.Second, "the last flood line", func() bool {
		outs, err := e.st.OutputRange(e.ctx, key(u), "-", "+", 100000)
		if err != nil {
			t.Fatal(err)
		}
		return len(outs) > 0 && regexp.MustCompile(last).MatchString(text(outs[max(0, len(outs)-5):]))
	})
	outs := e.outputs(u)
	// Entries split the text anywhere, a line included: join it first.
	var all strings.Builder
	for _, o := range outs {
		if o.Kind == store.OutGap {
			t.Errorf("gap entry while Redis was healthy: %s", o.Text)
		}
		if o.Kind == store.OutText {
			all.WriteString(o.Text)
		}
	}
	seen := make(map[int]int, lines)
	re := regexp.MustCompile(`flood (\d{6})`)
	for _, m := range re.FindAllStringSubmatch(all.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		seen[n]++
	}
	for i := 1; i <= lines; i++ {
		if seen[i] != 1 {
			t.Fatalf("flood line %d seen %d times, want exactly once", i, seen[i])
		}
	}
}
