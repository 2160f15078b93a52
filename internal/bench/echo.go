package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EchoResult is the round trip of typed lines at one client count.
type EchoResult struct {
	Target   string  `json:"target"`
	Clients  int     `json:"clients"`
	Latency  Summary `json:"latency"`
	Sent     int64   `json:"sent"`
	Received int64   `json:"received"`
	Lost     int64   `json:"lost"` // sent in the measured rounds, never echoed
	// ConnectFailed counts clients that never got a session.
	ConnectFailed int           `json:"connect_failed"`
	ConnectTime   time.Duration `json:"connect_ns"`
	// Period is the time between two lines of one client.
	Period time.Duration `json:"period_ns"`
	// Rate is the input lines per second actually sent.
	Rate float64 `json:"rate"`
	// VsDirect compares the p50 and p99 with the direct proxy at the same
	// client count.
	P50VsDirect Ratio  `json:"p50_vs_direct"`
	P99VsDirect Ratio  `json:"p99_vs_direct"`
	Error       string `json:"error,omitempty"`
}

// echoPlan is how an echo run paces its clients.
type echoPlan struct {
	clients  int
	rounds   int           // lines per client; round 0 warms up and is not measured
	period   time.Duration // between two lines of one client
	rate     int           // connects per second
	senders  int           // goroutines that write (each owns clients i%senders)
	deadline time.Time
	// afterConnect, when set, runs once every client is connected and
	// before any line is sent (the idle-memory measurement).
	afterConnect func(connected int)
}

// runEcho connects plan.clients clients to t; each sends one line per
// period, "bench <client> <round> <unixnano>", spread evenly over the
// period across clients, and times the echo.
func runEcho(ctx context.Context, t *Target, prefix string, plan echoPlan) EchoResult {
	res := EchoResult{Target: t.Name, Clients: plan.clients, Period: plan.period, P50VsDirect: noRatio, P99VsDirect: noRatio}
	start := time.Now()
	conns, failed, err := connectAll(ctx, t, prefix, plan.clients, plan.rate, plan.deadline)
	res.ConnectTime = time.Since(start)
	res.ConnectFailed = failed
	defer closeAll(conns)
	if err != nil && failed > plan.clients/100 {
		res.Error = fmt.Sprintf("%d of %d clients failed to connect; first: %v", failed, plan.clients, err)
		return res
	}
	if plan.afterConnect != nil {
		plan.afterConnect(plan.clients - failed)
	}

	// One reader per connection: gorilla's reads block, and a reader per
	// connection is also what a browser has.
	samples := make([]Latencies, len(conns))
	received := make([]int64, len(conns))
	var readers sync.WaitGroup
	for i, c := range conns {
		if c == nil {
			continue
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			samples[i], received[i] = readEchoes(c, i)
		}()
	}

	runCtx, cancel := context.WithDeadline(ctx, plan.deadline)
	defer cancel()
	sent := make([]int64, plan.senders)
	var senders sync.WaitGroup
	t0 := time.Now().Add(50 * time.Millisecond)
	for s := range plan.senders {
		senders.Add(1)
		go func() {
			defer senders.Done()
			sent[s] = sendRounds(runCtx, conns, s, plan, t0)
		}()
	}
	senders.Wait()
	sendSpan := time.Since(t0)

	// Give the last lines time to come back, then close: that ends the
	// readers.
	_ = sleepUntil(runCtx, time.Now().Add(min(2*time.Second, time.Until(plan.deadline))))
	for _, c := range conns {
		if c != nil {
			c.ws.Close()
		}
	}
	readers.Wait()

	var all Latencies
	for i := range conns {
		all = append(all, samples[i]...)
		res.Received += received[i]
	}
	for _, n := range sent {
		res.Sent += n
	}
	measuredSent := res.Sent - int64(plan.clients-failed) // round 0 is not measured
	res.Lost = max(0, measuredSent-int64(len(all)))
	res.Latency = all.Summarize()
	res.Rate = float64(res.Sent) / sendSpan.Seconds()
	return res
}

// sendRounds is one sender goroutine: it owns the clients i with
// i%senders == s and sends their lines at their slot in each period.
func sendRounds(ctx context.Context, conns []*conn, s int, plan echoPlan, t0 time.Time) int64 {
	var sent int64
	dead := make(map[int]bool)
	slot := plan.period / time.Duration(max(len(conns), 1))
	for r := range plan.rounds {
		for i := s; i < len(conns); i += plan.senders {
			c := conns[i]
			if c == nil || dead[i] {
				continue
			}
			if sleepUntil(ctx, t0.Add(time.Duration(r)*plan.period+time.Duration(i)*slot)) != nil {
				return sent
			}
			line := "bench " + strconv.Itoa(i) + " " + strconv.Itoa(r) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
			if c.send(line) != nil {
				dead[i] = true // gone: its reader has ended too
				continue
			}
			sent++
		}
	}
	return sent
}

// readEchoes reads until the connection closes, timing every echo of this
// client's measured lines.
func readEchoes(c *conn, id int) (Latencies, int64) {
	var (
		lat  Latencies
		recv int64
	)
	want := "bench " + strconv.Itoa(id) + " "
	for {
		f, err := c.next()
		if err != nil {
			return lat, recv
		}
		if f.Type != "output" {
			continue
		}
		now := time.Now()
		for _, line := range c.lines.take() {
			rest, ok := strings.CutPrefix(line, want)
			if !ok {
				continue
			}
			round, ts, ok := strings.Cut(rest, " ")
			if !ok {
				continue
			}
			recv++
			ns, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || round == "0" {
				continue
			}
			lat = append(lat, now.Sub(time.Unix(0, ns)))
		}
	}
}
