package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLeaseHeld is returned by AcquireLease when another holder's lease is live.
var ErrLeaseHeld = errors.New("lease held by another worker")

// ErrLeaseLost is returned when a lease operation names a fence that is no
// longer the live one: it expired, was released, or was taken over.
var ErrLeaseLost = errors.New("lease lost")

// Lease is the ownership record of one (user, game).
type Lease struct {
	Key      SessionKey
	Owner    string // worker id
	Session  string // session id (one per game connection)
	Fence    int64  // only goes up for Key, across expiry
	Acquired time.Time
	Renewed  time.Time
	// Fence doubles as Kubernetes' leaseTransitions: every acquire
	// increments it.
}

// AcquireLease takes the lease of key for owner if nobody holds a live one.
// On success the returned lease carries a fence greater than any earlier
// fence of key. If the lease is held, the live holder's lease is returned
// with ErrLeaseHeld, so the caller can forward work to it.
func (s *Store) AcquireLease(ctx context.Context, key SessionKey, owner, session string, ttl time.Duration) (Lease, error) {
	now := s.now()
	res, err := acquireScript.Run(ctx, s.rdb,
		[]string{s.ks.lease(key), s.ks.fence(key)},
		owner, session, ttl.Milliseconds(), now.UnixMilli()).Slice()
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	if len(res) < 2 {
		return Lease{}, fmt.Errorf("acquire lease %s: unexpected reply %v", key, res)
	}
	fence, _ := res[1].(int64)
	if ok, _ := res[0].(int64); ok == 1 {
		return Lease{Key: key, Owner: owner, Session: session, Fence: fence, Acquired: now, Renewed: now}, nil
	}
	held := Lease{Key: key, Fence: fence}
	if len(res) >= 4 {
		held.Owner, _ = res[2].(string)
		held.Session, _ = res[3].(string)
	}
	return held, ErrLeaseHeld
}

// releasedKeep is how long a release stays on record against renewals in
// flight (lua/release.lua). A renewal round is bounded by a third of the
// lease TTL, so this covers any TTL up to half an hour.
const releasedKeep = 10 * time.Minute

// renewKeys are the keys renew.lua takes before the ones it keeps alive.
func (s *Store) renewKeys(k SessionKey) []string {
	return []string{s.ks.lease(k), s.ks.fence(k), s.ks.released(k)}
}

// renewArgs are renew.lua's ARGV for l.
func renewArgs(l Lease, ttl time.Duration, now int64, keep time.Duration) []any {
	return []any{l.Owner, l.Fence, ttl.Milliseconds(), now, keep.Milliseconds(), l.Session, l.Acquired.UnixMilli()}
}

// RenewLease extends a lease the caller holds, restoring it if Redis had
// forgotten it (restored; see RenewLeases for when that is safe). It
// fails with ErrLeaseLost if the lease expired or belongs to someone else
// now.
func (s *Store) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (restored bool, err error) {
	n, err := renewScript.Run(ctx, s.rdb, s.renewKeys(l.Key), renewArgs(l, ttl, s.now().UnixMilli(), 0)...).Int()
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", l.Key, err)
	}
	if n == 0 {
		return false, fmt.Errorf("renew lease %s fence %d: %w", l.Key, l.Fence, ErrLeaseLost)
	}
	return n == 2, nil
}

// Renewal is what one round of RenewLeases learned.
type Renewal struct {
	// Lost are the leases that are not the caller's any more: each must
	// stop its session.
	Lost []Lease
	// Restored are leases Redis had forgotten although nobody can have
	// held them since (writes lost in a failover to a replica that had not
	// received them, or a restore from an older snapshot). They are live
	// again with the same fence; the count is worth an operator's look.
	Restored []Lease
}

// RenewLeases renews many leases in one pipelined round trip. The error
// means the round trip itself failed, in which case nothing is known about
// any lease.
//
// Each renewal also keeps the session's transcript (the output stream and
// its byte count), GMCP and MSDP state and session record for keep beyond
// now (0: leaves their expiry alone). So a worker that dies without
// cleaning up leaves nothing in Redis for longer than keep after its last
// renewal: there is no key without an expiry to leak.
//
// The caller must only renew leases it still believes live (renewed less
// than a TTL ago): that belief is what makes restoring a forgotten lease
// safe, since no other holder can have been granted it meanwhile.
func (s *Store) RenewLeases(ctx context.Context, leases []Lease, ttl, keep time.Duration) (Renewal, error) {
	var r Renewal
	if len(leases) == 0 {
		return r, nil
	}
	now := s.now().UnixMilli()
	cmds, err := s.evalBatch(ctx, renewScript, len(leases), func(i int) ([]string, []any) {
		l := leases[i]
		return append(s.renewKeys(l.Key), s.ks.transcript(l.Key)...), renewArgs(l, ttl, now, keep)
	})
	if err != nil {
		return r, fmt.Errorf("renew %d leases: %w", len(leases), err)
	}
	for i, c := range cmds {
		switch n, err := c.Int(); {
		case err != nil || n == 0:
			r.Lost = append(r.Lost, leases[i])
		case n == 2:
			r.Restored = append(r.Restored, leases[i])
		}
	}
	return r, nil
}

// ReleaseLease deletes the lease if, and only if, it is still the caller's.
// Releasing a lease that was already lost is not an error.
func (s *Store) ReleaseLease(ctx context.Context, l Lease) error {
	err := releaseScript.Run(ctx, s.rdb, []string{s.ks.lease(l.Key), s.ks.released(l.Key)},
		l.Owner, l.Fence, releasedKeep.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.Key, err)
	}
	return nil
}

// GetLease returns the live lease of key, or ok=false when there is none.
func (s *Store) GetLease(ctx context.Context, key SessionKey) (l Lease, ok bool, err error) {
	states, err := s.GetLeases(ctx, []SessionKey{key})
	if err != nil {
		return Lease{}, false, fmt.Errorf("get lease %s: %w", key, err)
	}
	return states[0].Lease, states[0].Live, nil
}

func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// LeaseState is the outcome of one lookup in GetLeases.
type LeaseState struct {
	Lease Lease
	Live  bool // false: nobody holds the lease
}

// GetLeases looks up many leases in one pipelined round trip (an edge's
// watchdog checks every session it serves this way). The error is set only
// when the round trip failed; then nothing is known about any lease.
func (s *Store) GetLeases(ctx context.Context, keys []SessionKey) ([]LeaseState, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, s.ks.lease(k), "owner", "session", "fence", "acquired", "renewed")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get %d leases: %w", len(keys), err)
	}
	out := make([]LeaseState, len(keys))
	for i, c := range cmds {
		v := c.Val()
		owner, _ := v[0].(string)
		if owner == "" {
			out[i] = LeaseState{Lease: Lease{Key: keys[i]}}
			continue
		}
		l := Lease{Key: keys[i], Owner: owner}
		l.Session, _ = v[1].(string)
		f, _ := v[2].(string)
		l.Fence, _ = strconv.ParseInt(f, 10, 64)
		a, _ := v[3].(string)
		r, _ := v[4].(string)
		l.Acquired, l.Renewed = msTime(a), msTime(r)
		out[i] = LeaseState{Lease: l, Live: true}
	}
	return out, nil
}
