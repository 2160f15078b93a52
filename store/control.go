package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ControlMessage is one entry of the control stream as a consumer sees it.
type ControlMessage struct {
	ID         string
	Command    Command
	Deliveries int64 // how many times the group handed it out, this one included
	// Err is set when the entry could not be decoded; such an entry is
	// still returned so the consumer can dead-letter it instead of
	// retrying it forever.
	Err error
	// Shard is the control stream the entry came from.
	Shard int
	raw   string // the entry as stored, kept whole in a dead letter
}

// DefaultClusterControlShards is the number of control streams a new
// namespace gets on Redis Cluster when TRELLIS_REDIS_CONTROL_SHARDS leaves
// it to Trellis: enough to spread attaches over the primaries of a typical
// cluster, few enough that every worker's one blocking read per shard stays
// cheap. A single node gets one stream.
const DefaultClusterControlShards = 8

// MaxControlShards bounds TRELLIS_REDIS_CONTROL_SHARDS: each shard costs
// every worker a blocking connection.
const MaxControlShards = 64

// ErrControlShards is returned (wrapped) when the configured number of
// control shards differs from the one the namespace was created with.
var ErrControlShards = errors.New("control shard count differs from the namespace's")

// ControlShards is the namespace's number of control streams. The first
// component to ask writes it (the configured count, or the default for the
// topology) with SET NX, and everyone after reads it, so edges and workers
// cannot disagree about which stream an attach goes to. A configured count
// that differs from the stored one is an error naming the setting: the
// count of a live system changes only as docs/OPERATIONS.md describes.
func (s *Store) ControlShards(ctx context.Context) (int, error) {
	if n := s.ctlShards.Load(); n > 0 {
		return int(n), nil
	}
	want := s.wantShards
	if want == 0 {
		want = 1
		if s.sharded {
			want = DefaultClusterControlShards
		}
	}
	key := s.ks.controlShards()
	if err := s.rdb.SetNX(ctx, key, want, 0).Err(); err != nil {
		return 0, fmt.Errorf("control shards: %w", err)
	}
	v, err := s.rdb.Get(ctx, key).Int()
	if err != nil {
		return 0, fmt.Errorf("control shards: read %s: %w", key, err)
	}
	if v < 1 || v > MaxControlShards {
		return 0, fmt.Errorf("control shards: %s holds %d, want 1 to %d", key, v, MaxControlShards)
	}
	if s.wantShards != 0 && v != s.wantShards {
		return 0, fmt.Errorf("TRELLIS_REDIS_CONTROL_SHARDS=%d but namespace %q was created with %d (%s): %w; unset it or set %d, or change the count as docs/OPERATIONS.md describes",
			s.wantShards, s.Namespace(), v, key, ErrControlShards, v)
	}
	s.ctlShards.Store(int32(v))
	return v, nil
}

// controlShard is the stream of (user, game): every command of one session
// key goes to one stream, so a worker sees attach before detach.
func controlShard(k SessionKey, n int) int {
	if n <= 1 {
		return 0
	}
	return int(fnv32(k.indexMember()) % uint32(n))
}

// EnsureControlGroup creates the control streams and their consumer group
// if they do not exist. It is idempotent. A new group starts at the
// beginning of its stream, so attaches published before any worker ran are
// served.
func (s *Store) EnsureControlGroup(ctx context.Context) error {
	n, err := s.ControlShards(ctx)
	if err != nil {
		return err
	}
	for i := range n {
		if err := s.ensureGroup(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ensureGroup(ctx context.Context, shard int) error {
	key := s.ks.control(shard)
	err := s.rdb.XGroupCreateMkStream(ctx, key, GroupWorkers, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", GroupWorkers, key, err)
	}
	return nil
}

// PublishControl appends a command to its control stream and returns its id.
func (s *Store) PublishControl(ctx context.Context, c Command) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if c.Time.IsZero() {
		c.Time = s.now()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode %s command: %w", c.Type, err)
	}
	n, err := s.ControlShards(ctx)
	if err != nil {
		return "", fmt.Errorf("publish %s %s: %w", c.Type, c.Key(), err)
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.ks.control(controlShard(c.Key(), n)),
		MaxLen: s.controlMaxLen,
		Approx: true,
		Values: []string{"v", string(b)},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("publish %s %s: %w", c.Type, c.Key(), err)
	}
	return id, nil
}

// ControlConsumer reads every control stream as one member of the workers'
// group. On its first reads of a stream it returns the entries already
// pending for its name there (handed to it before a crash and never
// acknowledged), then new ones. It is not safe for concurrent use: one
// goroutine consumes, and calls Close when done.
//
// With one stream, Read is one blocking XREADGROUP. With several, a
// multi-stream XREADGROUP would span slots on a cluster, so each stream has
// a reader goroutine of its own blocking on it, and Read takes the first
// batch any of them has. Readers read only while Reads are being asked for:
// a full or draining worker stops calling Read, and within one block slice
// its readers stop taking entries other workers could serve.
type ControlConsumer struct {
	s    *Store
	name string

	cur       []shardCursor // per shard; with readers, cur[i] belongs to reader i
	claimNext int
	claimAt   []string

	// The readers (more than one shard), started by the first Read.
	readers   bool
	count     int64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	out       chan shardBatch
	demand    []chan struct{}
	lastAsked atomic.Int64 // unix nanos of the latest Read
}

type shardCursor struct {
	pendingDone bool
	pendingFrom string // history cursor: entries after it are still to be re-read
}

type shardBatch struct {
	msgs []ControlMessage
	err  error
	at   time.Time // when Redis handed it over
	new  bool      // read with ">", deliveries not yet looked up
}

// readerSlice is one blocking read of a shard reader. A cancelled reader
// is noticed only when its read returns (go-redis does not interrupt a
// command in flight on cancellation), so this bounds how long Close, and
// with it a worker's drain, waits: short, at the price of one idle
// XREADGROUP per shard per second per worker.
const readerSlice = time.Second

// heldCheck is how long a reader may hold a batch before Read checks that
// its entries are still this consumer's: a batch taken just before the
// worker filled up may have been claimed by another worker since.
const heldCheck = time.Second

// ControlConsumer returns a consumer named name (a stable worker id makes
// own-pending-first meaningful across restarts).
func (s *Store) ControlConsumer(name string) *ControlConsumer {
	return &ControlConsumer{s: s, name: name}
}

// Name is the consumer's name in the group.
func (c *ControlConsumer) Name() string { return c.name }

// Close stops the readers and waits for them. Entries they had read and not
// handed out stay pending for this name, as after a crash.
func (c *ControlConsumer) Close() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
}

func (c *ControlConsumer) shards(ctx context.Context) (int, error) {
	if c.cur != nil {
		return len(c.cur), nil
	}
	n, err := c.s.ControlShards(ctx)
	if err != nil {
		return 0, err
	}
	c.cur = make([]shardCursor, n)
	for i := range c.cur {
		c.cur[i] = shardCursor{pendingFrom: "0-0"}
	}
	return n, nil
}

// Read returns up to count entries, blocking up to block for new ones (0
// blocks until ctx is done). An empty result with a nil error means nothing
// arrived in time. Entries of one session key come in the order they were
// published; entries of different shards in no particular order.
func (c *ControlConsumer) Read(ctx context.Context, count int64, block time.Duration) ([]ControlMessage, error) {
	n, err := c.shards(ctx)
	if err != nil {
		return nil, err
	}
	if n == 1 {
		var (
			msgs  []ControlMessage
			fresh bool
		)
		err := blockInSlices(ctx, block, func(slice time.Duration) (bool, error) {
			var err error
			msgs, fresh, err = c.readShard(ctx, 0, count, slice)
			return len(msgs) > 0, err
		})
		if fresh {
			for i := range msgs {
				msgs[i].Deliveries = 1
			}
		}
		if err != nil && (len(msgs) > 0 || ctx.Err() == nil) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("read control stream as %s: %w", c.name, err)
		}
		return msgs, nil
	}
	if !c.readers {
		// Until the readers run, entries already waiting are returned by
		// this call, however short its block: a sweep without BLOCK.
		var msgs []ControlMessage
		for i := range c.cur {
			got, fresh, err := c.readShard(ctx, i, count-int64(len(msgs)), -1)
			if err != nil {
				return nil, err
			}
			if fresh {
				for j := range got {
					got[j].Deliveries = 1
				}
			}
			msgs = append(msgs, got...)
			if int64(len(msgs)) >= count {
				break
			}
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	c.startReaders(ctx, count)
	c.lastAsked.Store(time.Now().UnixNano())
	for _, d := range c.demand {
		select {
		case d <- struct{}{}:
		default:
		}
	}
	var timeout <-chan time.Time
	if block > 0 {
		t := time.NewTimer(block)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read control streams as %s: %w", c.name, ctx.Err())
		case <-timeout:
			return nil, nil
		case b := <-c.out:
			if b.err != nil {
				return nil, b.err
			}
			msgs, err := c.handOver(ctx, b)
			if err != nil || len(msgs) > 0 {
				return msgs, err
			}
		}
	}
}

// handOver fills in deliveries of a batch and, if a reader held it for a
// while, drops the entries that are no longer pending for this consumer
// (acknowledged by a claimer, or claimed away).
func (c *ControlConsumer) handOver(ctx context.Context, b shardBatch) ([]ControlMessage, error) {
	if !b.new {
		return b.msgs, nil
	}
	if time.Since(b.at) < heldCheck {
		for i := range b.msgs {
			b.msgs[i].Deliveries = 1
		}
		return b.msgs, nil
	}
	if err := c.s.fillDeliveries(ctx, c.name, b.msgs); err != nil {
		return nil, err
	}
	kept := b.msgs[:0]
	for _, m := range b.msgs {
		if m.Deliveries > 0 {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func (c *ControlConsumer) startReaders(ctx context.Context, count int64) {
	if c.readers {
		return
	}
	c.readers, c.count = true, count
	rctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.out = make(chan shardBatch)
	c.demand = make([]chan struct{}, len(c.cur))
	for i := range c.cur {
		c.demand[i] = make(chan struct{}, 1)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.reader(rctx, i)
		}()
	}
}

// reader blocks on shard i while Reads are asked for and hands what it
// gets to Read.
func (c *ControlConsumer) reader(ctx context.Context, i int) {
	var fails int
	for ctx.Err() == nil {
		if time.Since(time.Unix(0, c.lastAsked.Load())) > 2*readerSlice {
			select {
			case <-ctx.Done():
				return
			case <-c.demand[i]:
			}
		}
		msgs, fresh, err := c.readShard(ctx, i, c.count, readerSlice)
		if ctx.Err() != nil {
			return
		}
		b := shardBatch{msgs: msgs, err: err, at: time.Now(), new: fresh}
		if err == nil && len(msgs) == 0 {
			fails = 0
			continue
		}
		select {
		case c.out <- b:
		case <-ctx.Done():
			return
		}
		if err != nil {
			// The caller backs off too; this keeps a reader from spinning
			// on a node that is down while Read is not waiting.
			fails++
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(fails)*100*time.Millisecond, 2*time.Second)):
			}
		} else {
			fails = 0
		}
	}
}

// readShard reads shard i: own pending entries first (without blocking,
// deliveries filled in), then new ones (fresh), blocking up to block.
func (c *ControlConsumer) readShard(ctx context.Context, i int, count int64, block time.Duration) (msgs []ControlMessage, fresh bool, err error) {
	cur := &c.cur[i]
	if !cur.pendingDone {
		msgs, err := c.read(ctx, i, cur.pendingFrom, count, -1)
		if err != nil {
			return nil, false, err
		}
		if len(msgs) > 0 {
			cur.pendingFrom = msgs[len(msgs)-1].ID
			if err := c.s.fillDeliveries(ctx, c.name, msgs); err != nil {
				return nil, false, err
			}
			return msgs, false, nil
		}
		cur.pendingDone = true
	}
	msgs, err = c.read(ctx, i, ">", count, block)
	return msgs, true, err
}

func (c *ControlConsumer) read(ctx context.Context, shard int, from string, count int64, block time.Duration) ([]ControlMessage, error) {
	key := c.s.ks.control(shard)
	res, err := c.s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    GroupWorkers,
		Consumer: c.name,
		Streams:  []string{key, from},
		Count:    count,
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// Redis lost the group (restarted without persistence):
			// make it again and let the caller retry.
			if gerr := c.s.ensureGroup(ctx, shard); gerr != nil {
				return nil, gerr
			}
			return nil, nil
		}
		return nil, fmt.Errorf("read control stream %s as %s: %w", key, c.name, err)
	}
	var out []ControlMessage
	for _, st := range res {
		for _, m := range st.Messages {
			out = append(out, toControlMessage(m, shard))
		}
	}
	return out, nil
}

func toControlMessage(m redis.XMessage, shard int) ControlMessage {
	cm := ControlMessage{ID: m.ID, Shard: shard}
	cm.raw, _ = m.Values["v"].(string)
	cm.Command, cm.Err = decodeCommand(m.Values["v"])
	return cm
}

// Claim takes over up to count entries per stream that other consumers
// (dead workers) were handed more than minIdle ago and never acknowledged
// (XAUTOCLAIM). Deliveries is filled in, so the caller can dead-letter an
// entry that keeps failing. Entries trimmed from a stream while pending are
// acknowledged and dropped.
func (c *ControlConsumer) Claim(ctx context.Context, minIdle time.Duration, count int64) ([]ControlMessage, error) {
	n, err := c.shards(ctx)
	if err != nil {
		return nil, err
	}
	var out []ControlMessage
	for range n {
		i := c.claimNext
		c.claimNext = (c.claimNext + 1) % n
		got, err := c.claimShard(ctx, i, minIdle, count)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// claimShard runs on the caller's goroutine; claimCursor is only touched
// here, never by a reader.
func (c *ControlConsumer) claimShard(ctx context.Context, shard int, minIdle time.Duration, count int64) ([]ControlMessage, error) {
	key := c.s.ks.control(shard)
	cmd := c.s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   key,
		Group:    GroupWorkers,
		Consumer: c.name,
		MinIdle:  minIdle,
		Start:    c.claimCursors()[shard],
		Count:    count,
	})
	msgs, next, err := cmd.Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, nil
		}
		return nil, fmt.Errorf("claim control entries of %s as %s: %w", key, c.name, err)
	}
	if next == "" {
		next = "0-0"
	}
	c.claimCursors()[shard] = next
	out := make([]ControlMessage, 0, len(msgs))
	var trimmed []ControlMessage
	for _, m := range msgs {
		if m.Values == nil {
			trimmed = append(trimmed, ControlMessage{ID: m.ID, Shard: shard})
			continue
		}
		out = append(out, toControlMessage(m, shard))
	}
	if len(trimmed) > 0 {
		_ = c.s.AckControl(ctx, trimmed...)
	}
	if err := c.s.fillDeliveries(ctx, c.name, out); err != nil {
		return nil, err
	}
	return out, nil
}

// claimCursors are the XAUTOCLAIM cursors, one per shard, used only by
// Claim's goroutine (a reader owns cur[i] while it runs).
func (c *ControlConsumer) claimCursors() []string {
	if c.claimAt == nil {
		c.claimAt = make([]string, len(c.cur))
		for i := range c.claimAt {
			c.claimAt[i] = "0-0"
		}
	}
	return c.claimAt
}

// fillDeliveries sets each entry's delivery count from the pending list of
// consumer; an entry no longer pending for it gets 0. msgs come from one
// shard, in id order.
func (s *Store) fillDeliveries(ctx context.Context, consumer string, msgs []ControlMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   s.ks.control(msgs[0].Shard),
		Group:    GroupWorkers,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)) * 2,
		Consumer: consumer,
	}).Result()
	if err != nil {
		return fmt.Errorf("pending control entries of %s: %w", consumer, err)
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = max(p.RetryCount, 1)
	}
	for i := range msgs {
		msgs[i].Deliveries = counts[msgs[i].ID]
	}
	return nil
}

// AckControl acknowledges handled entries, each on its own stream.
func (s *Store) AckControl(ctx context.Context, msgs ...ControlMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	byShard := map[int][]string{}
	for _, m := range msgs {
		byShard[m.Shard] = append(byShard[m.Shard], m.ID)
	}
	pipe := s.rdb.Pipeline()
	for shard, ids := range byShard {
		pipe.XAck(ctx, s.ks.control(shard), GroupWorkers, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("ack %d control entries: %w", len(msgs), err)
	}
	return nil
}

// DeadLetter copies an entry that keeps failing to its stream's dead-letter
// stream (the same slot: one MULTI), with the reason, and acknowledges it so
// it is not handed out again.
func (s *Store) DeadLetter(ctx context.Context, m ControlMessage, reason string) error {
	// The entry as stored, so an undecodable one can still be inspected
	// once the control stream has trimmed it.
	raw := m.raw
	if raw == "" {
		b, _ := json.Marshal(m.Command)
		raw = string(b)
	}
	pipe := s.rdb.TxPipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: s.ks.deadLetters(m.Shard),
		MaxLen: 100_000,
		Approx: true,
		Values: []string{"id", m.ID, "v", raw, "reason", reason, "deliveries", fmt.Sprint(m.Deliveries)},
	})
	pipe.XAck(ctx, s.ks.control(m.Shard), GroupWorkers, m.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dead-letter control entry %s: %w", m.ID, err)
	}
	return nil
}

// DeadLetterEntry is one entry of a dead-letter stream.
type DeadLetterEntry struct {
	ID         string // id in the dead-letter stream
	ControlID  string // id it had in the control stream
	Shard      int
	Command    Command
	Reason     string
	Deliveries string
	Raw        string // the entry as it was stored (Command is empty when it could not be decoded)
}

// DeadLetters lists the newest count dead-lettered entries of every shard
// (the ones an operator is looking for), oldest first.
func (s *Store) DeadLetters(ctx context.Context, count int64) ([]DeadLetterEntry, error) {
	n, err := s.ControlShards(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetterEntry
	for shard := range n {
		res, err := s.rdb.XRevRangeN(ctx, s.ks.deadLetters(shard), "+", "-", count).Result()
		if err != nil {
			return nil, fmt.Errorf("read dead letters of shard %d: %w", shard, err)
		}
		for _, m := range res {
			e := DeadLetterEntry{ID: m.ID, Shard: shard}
			e.ControlID, _ = m.Values["id"].(string)
			e.Reason, _ = m.Values["reason"].(string)
			e.Deliveries, _ = m.Values["deliveries"].(string)
			if v, ok := m.Values["v"].(string); ok {
				e.Raw = v
				_ = json.Unmarshal([]byte(v), &e.Command)
			}
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b DeadLetterEntry) int { return compareIDs(a.ID, b.ID) })
	if int64(len(out)) > count {
		out = out[int64(len(out))-count:]
	}
	return out, nil
}

// ControlEntries reads raw control entries in [from, to] (stream ids or
// "-"/"+") of every shard, merged oldest first, at most count, for replay
// and redrive. It does not touch the consumer group. Entries of different
// shards with one id are all returned: page with ControlEntriesAfter, not
// with "(" and the last id.
func (s *Store) ControlEntries(ctx context.Context, from, to string, count int64) ([]ControlMessage, error) {
	n, err := s.ControlShards(ctx)
	if err != nil {
		return nil, err
	}
	var out []ControlMessage
	for shard := range n {
		res, err := s.rdb.XRangeN(ctx, s.ks.control(shard), from, to, count).Result()
		if err != nil {
			return nil, fmt.Errorf("range control stream %d %s..%s: %w", shard, from, to, err)
		}
		for _, m := range res {
			out = append(out, toControlMessage(m, shard))
		}
	}
	sortControl(out)
	if int64(len(out)) > count {
		out = out[:count]
	}
	return out, nil
}

// ControlEntriesAll reads every control entry in [from, to] of every
// shard, merged oldest first, paging each shard on its own cursor. It stops
// with an error past limit entries.
func (s *Store) ControlEntriesAll(ctx context.Context, from, to string, limit int) ([]ControlMessage, error) {
	n, err := s.ControlShards(ctx)
	if err != nil {
		return nil, err
	}
	const page = 1000
	var out []ControlMessage
	for shard := range n {
		cursor := from
		for {
			res, err := s.rdb.XRangeN(ctx, s.ks.control(shard), cursor, to, page).Result()
			if err != nil {
				return nil, fmt.Errorf("range control stream %d %s..%s: %w", shard, cursor, to, err)
			}
			for _, m := range res {
				out = append(out, toControlMessage(m, shard))
			}
			if len(out) > limit {
				return nil, fmt.Errorf("more than %d control entries in %s..%s: narrow the range", limit, from, to)
			}
			if len(res) < page {
				break
			}
			cursor = "(" + res[len(res)-1].ID
		}
	}
	sortControl(out)
	return out, nil
}

func sortControl(msgs []ControlMessage) {
	slices.SortStableFunc(msgs, func(a, b ControlMessage) int {
		if c := compareIDs(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Shard - b.Shard
	})
}

// GroupStatus is the health of the control streams' consumer group: the
// sums over every shard, and each shard on its own.
type GroupStatus struct {
	Length      int64 // entries in the streams
	Lag         int64 // entries not yet delivered to any consumer (-1 if Redis cannot tell)
	Pending     int64 // delivered, not acknowledged
	DeadLetters int64
	Consumers   []ConsumerStatus // each worker once: pending summed, idle the least over shards
	Shards      []ShardStatus
}

// ShardStatus is one control stream.
type ShardStatus struct {
	Shard       int
	Stream      string
	Length      int64
	Lag         int64
	Pending     int64
	DeadLetters int64
}

// ConsumerStatus is one consumer (worker) of the group.
type ConsumerStatus struct {
	Name    string
	Pending int64
	Idle    time.Duration
}

// ControlStatus reports lag, pending entries, consumers and dead letters.
func (s *Store) ControlStatus(ctx context.Context) (GroupStatus, error) {
	var st GroupStatus
	n, err := s.ControlShards(ctx)
	if err != nil {
		return st, err
	}
	type shardCmds struct {
		xlen   *redis.IntCmd
		groups *redis.XInfoGroupsCmd
		cons   *redis.XInfoConsumersCmd
		dead   *redis.IntCmd
	}
	cmds := make([]shardCmds, n)
	pipe := s.rdb.Pipeline()
	for i := range n {
		key := s.ks.control(i)
		cmds[i] = shardCmds{
			xlen:   pipe.XLen(ctx, key),
			groups: pipe.XInfoGroups(ctx, key),
			cons:   pipe.XInfoConsumers(ctx, key, GroupWorkers),
			dead:   pipe.XLen(ctx, s.ks.deadLetters(i)),
		}
	}
	_, _ = pipe.Exec(ctx)
	consumers := map[string]*ConsumerStatus{}
	var names []string
	lagKnown := true
	for i, c := range cmds {
		if err := c.xlen.Err(); err != nil {
			return st, fmt.Errorf("control stream %d status: %w", i, err)
		}
		sh := ShardStatus{Shard: i, Stream: s.ks.control(i), Length: c.xlen.Val(), DeadLetters: c.dead.Val(), Lag: -1}
		if gs, err := c.groups.Result(); err == nil {
			for _, g := range gs {
				if g.Name == GroupWorkers {
					sh.Pending, sh.Lag = g.Pending, g.Lag
				}
			}
		} else if !isNoSuchKey(err) {
			return st, fmt.Errorf("control group status of shard %d: %w", i, err)
		}
		if cs, err := c.cons.Result(); err == nil {
			for _, x := range cs {
				cur := consumers[x.Name]
				if cur == nil {
					cur = &ConsumerStatus{Name: x.Name, Idle: x.Idle}
					consumers[x.Name] = cur
					names = append(names, x.Name)
				}
				cur.Pending += x.Pending
				cur.Idle = min(cur.Idle, x.Idle)
			}
		}
		st.Length += sh.Length
		st.Pending += sh.Pending
		st.DeadLetters += sh.DeadLetters
		if sh.Lag < 0 {
			lagKnown = false
		} else {
			st.Lag += sh.Lag
		}
		st.Shards = append(st.Shards, sh)
	}
	if !lagKnown {
		st.Lag = -1
	}
	for _, name := range names {
		st.Consumers = append(st.Consumers, *consumers[name])
	}
	return st, nil
}

// RemoveConsumer deletes a consumer from the group of every shard once its
// pending entries were claimed by others, so ops views do not list dead
// workers forever.
func (s *Store) RemoveConsumer(ctx context.Context, name string) error {
	n, err := s.ControlShards(ctx)
	if err != nil {
		return err
	}
	for i := range n {
		err := s.rdb.XGroupDelConsumer(ctx, s.ks.control(i), GroupWorkers, name).Err()
		if err != nil && !isNoSuchKey(err) && !strings.HasPrefix(err.Error(), "NOGROUP") {
			return fmt.Errorf("remove consumer %s from shard %d: %w", name, i, err)
		}
	}
	return nil
}

// isNoSuchKey recognises the reply XINFO gives for a stream that does not
// exist yet (no worker or edge has touched it).
func isNoSuchKey(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }
