package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeaseExclusiveUnderContention races many workers for one (user, game):
// at no moment may two of them believe they hold the lease, and every new
// holder must see a fence greater than all before it.
func TestLeaseExclusiveUnderContention(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "alice", Game: "dune"}
	const workers, rounds = 50, 200

	var (
		holders   atomic.Int32
		mu        sync.Mutex
		lastFence int64
		acquired  int64
		wg        sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("worker-%d", w)
			for r := range rounds {
				l, err := s.AcquireLease(ctx, key, owner, fmt.Sprintf("s-%d-%d", w, r), 30*time.Second)
				if errors.Is(err, ErrLeaseHeld) {
					if l.Owner == owner || l.Owner == "" || l.Fence == 0 {
						errs <- fmt.Errorf("%s: held lease reported as %+v", owner, l)
						return
					}
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if n := holders.Add(1); n != 1 {
					errs <- fmt.Errorf("%s: %d holders at once (fence %d)", owner, n, l.Fence)
					return
				}
				mu.Lock()
				if l.Fence <= lastFence {
					errs <- fmt.Errorf("%s: fence %d after fence %d", owner, l.Fence, lastFence)
				}
				lastFence = l.Fence
				acquired++
				mu.Unlock()

				// Hold briefly: one round trip that must see us as the holder.
				cur, ok, err := s.GetLease(ctx, key)
				if err != nil || !ok || cur.Owner != owner || cur.Fence != l.Fence || cur.Session != l.Session {
					errs <- fmt.Errorf("%s: while holding fence %d, lease reads %+v ok=%v err=%v", owner, l.Fence, cur, ok, err)
				}
				// Leave the holder count before releasing: the next holder
				// may acquire the moment the release lands.
				holders.Add(-1)
				if err := s.ReleaseLease(ctx, l); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if acquired == 0 {
		t.Fatal("no worker ever acquired the lease")
	}
	// Every acquire, and nothing else, bumps the fence counter.
	fence, err := rdb.Get(ctx, s.ks.fence(key)).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if fence != acquired || fence != lastFence {
		t.Errorf("fence counter %d, last fence %d, %d acquisitions: want all equal", fence, lastFence, acquired)
	}
	if l, ok, err := s.GetLease(ctx, key); err != nil || ok {
		t.Errorf("after all released: lease %+v ok=%v err=%v, want none", l, ok, err)
	}
	t.Logf("%d acquisitions in %d attempts", acquired, workers*rounds)
}

func TestLeaseAcquireHeldAndGet(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_123)
	s, _ := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)
	key := SessionKey{User: "bob", Game: "moo"}

	if _, ok, err := s.GetLease(ctx, key); err != nil || ok {
		t.Fatalf("GetLease before any acquire: ok=%v err=%v", ok, err)
	}
	a, err := s.AcquireLease(ctx, key, "w1", "sess-1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Lease{Key: key, Owner: "w1", Session: "sess-1", Fence: 1, Acquired: at, Renewed: at}
	if a != want {
		t.Errorf("acquired %+v, want %+v", a, want)
	}
	got, ok, err := s.GetLease(ctx, key)
	if err != nil || !ok {
		t.Fatalf("GetLease: ok=%v err=%v", ok, err)
	}
	if !got.Acquired.Equal(at) || !got.Renewed.Equal(at) || got.Owner != "w1" || got.Session != "sess-1" || got.Fence != 1 {
		t.Errorf("GetLease = %+v, want %+v", got, want)
	}

	held, err := s.AcquireLease(ctx, key, "w2", "sess-2", 10*time.Second)
	if !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second acquire: err=%v, want ErrLeaseHeld", err)
	}
	if held.Owner != "w1" || held.Session != "sess-1" || held.Fence != 1 || held.Key != key {
		t.Errorf("held lease reported as %+v, want w1/sess-1 fence 1", held)
	}
	// The holder itself acquiring again is refused too: a lease is not
	// re-entrant, a second session must not start beside the first.
	if _, err := s.AcquireLease(ctx, key, "w1", "sess-3", 10*time.Second); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("re-acquire by holder: err=%v, want ErrLeaseHeld", err)
	}
}

func TestLeaseExpiryAndTakeover(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "carol", Game: "dune"}

	a, err := s.AcquireLease(ctx, key, "A", "sa", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var b Lease
	eventually(t, "B takes over the expired lease", func() bool {
		l, err := s.AcquireLease(ctx, key, "B", "sb", 30*time.Second)
		if errors.Is(err, ErrLeaseHeld) {
			if l.Owner != "A" {
				t.Fatalf("lease held by %q, want A", l.Owner)
			}
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		b = l
		return true
	})
	if b.Fence <= a.Fence {
		t.Errorf("takeover fence %d, want more than %d", b.Fence, a.Fence)
	}

	// The old holder learns it lost the lease, and cannot disturb the new one.
	if _, err := s.RenewLease(ctx, a, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew after loss: err=%v, want ErrLeaseLost", err)
	}
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Errorf("release by non-holder: %v", err)
	}
	cur, ok, err := s.GetLease(ctx, key)
	if err != nil || !ok || cur.Owner != "B" || cur.Fence != b.Fence {
		t.Fatalf("after stale release: lease %+v ok=%v err=%v, want B fence %d", cur, ok, err, b.Fence)
	}
	// Same owner name, old fence: still not the holder.
	if err := s.ReleaseLease(ctx, Lease{Key: key, Owner: "B", Fence: a.Fence}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RenewLease(ctx, Lease{Key: key, Owner: "B", Fence: a.Fence}, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew with right owner, old fence: err=%v, want ErrLeaseLost", err)
	}
	if _, ok, _ := s.GetLease(ctx, key); !ok {
		t.Fatal("a release with a stale fence removed the live lease")
	}
	if _, err := s.RenewLease(ctx, b, time.Minute); err != nil {
		t.Errorf("renew by holder: %v", err)
	}
}

func TestLeaseFenceIncreasesAcrossExpiryAndRelease(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "dave", Game: "moo"}

	a, err := s.AcquireLease(ctx, key, "A", "s1", 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "lease expires", func() bool {
		_, ok, err := s.GetLease(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return !ok
	})
	b, err := s.AcquireLease(ctx, key, "B", "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetLease(ctx, key); ok {
		t.Fatal("lease still there after its holder released it")
	}
	c, err := s.AcquireLease(ctx, key, "A", "s3", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !(a.Fence < b.Fence && b.Fence < c.Fence) {
		t.Errorf("fences %d, %d, %d: want strictly increasing", a.Fence, b.Fence, c.Fence)
	}
	// The counter itself must never expire, or fences would restart at 1.
	if ttl, err := rdb.PTTL(ctx, s.ks.fence(key)).Result(); err != nil || ttl != -1 {
		t.Errorf("fence counter ttl %v err=%v, want no expiry", ttl, err)
	}
}

func TestRenewLeasesReportsExactlyTheLost(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)

	if r, err := s.RenewLeases(ctx, nil, time.Minute, 0); err != nil || r.Lost != nil {
		t.Fatalf("renew nothing: %+v err=%v", r, err)
	}
	var leases []Lease
	for i := range 6 {
		l, err := s.AcquireLease(ctx, SessionKey{User: "eve", Game: fmt.Sprintf("g%d", i)}, "w1", fmt.Sprint("s", i), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	// g1: released. g3: released and taken by another worker. g4: the
	// caller's record carries a fence that is not the live one.
	if err := s.ReleaseLease(ctx, leases[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, leases[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, leases[3].Key, "w2", "other", time.Minute); err != nil {
		t.Fatal(err)
	}
	leases[4].Fence += 100

	r, err := s.RenewLeases(ctx, leases, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Restored) != 0 {
		t.Errorf("restored %v: a released lease must stay released", r.Restored)
	}
	var lostGames []string
	for _, l := range r.Lost {
		lostGames = append(lostGames, l.Key.Game)
	}
	if fmt.Sprint(lostGames) != "[g1 g3 g4]" {
		t.Errorf("lost %v, want [g1 g3 g4]", lostGames)
	}
	// The kept ones were really extended: from a 1 s TTL to a minute.
	for _, i := range []int{0, 2, 5} {
		ttl, err := rdb.PTTL(ctx, s.ks.lease(leases[i].Key)).Result()
		if err != nil || ttl <= 2*time.Second {
			t.Errorf("lease %s ttl %v err=%v after renew, want about a minute", leases[i].Key, ttl, err)
		}
	}
	if l, _, _ := s.GetLease(ctx, leases[3].Key); l.Owner != "w2" {
		t.Errorf("batch renew disturbed the new owner of g3: %+v", l)
	}
}

// TestRenewRestoresAForgottenLease plays what a failover to a replica that
// missed the last writes does to a lease: the lease (and perhaps the fence
// counter) is gone although the holder renewed it in time. The renewal
// brings it back with the same fence, unless someone may have held it since.
func TestRenewRestoresAForgottenLease(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	acquire := func(game string) Lease {
		t.Helper()
		l, err := s.AcquireLease(ctx, SessionKey{User: "fay", Game: game}, "w1", "s-"+game, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	forget := func(l Lease, counter int64) {
		t.Helper()
		if err := rdb.Del(ctx, s.ks.lease(l.Key)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, s.ks.fence(l.Key), counter, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// expired: the renewals were lost, the acquisition was not.
	expired := acquire("expired")
	forget(expired, expired.Fence)
	// unborn: the acquisition itself was lost (the counter went back).
	unborn := acquire("unborn")
	forget(unborn, 0)
	// taken: forgotten, then granted to another worker (fence 1) before
	// the old holder renewed; the new holder keeps it.
	taken := acquire("taken")
	forget(taken, 0)
	if _, err := s.AcquireLease(ctx, taken.Key, "w2", "other", time.Minute); err != nil {
		t.Fatal(err)
	}
	// passed: forgotten, and the counter is past the caller's fence: a
	// later holder existed, so the caller's tenure is over.
	passed := acquire("passed")
	forget(passed, passed.Fence+1)

	r, err := s.RenewLeases(ctx, []Lease{expired, unborn, taken, passed}, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	var restored, lost []string
	for _, l := range r.Restored {
		restored = append(restored, l.Key.Game)
	}
	for _, l := range r.Lost {
		lost = append(lost, l.Key.Game)
	}
	if fmt.Sprint(restored) != "[expired unborn]" || fmt.Sprint(lost) != "[taken passed]" {
		t.Fatalf("restored %v lost %v, want [expired unborn] and [taken passed]", restored, lost)
	}
	for _, l := range []Lease{expired, unborn} {
		cur, ok, err := s.GetLease(ctx, l.Key)
		if err != nil || !ok || cur.Owner != "w1" || cur.Fence != l.Fence || cur.Session != l.Session {
			t.Errorf("%s after restore: %+v ok=%v err=%v, want w1's lease, fence %d", l.Key, cur, ok, err, l.Fence)
		}
		if n, err := rdb.Get(ctx, s.ks.fence(l.Key)).Int64(); err != nil || n != l.Fence {
			t.Errorf("%s fence counter %d err=%v after restore, want %d: fences only go up", l.Key, n, err, l.Fence)
		}
		if ttl := rdb.PTTL(ctx, s.ks.lease(l.Key)).Val(); ttl <= 2*time.Second {
			t.Errorf("%s restored with ttl %v, want about a minute", l.Key, ttl)
		}
	}
	// A release on record wins over a renewal that was already in flight,
	// and the next acquisition still gets a greater fence.
	if err := s.ReleaseLease(ctx, unborn); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RenewLease(ctx, unborn, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew of a released lease: %v, want ErrLeaseLost", err)
	}
	if l, err := s.AcquireLease(ctx, unborn.Key, "w2", "next", time.Minute); err != nil || l.Fence <= unborn.Fence {
		t.Errorf("acquire after restored lease: fence %d err=%v, want more than %d", l.Fence, err, unborn.Fence)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	s := New(redistestClient(b))
	ctx := b.Context()
	key := SessionKey{User: "bench", Game: "g"}
	for b.Loop() {
		l, err := s.AcquireLease(ctx, key, "w", "s", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.ReleaseLease(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenewLeases100(b *testing.B) {
	s := New(redistestClient(b))
	ctx := b.Context()
	leases := make([]Lease, 100)
	for i := range leases {
		l, err := s.AcquireLease(ctx, SessionKey{User: "bench", Game: fmt.Sprint("g", i)}, "w", "s", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		leases[i] = l
	}
	for b.Loop() {
		if r, err := s.RenewLeases(ctx, leases, time.Minute, 0); err != nil || len(r.Lost) > 0 {
			b.Fatalf("%+v, err %v", r, err)
		}
	}
}

func TestGetLeasesBatch(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_000)
	s, _ := newStore(t, WithClock(newClock(at).Now))
	ctx := testContext(t)
	if got, err := s.GetLeases(ctx, nil); err != nil || got != nil {
		t.Fatalf("GetLeases(nil) = %v, %v", got, err)
	}
	held := SessionKey{User: "u:1", Game: "g"}
	free := SessionKey{User: "u:2", Game: "g"}
	l, err := s.AcquireLease(ctx, held, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLeases(ctx, []SessionKey{free, held, free})
	if err != nil || len(got) != 3 {
		t.Fatalf("GetLeases = %+v, %v", got, err)
	}
	if got[0].Live || got[2].Live || got[0].Lease.Key != free || got[0].Lease.Owner != "" {
		t.Errorf("free lease reported as %+v", got[0])
	}
	if !got[1].Live || got[1].Lease != l {
		t.Errorf("held lease reported as %+v, want %+v", got[1], l)
	}
}

// A renewal keeps the session's keys alive for keep: a worker that dies
// without cleaning up leaves no key without an expiry.
func TestRenewLeasesKeepsSessionKeys(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	key := SessionKey{User: "keeper", Game: "g"}
	l, err := s.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutGMCP, Package: "Char.Vitals", Data: []byte(`{"hp":1}`), Fence: l.Fence, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, key, Output{Kind: OutMSDP, Package: "HEALTH", Data: []byte(`"95"`), Fence: l.Fence, Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, SessionInfo{Key: key, Worker: "w1", Session: "s1", Fence: l.Fence}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.RenewLeases(ctx, []Lease{l}, time.Minute, 2*time.Hour); err != nil || len(r.Lost) != 0 {
		t.Fatalf("renew: %+v, %v", r, err)
	}
	for _, k := range []string{s.ks.out(key), s.ks.gmcp(key), s.ks.msdp(key), s.ks.session(key)} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
			t.Errorf("%s ttl %v after a renewal keeping 2h", k, ttl)
		}
	}
	// keep 0 leaves them alone.
	rdb.Persist(ctx, s.ks.out(key))
	if _, err := s.RenewLeases(ctx, []Lease{l}, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.ks.out(key)).Val(); ttl != -1 {
		t.Errorf("renewal with keep 0 set a ttl: %v", ttl)
	}
}
