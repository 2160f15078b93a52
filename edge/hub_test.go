package edge

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// subscribeProxy forwards connections to Redis and can stop forwarding
// what clients send on the connections that subscribed (pub/sub ones),
// while what Redis sends still arrives: a SUBSCRIBE that Redis never sees.
type subscribeProxy struct {
	ln     net.Listener
	target string
	hold   atomic.Bool
	closed atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startSubscribeProxy(t *testing.T, target string) *subscribeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &subscribeProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			var subscriber atomic.Bool
			p.wg.Add(2)
			go p.pipe(s, c, &subscriber, true)
			go p.pipe(c, s, &subscriber, false)
		}
	}()
	t.Cleanup(func() {
		p.closed.Store(true)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *subscribeProxy) pipe(dst, src net.Conn, subscriber *atomic.Bool, up bool) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if up && n > 0 && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
			subscriber.Store(true)
		}
		for up && subscriber.Load() && p.hold.Load() && !p.closed.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// While one hello waits for Redis to confirm its session's subscription,
// the hub goes on fanning out every other session's output: no SUBSCRIBE
// is sent or waited for under the lock the fan-out needs.
func TestFanOutContinuesWhileASubscribeWaits(t *testing.T) {
	direct := redistest.Client(t)
	proxy := startSubscribeProxy(t, redistest.Shared(t).Addr)
	proxied := redis.NewClient(&redis.Options{
		Addr: proxy.ln.Addr().String(), DB: direct.Options().DB, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { proxied.Close() })
	e := newEnvOn(t, proxied, nil)
	// Output is written past the proxy, as by a worker with its own
	// connection to Redis.
	writer := store.New(direct)
	ctx := context.Background()

	userA := newUser()
	keyA := store.SessionKey{User: userA, Game: "demo"}
	lease, err := writer.AcquireLease(ctx, keyA, "wA", "sA", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a := e.hello(userA, "demo", "")
	var seq uint64
	write := func(text string) {
		t.Helper()
		seq++
		if _, err := writer.AppendOutput(ctx, keyA, store.Output{
			Kind: store.OutText, Text: text, Fence: lease.Fence, Seq: seq, Worker: lease.Owner,
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(text string) {
		t.Helper()
		for {
			f, err := a.read(2 * time.Second)
			if err != nil {
				t.Fatalf("waiting for %q: %v", text, err)
			}
			if f.Type == "output" && f.Text == text {
				return
			}
		}
	}
	write("before\n")
	expect("before\n")

	proxy.hold.Store(true)
	b := e.dial(nil)
	b.send(map[string]any{"type": "hello", "game": "demo", "token": e.token(newUser()), "cols": 80, "rows": 24})
	waitFor(t, "the second hello to reach the hub", func() bool { return len(e.srv.hub.snapshot()) == 2 })
	for _, text := range []string{"one\n", "two\n", "three\n"} {
		write(text)
		expect(text)
	}
	if f, err := b.read(100 * time.Millisecond); err == nil {
		t.Fatalf("the second hello was answered (%+v) while Redis could not have seen its SUBSCRIBE", f)
	}
	b.conn.Close()
	proxy.hold.Store(false)
}
