package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// chanSeq keeps channel names unique across tests: pub/sub channels are
// shared by every logical database of the test server.
var chanSeq atomic.Int64

func newChannel(t *testing.T) string {
	return fmt.Sprintf("trellis:test:%s:%d", t.Name(), chanSeq.Add(1))
}

// recorder is a Handler that keeps everything it is told.
type recorder struct {
	mu        sync.Mutex
	msgs      map[string][]string
	recovered [][]string
}

func newRecorder() *recorder { return &recorder{msgs: make(map[string][]string)} }

func (r *recorder) Message(ch, p string) {
	r.mu.Lock()
	r.msgs[ch] = append(r.msgs[ch], p)
	r.mu.Unlock()
}

func (r *recorder) Recovered(chs []string) {
	r.mu.Lock()
	r.recovered = append(r.recovered, slices.Clone(chs))
	r.mu.Unlock()
}

func (r *recorder) got(ch string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs[ch])
}

func (r *recorder) has(ch, payload string) bool { return slices.Contains(r.got(ch), payload) }

// recoveredSet is every channel named by a Recovered call so far.
func (r *recorder) recoveredSet() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool)
	for _, chs := range r.recovered {
		for _, ch := range chs {
			out[ch] = true
		}
	}
	return out
}

// runSubscriber runs a subscriber of st until the test ends, and checks
// that Run returns and leaves no goroutine behind.
func runSubscriber(t *testing.T, st *Store, opt SubscriberOptions) (*Subscriber, *recorder) {
	t.Helper()
	sub, rec, start := newTestSubscriber(t, st, opt)
	start()
	return sub, rec
}

// newTestSubscriber is runSubscriber with the start of Run left to the
// caller.
func newTestSubscriber(t *testing.T, st *Store, opt SubscriberOptions) (*Subscriber, *recorder, func()) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	rec := newRecorder()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sub := st.NewSubscriber(rec, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var once sync.Once
	start := func() { once.Do(func() { go func() { done <- sub.Run(ctx) }() }) }
	t.Cleanup(func() {
		start()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancel")
		}
		if err := sub.Subscribe(context.Background(), "after-run"); !errors.Is(err, ErrSubscriberClosed) {
			t.Errorf("Subscribe after Run = %v, want ErrSubscriberClosed", err)
		}
		goleak.VerifyNone(t, ignore,
			// A test's proxy outlives its subscriber (it is closed later).
			goleak.IgnoreAnyFunction("github.com/trellis-mud/trellis/store.(*tcpProxy).pipe"),
			goleak.IgnoreAnyFunction("github.com/trellis-mud/trellis/store.(*tcpProxy).accept"),
			// A redis-server the test restarted is waited for by redistest.
			goleak.IgnoreAnyFunction("github.com/trellis-mud/trellis/internal/redistest.launch.func1"),
			// go-redis retries a failed pool dial in the background (the
			// test's own cluster client, after a kill); it ends with its
			// client.
			goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
	})
	return sub, rec, start
}

// tLogWriter sends the subscriber's log to the test's.
type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func subscribe(t *testing.T, sub *Subscriber, ch string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
}

// numSub is how many clients Redis has subscribed to ch.
func numSub(t *testing.T, rdb redis.UniversalClient, ch string, sharded bool) int64 {
	t.Helper()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		// PUBSUB has no key: ask the node that owns the channel's slot.
		node, err := cc.MasterForKey(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		rdb, sharded = node, true
	}
	var (
		m   map[string]int64
		err error
	)
	if sharded {
		m, err = rdb.PubSubShardNumSub(context.Background(), ch).Result()
	} else {
		m, err = rdb.PubSubNumSub(context.Background(), ch).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	return m[ch]
}

func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":     0x31C3, // the CRC16/XMODEM check value
		"foo":           12182,
		"{foo}.bar":     12182,
		"x{foo}y{bar}":  12182,
		"foo{}{bar}":    keySlot("foo{}{bar}"), // an empty tag: the whole key
		"{user1000}.a":  keySlot("user1000"),
		"trellis:{w:a}": keySlot("w:a"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("foo{}{bar}") == keySlot("bar") {
		t.Error("an empty hash tag must not make the next one count")
	}
	k := SessionKey{User: "u", Game: "g"}
	ks := newKeyspace(DefaultNamespace)
	if keySlot(ks.OutputChannel(k)) != keySlot(ks.lease(k)) {
		t.Error("the output channel must share its session's slot")
	}
}

// Subscribe returns only once Redis holds the subscription: a PUBLISH right
// after it reaches the subscriber, every time.
func TestSubscribeConfirmedBeforeReturn(t *testing.T) {
	st, rdb := newStore(t)
	sub, rec := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	var chans []string
	for i := range 200 {
		ch := newChannel(t)
		chans = append(chans, ch)
		subscribe(t, sub, ch)
		n, err := testPublish(ctx, rdb, ch, fmt.Sprint(i)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("publish right after Subscribe of channel %d reached %d subscribers, want 1", i, n)
		}
	}
	eventually(t, "every message arrives", func() bool {
		for i, ch := range chans {
			if !rec.has(ch, fmt.Sprint(i)) {
				return false
			}
		}
		return true
	})
	if got := rec.recoveredSet(); len(got) != 0 {
		t.Errorf("Recovered without any loss: %v", got)
	}
}

// The store's own publishers reach it: the append script's PUBLISH and
// SendInput.
func TestSubscriberGetsOutputAndInput(t *testing.T) {
	st, _ := newStore(t)
	sub, rec := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	key := SessionKey{User: newChannel(t), Game: "g"}
	subscribe(t, sub, st.OutputChannel(key))
	worker := newChannel(t)
	subscribe(t, sub, st.InputChannel(worker))

	id, err := st.AppendOutput(ctx, key, Output{Kind: OutText, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendInput(ctx, worker, Command{Type: CmdInput, User: key.User, Game: key.Game, Text: "look", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "output and input arrive", func() bool {
		return len(rec.got(st.OutputChannel(key))) == 1 && len(rec.got(st.InputChannel(worker))) == 1
	})
	o, err := ParseOutputMessage(rec.got(st.OutputChannel(key))[0])
	if err != nil || o.ID != id || o.Text != "hello" {
		t.Fatalf("output message = %+v, %v; want id %s", o, err, id)
	}
	c, err := ParseInput(rec.got(st.InputChannel(worker))[0])
	if err != nil || c.Text != "look" {
		t.Fatalf("input = %+v, %v", c, err)
	}
}

// Many goroutines subscribing many channels at once: each is confirmed,
// each is held once by Redis, each message arrives once.
func TestSubscribeManyConcurrently(t *testing.T) {
	st, rdb := newStore(t)
	sub, rec := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	const workers, each = 20, 50
	chans := make([]string, workers*each)
	for i := range chans {
		chans[i] = newChannel(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(chans))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ch := range chans[w*each : (w+1)*each] {
				if err := sub.Subscribe(ctx, ch); err != nil {
					errs <- err
					return
				}
				// A second subscriber of the same channel is counted,
				// not sent again.
				if err := sub.Subscribe(ctx, ch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, ch := range chans {
		if n := testPublish(ctx, rdb, ch, fmt.Sprint(i)).Val(); n != 1 {
			t.Fatalf("publish on %s reached %d subscribers, want 1", ch, n)
		}
	}
	eventually(t, "every message arrives", func() bool {
		for _, ch := range chans {
			if len(rec.got(ch)) != 1 {
				return false
			}
		}
		return true
	})

	// One Unsubscribe of two keeps the channel; the second lets it go.
	for _, ch := range chans {
		sub.Unsubscribe(ch)
	}
	for i, ch := range chans {
		if n := testPublish(ctx, rdb, ch, fmt.Sprint(i)).Val(); n != 1 {
			t.Fatalf("after one of two Unsubscribes, publish on %s reached %d, want 1", ch, n)
		}
	}
	for _, ch := range chans {
		sub.Unsubscribe(ch)
		sub.Unsubscribe(ch) // one too many: ignored
	}
	eventually(t, "every channel unsubscribed in Redis", func() bool {
		for _, ch := range chans[:10] {
			if numSub(t, rdb, ch, false) != 0 {
				return false
			}
		}
		return numSub(t, rdb, chans[len(chans)-1], false) == 0
	})
	eventually(t, "nothing tracked once every UNSUBSCRIBE is confirmed", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		for _, n := range sub.nodes {
			if len(n.wire) > 0 {
				return false
			}
		}
		return len(sub.chans) == 0
	})
}

// The race the hub once handled with unsubPending: an Unsubscribe and a
// Subscribe of the same channel in quick succession must not let the
// Subscribe return on the confirmation of an earlier subscribe that the
// UNSUBSCRIBE in flight is about to undo.
func TestUnsubscribeResubscribeRace(t *testing.T) {
	st, rdb := newStore(t)
	sub, _ := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	ch := newChannel(t)
	subscribe(t, sub, ch)
	for i := range 300 {
		sub.Unsubscribe(ch)
		switch i % 3 {
		case 1:
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond) // let the UNSUBSCRIBE go out, or not
		case 2:
			runtimeYield()
		}
		subscribe(t, sub, ch)
		if n := testPublish(ctx, rdb, ch, "x").Val(); n != 1 {
			t.Fatalf("round %d: publish right after re-Subscribe reached %d subscribers, want 1", i, n)
		}
	}

	// The same from many goroutines: each holds the channel between its
	// Subscribe and Unsubscribe, and finds it subscribed in Redis then.
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := sub.Subscribe(ctx, ch); err != nil {
					bad.Add(1)
					return
				}
				if testPublish(ctx, rdb, ch, "y").Val() != 1 {
					bad.Add(1)
				}
				sub.Unsubscribe(ch)
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d subscriptions were not held by Redis while Subscribe said so", bad.Load())
	}
	sub.Unsubscribe(ch)
	eventually(t, "the channel unsubscribed", func() bool { return numSub(t, rdb, ch, false) == 0 })
}

// testPublish publishes as the store would on rdb: a shard channel message
// on a cluster, a plain one on a single node. It returns the receivers.
func testPublish(ctx context.Context, rdb redis.UniversalClient, ch, msg string) *redis.IntCmd {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return rdb.SPublish(ctx, ch, msg)
	}
	return rdb.Publish(ctx, ch, msg)
}

// testSubscribe subscribes a raw client as the store's subscriber would.
func testSubscribe(ctx context.Context, rdb redis.UniversalClient, ch string) *redis.PubSub {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return rdb.SSubscribe(ctx, ch)
	}
	return rdb.Subscribe(ctx, ch)
}

func runtimeYield() { time.Sleep(0) }

// The same race made slow enough to see: each command reaches Redis 30 ms
// after the one before. A subscribe whose waiter gave up is followed by an
// UNSUBSCRIBE and a new SUBSCRIBE; the first one's confirmation comes back
// while the UNSUBSCRIBE has yet to run. A Subscribe returning on it would
// leave a window in which Redis holds no subscription: every PUBLISH after
// Subscribe returns must reach the subscriber.
func TestStaleConfirmationIgnored(t *testing.T) {
	st, proxy, direct := proxiedStore(t)
	sub, _ := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	subscribe(t, sub, newChannel(t)) // the connection is up
	proxy.setDelayUp(30 * time.Millisecond)
	for round := range 3 {
		ch := newChannel(t)
		early, cancel := context.WithTimeout(ctx, time.Millisecond)
		if err := sub.Subscribe(early, ch); err == nil {
			t.Fatal("confirmed within 1 ms through a 30 ms proxy")
		}
		cancel()
		time.Sleep(2 * time.Millisecond) // the SUBSCRIBE is out
		sub.Unsubscribe(ch)
		time.Sleep(2 * time.Millisecond) // the UNSUBSCRIBE is out
		subscribe(t, sub, ch)
		for i := range 10 {
			if n := direct.Publish(ctx, ch, "x").Val(); n != 1 {
				t.Fatalf("round %d: publish %d after Subscribe returned reached %d subscribers, want 1", round, i, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sub.Unsubscribe(ch)
	}
}

// A Redis restart loses every subscription; the subscriber reconnects,
// subscribes again, and reports the channels recovered only once Redis
// confirmed them (a viewer re-reading its stream then misses nothing).
func TestSubscriberSurvivesRedisRestart(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	rdb := srv.Client(t)
	st := New(rdb)
	var errs atomic.Int64
	sub, rec := runSubscriber(t, st, SubscriberOptions{OnError: func(error) { errs.Add(1) }})
	ctx := testContext(t)
	chans := []string{newChannel(t), newChannel(t), newChannel(t)}
	for _, ch := range chans {
		subscribe(t, sub, ch)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Subscribed while Redis is away: not confirmed, but held.
	late := newChannel(t)
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := sub.Subscribe(sctx, late); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe with Redis down = %v, want a deadline error", err)
	}
	cancel()
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Recovered for every channel", func() bool {
		got := rec.recoveredSet()
		return got[chans[0]] && got[chans[1]] && got[chans[2]]
	})
	if rec.recoveredSet()[late] {
		t.Error("Recovered named a channel that was never confirmed")
	}
	for _, ch := range append(chans, late) {
		eventually(t, "a message after the restart arrives", func() bool {
			return testPublish(ctx, rdb, ch, "after").Val() == 1
		})
		eventually(t, "it is delivered", func() bool { return rec.has(ch, "after") })
	}
	if errs.Load() == 0 {
		t.Error("OnError was never told of the lost connection")
	}
}

// tcpProxy forwards connections to a Redis and can stop forwarding on the
// connections it holds, like a network that drops packets without a word.
type tcpProxy struct {
	ln       net.Listener
	target   string
	closed   atomic.Bool
	accepted atomic.Int64
	delayUp  atomic.Int64

	mu    sync.Mutex
	conns []*proxyConn
	wg    sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	holdUp         atomic.Bool // client to server
	holdDown       atomic.Bool // server to client
	// cutDown closes the connection when the next reply arrives from the
	// server, unread: Redis ran the commands, the client never hears so.
	cutDown atomic.Bool
}

// delayUp, when set, holds each chunk going to the server this long: the
// commands of one client reach Redis one by one, with time in between.
func (p *tcpProxy) setDelayUp(d time.Duration) { p.delayUp.Store(int64(d)) }

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.accepted.Add(1)
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pc, s, c, &pc.holdUp)
		go p.pipe(pc, c, s, &pc.holdDown)
	}
}

func (p *tcpProxy) pipe(pc *proxyConn, dst, src net.Conn, hold *atomic.Bool) {
	defer p.wg.Done()
	defer pc.client.Close()
	defer pc.server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && hold == &pc.holdDown && pc.cutDown.Load() {
			return
		}
		for hold.Load() && !p.closed.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if d := time.Duration(p.delayUp.Load()); d > 0 && hold == &pc.holdUp && n > 0 {
			// One command at a time (a command starts with '*' at the
			// start of a line; the test's payloads hold no such thing).
			for _, cmd := range splitCommands(buf[:n]) {
				time.Sleep(d)
				if _, werr := dst.Write(cmd); werr != nil {
					return
				}
			}
			n = 0
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func splitCommands(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 1; i < len(b); i++ {
		if b[i] == '*' && i >= 2 && b[i-2] == '\r' && b[i-1] == '\n' {
			out = append(out, b[start:i])
			start = i
		}
	}
	return append(out, b[start:])
}

// hold stops forwarding on the connections open now, in one or both
// directions; new connections are forwarded as usual.
func (p *tcpProxy) hold(up, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.holdUp.Store(up)
		c.holdDown.Store(down)
	}
}

// cutReplies makes the connections open now break as their next reply
// arrives; new connections are forwarded as usual.
func (p *tcpProxy) cutReplies() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.cutDown.Store(true)
	}
}

func (p *tcpProxy) close() {
	if p.closed.Swap(true) {
		return
	}
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.client.Close()
		c.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// proxiedStore is a store whose connections go through a proxy to the
// shared test server.
func proxiedStore(t *testing.T) (*Store, *tcpProxy, *redis.Client) {
	t.Helper()
	srv := redistest.Shared(t)
	p := startProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{
		Addr: p.addr(), Protocol: 2, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb), p, srv.Client(t)
}

// A connection that goes silent (half-open: nothing arrives, nothing
// errors) is pinged, then replaced; its channels are subscribed again on
// the new one and reported recovered.
func TestSilentConnectionReplaced(t *testing.T) {
	st, proxy, direct := proxiedStore(t)
	sub, rec := runSubscriber(t, st, SubscriberOptions{PingEvery: 100 * time.Millisecond})
	ctx := testContext(t)
	ch := newChannel(t)
	subscribe(t, sub, ch)
	proxy.hold(true, true)
	eventually(t, "Recovered after the silent connection was replaced", func() bool { return rec.recoveredSet()[ch] })
	if n := proxy.accepted.Load(); n < 2 {
		t.Fatalf("%d connections made through the proxy, want a second one", n)
	}
	// Redis still counts the old connection (it sees nothing wrong with
	// it either); what matters is that the message arrives, once.
	if n := direct.Publish(ctx, ch, "after").Val(); n < 1 {
		t.Fatalf("publish after the replacement reached %d subscribers", n)
	}
	eventually(t, "the message arrives", func() bool { return rec.has(ch, "after") })
	time.Sleep(50 * time.Millisecond)
	if got := rec.got(ch); len(got) != 1 {
		t.Fatalf("messages %q, want the one published after the replacement", got)
	}
}

// The same with Redis itself not answering (CLIENT PAUSE): the connection
// is replaced, and once Redis answers again, the channel is recovered.
func TestPausedRedisRecovered(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	rdb := srv.Client(t)
	st := New(rdb)
	sub, rec := runSubscriber(t, st, SubscriberOptions{PingEvery: 100 * time.Millisecond})
	ctx := testContext(t)
	ch := newChannel(t)
	subscribe(t, sub, ch)
	admin := srv.Client(t)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 1500, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Recovered once Redis answers again", func() bool { return rec.recoveredSet()[ch] })
	eventually(t, "a message arrives", func() bool {
		admin.Publish(ctx, ch, "after")
		return rec.has(ch, "after")
	})
}

// A subscribe that Redis does not answer holds up nothing else: messages
// of subscribed channels keep arriving while it waits (the edge's fan-out
// used to stop behind a SUBSCRIBE under its lock). After two ping intervals
// unanswered the connection is replaced and the subscribe goes through.
func TestHangingSubscribeDoesNotStopDelivery(t *testing.T) {
	st, proxy, direct := proxiedStore(t)
	sub, rec := runSubscriber(t, st, SubscriberOptions{PingEvery: 2 * time.Second})
	ctx := testContext(t)
	live, stuck := newChannel(t), newChannel(t)
	subscribe(t, sub, live)
	proxy.hold(true, false) // what the subscriber sends goes nowhere; what Redis sends arrives

	done := make(chan error, 1)
	go func() { done <- sub.Subscribe(ctx, stuck) }()
	for i := range 10 {
		p := fmt.Sprint(i)
		if n := direct.Publish(ctx, live, p).Val(); n != 1 {
			t.Fatalf("publish %d reached %d subscribers", i, n)
		}
		eventually(t, "delivery while a subscribe hangs", func() bool { return rec.has(live, p) })
		select {
		case err := <-done:
			t.Fatalf("Subscribe returned (%v) while Redis could not have seen it", err)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck subscribe never went through on a new connection")
	}
	if n := direct.Publish(ctx, stuck, "now").Val(); n != 1 {
		t.Fatalf("publish on the once-stuck channel reached %d", n)
	}
	eventually(t, "the live channel recovered on the new connection", func() bool { return rec.recoveredSet()[live] })
	eventually(t, "and it is delivered", func() bool { return rec.has(stuck, "now") })
}

// Sharded pub/sub, as on a cluster, exercised on a single node (Redis 7
// has shard channels without cluster mode too): channels of many slots,
// SSUBSCRIBE one slot per command, the append script's SPUBLISH and
// SendInput's.
func TestShardedOnOneNode(t *testing.T) {
	st, rdb := newStore(t)
	st.sharded = true
	sub, rec := runSubscriber(t, st, SubscriberOptions{})
	if !sub.Sharded() {
		t.Fatal("not sharded")
	}
	ctx := testContext(t)
	var chans []string
	slotsSeen := map[int]bool{}
	for range 100 {
		ch := newChannel(t)
		chans = append(chans, ch)
		slotsSeen[keySlot(ch)] = true
	}
	if len(slotsSeen) < 50 {
		t.Fatalf("test channels span only %d slots", len(slotsSeen))
	}
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() { defer wg.Done(); subscribe(t, sub, ch) }()
	}
	wg.Wait()
	for i, ch := range chans {
		if n := rdb.SPublish(ctx, ch, fmt.Sprint(i)).Val(); n != 1 {
			t.Fatalf("SPUBLISH on %s reached %d, want 1", ch, n)
		}
		if n := rdb.Publish(ctx, ch, "plain").Val(); n != 0 {
			t.Fatalf("plain PUBLISH on a shard channel reached %d, want 0", n)
		}
	}
	eventually(t, "every sharded message arrives", func() bool {
		for _, ch := range chans {
			if len(rec.got(ch)) != 1 {
				return false
			}
		}
		return true
	})

	key := SessionKey{User: newChannel(t), Game: "g"}
	subscribe(t, sub, st.OutputChannel(key))
	worker := newChannel(t)
	subscribe(t, sub, st.InputChannel(worker))
	id, err := st.AppendOutput(ctx, key, Output{Kind: OutText, Text: "sharded"})
	if err != nil {
		t.Fatal(err)
	}
	gap, err := st.AppendLostGap(ctx, key, 1, "w", 10)
	if !errors.Is(err, ErrFenceNotIssued) {
		t.Fatalf("lost gap without a fence = %q, %v", gap, err)
	}
	l, err := st.AcquireLease(ctx, key, "w", "s", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if gap, err = st.AppendLostGap(ctx, key, l.Fence, "w", 10); err != nil || gap == "" {
		t.Fatalf("lost gap = %q, %v", gap, err)
	}
	if err := st.SendInput(ctx, worker, Command{Type: CmdInput, User: key.User, Game: key.Game, Text: "x", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "script SPUBLISH and SendInput arrive", func() bool {
		return len(rec.got(st.OutputChannel(key))) == 2 && len(rec.got(st.InputChannel(worker))) == 1
	})
	o, _ := ParseOutputMessage(rec.got(st.OutputChannel(key))[0])
	if o.ID != id {
		t.Fatalf("output id %s, want %s", o.ID, id)
	}
	sub.Unsubscribe(st.InputChannel(worker))
	eventually(t, "SUNSUBSCRIBE", func() bool { return numSub(t, rdb, st.InputChannel(worker), true) == 0 })
	if err := st.SendInput(ctx, worker, Command{Type: CmdInput, User: key.User, Game: key.Game, Text: "x", Fence: 1}); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("SendInput with nobody subscribed = %v, want ErrNoReceiver", err)
	}
}

func TestRunTwice(t *testing.T) {
	st, _ := newStore(t)
	sub, _ := runSubscriber(t, st, SubscriberOptions{})
	eventually(t, "Run started", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.running
	})
	if err := sub.Run(context.Background()); err == nil {
		t.Fatal("a second Run did not fail")
	}
}

func TestHandlerFuncs(t *testing.T) {
	var got []string
	h := HandlerFuncs{OnMessage: func(ch, p string) { got = append(got, ch+"="+p) }}
	h.Message("a", "b")
	h.Recovered([]string{"a"}) // nil OnRecovered: nothing happens
	HandlerFuncs{}.Message("x", "y")
	if !slices.Equal(got, []string{"a=b"}) {
		t.Fatalf("got %v", got)
	}
}

// Redis refusing a subscribe (here an ACL: the user may not use the
// channel) fails that channel alone: the replies stay matched to their
// commands, the connection's other channels keep working, a channel sent
// in the same command as the refused one is confirmed on a retry of its
// own, and the refused one is tried again after a pause.
func TestRefusedSubscribe(t *testing.T) {
	srv := redistest.Shared(t)
	admin := srv.Client(t)
	ctx := testContext(t)
	user := fmt.Sprintf("limited%d", chanSeq.Add(1))
	allowed := "trellis:test:allowed:" + user
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", "nopass", "~*", "resetchannels", "&"+allowed+":*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	rdb := redis.NewClient(&redis.Options{
		Addr: srv.Addr, Username: user, Password: "any", Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { rdb.Close() })
	var refusals atomic.Int64
	sub, rec, start := newTestSubscriber(t, New(rdb), SubscriberOptions{OnError: func(err error) {
		if strings.HasPrefix(err.Error(), "NOPERM") {
			refusals.Add(1)
		}
	}})

	// All three subscribed before Run: its first SUBSCRIBE names them all,
	// and Redis refuses it whole.
	first, second := allowed+":first", allowed+":second"
	denied := "trellis:test:denied:" + user
	sctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	errs := make(chan error, 3)
	for _, ch := range []string{first, denied, second} {
		go func() { errs <- sub.Subscribe(sctx, ch) }()
	}
	eventually(t, "all three registered", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.chans) == 3
	})
	start()
	var failed int
	for range 3 {
		if err := <-errs; errors.Is(err, context.DeadlineExceeded) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if failed != 1 {
		t.Fatalf("%d subscribes not confirmed, want only the refused one", failed)
	}
	for _, ch := range []string{first, second} {
		if n := admin.Publish(ctx, ch, "ok").Val(); n != 1 {
			t.Fatalf("publish on %s reached %d", ch, n)
		}
	}
	eventually(t, "both allowed channels deliver", func() bool { return rec.has(first, "ok") && rec.has(second, "ok") })
	eventually(t, "the refused channel is tried again", func() bool { return refusals.Load() >= 2 })
	sub.Unsubscribe(denied)
	sub.Unsubscribe(first)
	eventually(t, "UNSUBSCRIBE still matched after the refusals", func() bool { return numSub(t, admin, first, false) == 0 })
	if n := admin.Publish(ctx, second, "still").Val(); n != 1 {
		t.Fatalf("publish on %s after the rest went reached %d", second, n)
	}
	if rec.recoveredSet()[second] {
		t.Error("a refusal of another channel reported this one recovered")
	}
}

// BenchmarkReceive is the receive path's cost per message: the subscriber
// against a bare go-redis receive loop like the one the edge's hub ran
// before it (ReceiveTimeout and a type switch). Messages are published in
// pipelines of 100 by another connection.
func BenchmarkReceive(b *testing.B) {
	for _, mode := range []string{"subscriber", "go-redis"} {
		b.Run(mode, func(b *testing.B) {
			rdb := redistestClient(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := fmt.Sprintf("trellis:bench:receive:%d", chanSeq.Add(1))
			var n atomic.Int64
			done := make(chan struct{})
			count := func() {
				if n.Add(1) == int64(b.N) {
					close(done)
				}
			}
			var wg sync.WaitGroup
			if mode == "subscriber" {
				sub := New(rdb).NewSubscriber(HandlerFuncs{OnMessage: func(string, string) { count() }}, SubscriberOptions{})
				wg.Add(1)
				go func() { defer wg.Done(); _ = sub.Run(ctx) }()
				if err := sub.Subscribe(ctx, ch); err != nil {
					b.Fatal(err)
				}
			} else {
				ps := rdb.Subscribe(ctx, ch)
				if _, err := ps.Receive(ctx); err != nil {
					b.Fatal(err)
				}
				context.AfterFunc(ctx, func() { ps.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						msg, err := ps.ReceiveTimeout(ctx, DefaultPingEvery)
						if err != nil {
							if ctx.Err() != nil {
								return
							}
							continue
						}
						if _, ok := msg.(*redis.Message); ok {
							count()
						}
					}
				}()
			}
			pub := redistestClient(b)
			payload := strings.Repeat("x", 200)
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				p := pub.Pipeline()
				for range min(100, b.N-sent) {
					p.Publish(ctx, ch, payload)
					sent++
				}
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.StopTimer()
			cancel()
			wg.Wait()
		})
	}
}
