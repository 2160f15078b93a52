package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/backoff"
)

// Pub/sub is owned here like the rest of Redis. A Subscriber holds the
// connections, subscribes and re-subscribes, notices dead and silent
// connections and replaces them, and hands each message to a Handler (the
// split centrifuge makes between its broker and its hub). Components never
// see a go-redis PubSub.
//
// On a single node it uses SUBSCRIBE. On Redis Cluster it uses sharded
// pub/sub (SSUBSCRIBE): one connection per primary that owns a subscribed
// channel's slot, each SSUBSCRIBE naming channels of one slot, and every
// channel followed to its new owner after MOVED, a failover or a slot
// migration. Publishers match: the append scripts and SendInput use
// SPUBLISH on a cluster (see Store.sharded).
//
// go-redis v9.23.0's own cluster pub/sub cannot do this (details at
// newClusterNodeClient and refused): ClusterClient.SSubscribe binds one
// PubSub to the node of its first channel, opens a connection per call,
// re-subscribes every shard channel in one command on reconnect, and never
// acts on MOVED replies or on the sunsubscribe Redis sends when a slot
// leaves a node. So go-redis is used here only as a connection: one
// PubSub per node connection, made from a client of that one node, thrown
// away at the first error instead of letting it reconnect itself.

// Handler receives what a Subscriber hears. Its methods are called from the
// subscriber's receive goroutines, one per Redis node, so they must be safe
// for concurrent use and must not block: while one runs, nothing else from
// its node is read. A channel's messages arrive in publication order while
// its subscription lasts. No method is called after Run returned.
type Handler interface {
	// Message is one message published on a subscribed channel. It may
	// come shortly after the channel's last Unsubscribe.
	Message(channel, payload string)
	// Recovered names subscribed channels whose subscription was lost (its
	// connection dropped or went silent, its slot moved) and is confirmed
	// again. Messages published in between are gone from pub/sub; a
	// handler that must not miss any fetches them another way (the edge
	// re-reads the output streams). It is never called for a channel whose
	// first subscription is still awaited.
	Recovered(channels []string)
}

// HandlerFuncs makes a Handler of two functions; either may be nil.
type HandlerFuncs struct {
	OnMessage   func(channel, payload string)
	OnRecovered func(channels []string)
}

// Message calls OnMessage.
func (f HandlerFuncs) Message(channel, payload string) {
	if f.OnMessage != nil {
		f.OnMessage(channel, payload)
	}
}

// Recovered calls OnRecovered.
func (f HandlerFuncs) Recovered(channels []string) {
	if f.OnRecovered != nil {
		f.OnRecovered(channels)
	}
}

// DefaultPingEvery is how long a pub/sub connection may stay silent before
// the subscriber pings it; a connection silent for two intervals in a row
// is replaced (half-open TCP never errors by itself).
const DefaultPingEvery = 10 * time.Second

// SubscriberOptions tune a Subscriber. The zero value is usable.
type SubscriberOptions struct {
	// PingEvery: see DefaultPingEvery (the default when 0). A subscribe
	// command left unanswered for two intervals also replaces its
	// connection.
	PingEvery time.Duration
	// Logger gets connection losses and recoveries; nil logs nothing.
	Logger *slog.Logger
	// OnError is told of every failed connection and every command Redis
	// refused, for metrics. It must not block.
	OnError func(error)
}

// ErrSubscriberClosed is returned by Subscribe once Run has returned.
var ErrSubscriberClosed = errors.New("subscriber closed")

// errOutOfStep ends a connection whose replies no longer match the commands
// sent on it: whatever is subscribed there is unknown, and a new connection
// is the way to know again.
var errOutOfStep = errors.New("pub/sub replies out of step with commands")

var errSilent = errors.New("pub/sub connection silent")

// maxChannelsPerCommand bounds one SUBSCRIBE, so that re-subscribing
// thousands of channels does not make one huge command.
const maxChannelsPerCommand = 1000

// Subscriber owns pub/sub connections to Redis (see the top of this file).
// Build it with Store.NewSubscriber and run it with Run; Subscribe and
// Unsubscribe are safe for concurrent use, before or while Run runs, and
// never hold a lock while talking to Redis.
type Subscriber struct {
	h       Handler
	log     *slog.Logger
	onErr   func(error)
	ping    time.Duration
	sharded bool
	single  redis.UniversalClient // the store's client, when not a cluster
	cluster *redis.ClusterClient

	done chan struct{} // closed when Run returns
	wake chan struct{} // Run has placing or retrying to do
	wg   sync.WaitGroup

	mu      sync.Mutex
	chans   map[string]*subChan
	nodes   map[string]*subNode // by address; a single node is ""
	owner   []string            // cluster: the primary's address by slot; "" unknown
	refresh bool                // cluster: read the slot map again
	retry   map[string]struct{} // channels Redis refused to subscribe; Run tries again later
	runCtx  context.Context     // nil until Run starts
	running bool
	closed  bool
}

// subChan is one channel somebody subscribed. Guarded by Subscriber.mu.
type subChan struct {
	name string
	slot int
	refs int
	// node is where the channel belongs now; nil while it has no
	// subscriber or its slot's owner is not known.
	node *subNode
	// wires counts nodes holding wire state for the channel. While it
	// moves, the old node and the new one may both hold it for a moment;
	// that cannot deliver a message twice, because a shard channel's
	// messages are published on its slot's owner only, and Redis 7 drops
	// (with a sunsubscribe) the subscribers of a slot a node loses, to a
	// migration or a failover. Waiting for the old node to let go would instead hold a
	// moved channel unsubscribed for as long as a partitioned node takes
	// to be found silent.
	wires     int
	confirmed bool
	ready     chan struct{} // closed when confirmed; nil while nobody waits
	lost      bool          // confirmed once, then lost: Recovered when confirmed again
	// alone: Redis refused a command naming it. Until confirmed it goes
	// in a command of its own, so that a channel Redis will not take
	// (an ACL, say) cannot take the others of its command down with it.
	alone bool
}

// subNode is one Redis node and the connection to it. Its fields other than
// addr, client, own and cancel are guarded by Subscriber.mu.
type subNode struct {
	addr   string
	client redis.UniversalClient
	own    bool // client was made for this node and is closed with it
	cancel context.CancelFunc

	conn  *subConn              // nil between connections
	wire  map[string]*wireState // what was sent on conn, per channel
	dirty map[string]struct{}   // channels whose wire state may need a command
	down  bool                  // the last connection failed (logged once)
}

// wireState is what one connection was told about one channel.
type wireState struct {
	sub      bool // the last command sent subscribes it
	inflight int  // commands sent and not yet answered
}

// subConn is one connection (one go-redis PubSub) of a node.
type subConn struct {
	ps   *redis.PubSub
	kick chan struct{} // its writer has commands to send
	// pending are the subscribe and unsubscribe commands sent, oldest
	// first. Redis answers them in order, one confirmation per channel,
	// or one error for the whole command; that order is how a reply is
	// matched to the command it answers. Guarded by Subscriber.mu.
	pending []*pendingCmd
}

type pendingCmd struct {
	sub   bool
	chans []string
	next  int // confirmations received so far
	sent  time.Time
}

// NewSubscriber returns a subscriber that hands what it hears to h. Nothing
// is sent to Redis before Run.
func (s *Store) NewSubscriber(h Handler, opt SubscriberOptions) *Subscriber {
	sub := &Subscriber{
		h:       h,
		log:     opt.Logger,
		onErr:   opt.OnError,
		ping:    opt.PingEvery,
		sharded: s.sharded,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		chans:   make(map[string]*subChan),
		nodes:   make(map[string]*subNode),
		retry:   make(map[string]struct{}),
	}
	if sub.ping <= 0 {
		sub.ping = DefaultPingEvery
	}
	if sub.log == nil {
		sub.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		sub.cluster = cc
		sub.owner = make([]string, clusterSlots)
	} else {
		sub.single = s.rdb
	}
	return sub
}

// Sharded reports whether the subscriber uses sharded pub/sub (SSUBSCRIBE).
func (sub *Subscriber) Sharded() bool { return sub.sharded }

// Subscribe subscribes channel and returns once Redis confirmed the
// subscription: from then on every message published on it is handed to
// the handler, until the subscription is lost, which Recovered reports.
// Subscriptions are counted: Redis is told only of the first, and of the
// last Unsubscribe.
//
// The subscription is taken at once, whatever Subscribe returns: when ctx
// ends first, the error says it was not confirmed yet, and the channel stays
// subscribed (and will be confirmed) until its Unsubscribe. Every Subscribe
// is undone by exactly one Unsubscribe.
func (sub *Subscriber) Subscribe(ctx context.Context, channel string) error {
	sub.mu.Lock()
	c := sub.chans[channel]
	if c == nil {
		c = &subChan{name: channel, slot: keySlot(channel)}
		sub.chans[channel] = c
	}
	c.refs++
	if sub.closed {
		sub.mu.Unlock()
		return ErrSubscriberClosed
	}
	if c.confirmed {
		sub.mu.Unlock()
		return nil
	}
	if c.ready == nil {
		c.ready = make(chan struct{})
	}
	ready := c.ready
	if c.refs == 1 {
		sub.placeLocked(c)
	}
	sub.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-sub.done:
		return ErrSubscriberClosed
	case <-ctx.Done():
		return fmt.Errorf("subscribe %s: not confirmed yet: %w", channel, ctx.Err())
	}
}

// Unsubscribe undoes one Subscribe of channel. The last one unsubscribes it
// from Redis (in the background: it never waits).
func (sub *Subscriber) Unsubscribe(channel string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	c := sub.chans[channel]
	if c == nil || c.refs == 0 {
		return
	}
	c.refs--
	if c.refs > 0 {
		return
	}
	c.confirmed, c.lost, c.ready = false, false, nil
	delete(sub.retry, channel)
	if n := c.node; n != nil {
		c.node = nil
		sub.markLocked(n, channel)
	}
	sub.forgetLocked(c)
}

// Run connects, subscribes and receives until ctx is done, then closes every
// connection and returns nil once every goroutine it started has ended. It
// returns an error only when called twice.
func (sub *Subscriber) Run(ctx context.Context) error {
	sub.mu.Lock()
	if sub.running {
		sub.mu.Unlock()
		return errors.New("store: Subscriber.Run called twice")
	}
	sub.running, sub.runCtx = true, ctx
	if sub.cluster == nil {
		sub.startNodeLocked("", sub.single, false)
	} else {
		sub.refresh = true
	}
	sub.mu.Unlock()

	defer func() {
		sub.mu.Lock()
		sub.closed = true
		for _, n := range sub.nodes {
			n.cancel()
		}
		sub.mu.Unlock()
		sub.wg.Wait()
		close(sub.done)
	}()

	const (
		retryAfter  = time.Second
		rereadEvery = 30 * time.Second // the slot map, in case a change went unnoticed
	)
	var (
		refresh   = backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
		refreshAt time.Time // the next allowed read of the slot map
		lastRead  time.Time
		retryAt   time.Time
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		if sub.cluster != nil {
			sub.mu.Lock()
			want := sub.refresh || now.Sub(lastRead) >= rereadEvery
			sub.mu.Unlock()
			if want && !now.Before(refreshAt) {
				if err := sub.readSlots(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					sub.failed(fmt.Errorf("read the cluster's slot map: %w", err))
					refreshAt = time.Now().Add(refresh.Next())
				} else {
					refresh.Reset()
					lastRead = time.Now()
					// Not at once again even if something asks: a
					// MOVED that contradicts the map just read waits for
					// the cluster to settle.
					refreshAt = lastRead.Add(100 * time.Millisecond)
				}
			}
		}

		sub.mu.Lock()
		sub.placeAllLocked()
		if len(sub.retry) > 0 {
			if retryAt.IsZero() {
				retryAt = now.Add(retryAfter)
			} else if !now.Before(retryAt) {
				retryAt = time.Time{}
				for ch := range sub.retry {
					delete(sub.retry, ch)
					if c := sub.chans[ch]; c != nil && c.node != nil {
						sub.markLocked(c.node, ch)
					}
				}
			}
		} else {
			retryAt = time.Time{}
		}
		next := time.Hour
		if sub.cluster != nil {
			if sub.refresh {
				next = max(time.Until(refreshAt), time.Millisecond)
			} else {
				next = max(time.Until(lastRead.Add(rereadEvery)), time.Millisecond)
			}
		}
		if !retryAt.IsZero() {
			next = min(next, max(time.Until(retryAt), time.Millisecond))
		}
		sub.mu.Unlock()

		timer.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-sub.wake:
		case <-timer.C:
		}
	}
}

// placeLocked puts c, which has a subscriber, on the node that should hold
// it. When that node is not known or not started yet, Run does it.
func (sub *Subscriber) placeLocked(c *subChan) {
	var n *subNode
	if sub.cluster == nil {
		n = sub.nodes[""]
	} else if addr := sub.owner[c.slot]; addr != "" {
		n = sub.nodes[addr]
	}
	if n == nil {
		sub.wakeLocked()
		return
	}
	sub.moveLocked(c, n)
}

// placeAllLocked puts every subscribed channel on its slot's owner,
// starting connections as needed, and stops connections no channel needs.
func (sub *Subscriber) placeAllLocked() {
	if sub.closed || sub.runCtx == nil {
		return
	}
	used := make(map[*subNode]bool, len(sub.nodes))
	for _, c := range sub.chans {
		if c.refs == 0 {
			continue
		}
		if sub.cluster == nil {
			if c.node == nil {
				sub.moveLocked(c, sub.nodes[""])
			}
			continue
		}
		addr := sub.owner[c.slot]
		switch {
		case addr == "":
			// No owner known (a failover under way): keep whatever it
			// has and look again.
			sub.refresh = true
		case c.node == nil || c.node.addr != addr:
			n := sub.nodes[addr]
			if n == nil {
				n = sub.startNodeLocked(addr, newClusterNodeClient(sub.cluster.Options(), addr), true)
			}
			sub.moveLocked(c, n)
		}
		if c.node != nil {
			used[c.node] = true
		}
	}
	if sub.cluster == nil {
		return
	}
	for addr, n := range sub.nodes {
		if !used[n] && len(n.wire) == 0 {
			n.cancel()
			delete(sub.nodes, addr)
		}
	}
}

// moveLocked makes n the node of c. A channel moving away from a node it
// was confirmed on may have missed messages in between.
func (sub *Subscriber) moveLocked(c *subChan, n *subNode) {
	if c.node != n {
		if old := c.node; old != nil {
			sub.markLocked(old, c.name)
		}
		sub.unconfirmLocked(c)
		c.node = n
	}
	sub.markLocked(n, c.name)
}

func (sub *Subscriber) unconfirmLocked(c *subChan) {
	if c.confirmed {
		c.confirmed = false
		c.lost = c.refs > 0
	}
}

// markLocked tells n's writer to look at ch.
func (sub *Subscriber) markLocked(n *subNode, ch string) {
	n.dirty[ch] = struct{}{}
	if n.conn != nil {
		kick(n.conn.kick)
	}
}

func (sub *Subscriber) wakeLocked() { kick(sub.wake) }

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// forgetLocked drops c once nothing refers to it.
func (sub *Subscriber) forgetLocked(c *subChan) {
	if c.refs == 0 && c.node == nil && c.wires == 0 && sub.chans[c.name] == c {
		delete(sub.chans, c.name)
	}
}

// dropWireLocked forgets what n's connection holds of ch: it holds nothing
// (an unsubscribe was confirmed, a subscribe refused, or the connection is
// gone).
func (sub *Subscriber) dropWireLocked(n *subNode, ch string) {
	if _, ok := n.wire[ch]; !ok {
		return
	}
	delete(n.wire, ch)
	c := sub.chans[ch]
	if c == nil {
		return
	}
	c.wires--
	sub.forgetLocked(c)
}

func (sub *Subscriber) startNodeLocked(addr string, client redis.UniversalClient, own bool) *subNode {
	ctx, cancel := context.WithCancel(sub.runCtx)
	n := &subNode{
		addr: addr, client: client, own: own, cancel: cancel,
		wire:  make(map[string]*wireState),
		dirty: make(map[string]struct{}),
	}
	sub.nodes[addr] = n
	sub.wg.Add(1)
	go func() {
		defer sub.wg.Done()
		sub.nodeLoop(ctx, n)
	}()
	return n
}

// nodeLoop keeps one connection to n until ctx is done, replacing it each
// time it fails.
func (sub *Subscriber) nodeLoop(ctx context.Context, n *subNode) {
	defer func() {
		if n.own {
			_ = n.client.Close()
		}
	}()
	retry := backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for ctx.Err() == nil {
		cctx, cancel := context.WithCancel(ctx)
		conn := &subConn{ps: n.client.Subscribe(cctx), kick: make(chan struct{}, 1)}
		// A read blocked in ReceiveTimeout does not watch its context;
		// closing the PubSub is what ends it.
		stop := context.AfterFunc(cctx, func() { _ = conn.ps.Close() })
		sub.mu.Lock()
		sub.installLocked(n, conn)
		sub.mu.Unlock()

		var (
			wg   sync.WaitGroup
			werr error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			werr = sub.writeLoop(cctx, n, conn)
			cancel()
		}()
		heard, err := sub.readLoop(cctx, n, conn)
		cancel()
		wg.Wait()
		stop()
		_ = conn.ps.Close()
		if err == nil {
			err = werr
		}
		sub.mu.Lock()
		sub.lostLocked(n, conn)
		first := !n.down
		n.down = true
		sub.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("pub/sub connection closed")
		}
		if first {
			sub.log.Warn("pub/sub connection lost; reconnecting", "node", n.addr, "err", err)
		}
		sub.failed(err)
		if heard {
			retry.Reset()
		}
		if retry.Wait(ctx) != nil {
			return
		}
	}
}

// failed reports err and, on a cluster, has the slot map read again: a node
// that fails may have stopped being a primary.
func (sub *Subscriber) failed(err error) {
	if sub.onErr != nil {
		sub.onErr(err)
	}
	if sub.cluster != nil {
		sub.mu.Lock()
		sub.refresh = true
		sub.wakeLocked()
		sub.mu.Unlock()
	}
}

// installLocked makes conn n's connection: it holds nothing yet, so every
// channel of n is to be subscribed on it.
func (sub *Subscriber) installLocked(n *subNode, conn *subConn) {
	n.conn = conn
	for ch, c := range sub.chans {
		if c.node == n {
			n.dirty[ch] = struct{}{}
		}
	}
	kick(conn.kick)
}

// lostLocked is the end of conn: every subscription on it is gone.
func (sub *Subscriber) lostLocked(n *subNode, conn *subConn) {
	if n.conn != conn {
		return
	}
	n.conn = nil
	for ch := range n.wire {
		sub.dropWireLocked(n, ch)
	}
	for _, c := range sub.chans {
		if c.node == n {
			sub.unconfirmLocked(c)
		}
	}
}

// writeLoop sends the subscribe and unsubscribe commands n's channels need,
// as they come. It is the only goroutine that sends them on conn, so they
// go out in the order pending records.
func (sub *Subscriber) writeLoop(ctx context.Context, n *subNode, conn *subConn) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.kick:
		}
		for {
			sub.mu.Lock()
			cmds := sub.collectLocked(n, conn)
			sub.mu.Unlock()
			if len(cmds) == 0 {
				break
			}
			for _, cmd := range cmds {
				if err := sub.send(ctx, conn.ps, cmd); err != nil {
					return err
				}
			}
		}
	}
}

func (sub *Subscriber) send(ctx context.Context, ps *redis.PubSub, cmd *pendingCmd) error {
	switch {
	case sub.sharded && cmd.sub:
		return ps.SSubscribe(ctx, cmd.chans...)
	case sub.sharded:
		return ps.SUnsubscribe(ctx, cmd.chans...)
	case cmd.sub:
		return ps.Subscribe(ctx, cmd.chans...)
	default:
		return ps.Unsubscribe(ctx, cmd.chans...)
	}
}

// collectLocked turns n's dirty channels into the commands that make conn
// hold what is wanted, and records them as sent.
func (sub *Subscriber) collectLocked(n *subNode, conn *subConn) []*pendingCmd {
	if n.conn != conn || len(n.dirty) == 0 {
		return nil
	}
	var subs, unsubs, alone []string
	for ch := range n.dirty {
		delete(n.dirty, ch)
		c, w := sub.chans[ch], n.wire[ch]
		want := c != nil && c.node == n && c.refs > 0
		if want {
			if _, refused := sub.retry[ch]; refused {
				continue
			}
		}
		held := w != nil && w.sub
		switch {
		case want && c.alone && (!held || w.inflight == 0 && !c.confirmed):
			alone = append(alone, ch)
		case want && !held:
			subs = append(subs, ch)
		case want && w.inflight == 0 && !c.confirmed:
			// Held and answered, yet not confirmed: an Unsubscribe and a
			// Subscribe came before anything was sent, or the channel
			// came back from another node. Redis confirms a repeated
			// subscribe again, and the reader takes it from there.
			subs = append(subs, ch)
		case !want && held:
			unsubs = append(unsubs, ch)
		}
	}
	now := time.Now()
	var cmds []*pendingCmd
	add := func(isSub bool, chans []string) {
		for len(chans) > 0 {
			k := min(len(chans), maxChannelsPerCommand)
			cmds = append(cmds, &pendingCmd{sub: isSub, chans: chans[:k:k], sent: now})
			chans = chans[k:]
		}
	}
	if sub.sharded {
		// One slot per command: Redis refuses SSUBSCRIBE and SUNSUBSCRIBE
		// of channels in different slots (CROSSSLOT), even on one node.
		for _, group := range bySlot(unsubs) {
			add(false, group)
		}
		for _, group := range bySlot(subs) {
			add(true, group)
		}
	} else {
		add(false, unsubs)
		add(true, subs)
	}
	for _, ch := range alone {
		add(true, []string{ch})
	}
	for _, cmd := range cmds {
		for _, ch := range cmd.chans {
			w := n.wire[ch]
			if w == nil {
				w = &wireState{}
				n.wire[ch] = w
				sub.chans[ch].wires++
			}
			w.sub = cmd.sub
			w.inflight++
		}
	}
	conn.pending = append(conn.pending, cmds...)
	return cmds
}

func bySlot(chans []string) [][]string {
	if len(chans) == 0 {
		return nil
	}
	groups := make(map[int][]string)
	var order []int
	for _, ch := range chans {
		s := keySlot(ch)
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], ch)
	}
	out := make([][]string, 0, len(order))
	for _, s := range order {
		out = append(out, groups[s])
	}
	return out
}

// readLoop receives from conn until it fails, goes silent, or ctx is done.
// heard says whether Redis answered anything at all (for the backoff).
func (sub *Subscriber) readLoop(ctx context.Context, n *subNode, conn *subConn) (heard bool, err error) {
	var recovered []string
	flush := func() {
		if len(recovered) > 0 {
			sub.h.Recovered(recovered)
			recovered = nil
		}
	}
	defer flush()
	silent := 0
	lastCheck := time.Now()
	for {
		msg, err := conn.ps.ReceiveTimeout(ctx, sub.ping)
		if ctx.Err() != nil {
			return heard, nil
		}
		if now := time.Now(); now.Sub(lastCheck) >= sub.ping {
			// Messages flowing do not prove that Redis reads what we
			// send: a subscribe unanswered for two intervals ends the
			// connection like silence does.
			lastCheck = now
			sub.mu.Lock()
			stuck := len(conn.pending) > 0 && now.Sub(conn.pending[0].sent) >= 2*sub.ping
			sub.mu.Unlock()
			if stuck {
				return heard, errors.New("pub/sub subscribe unanswered")
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				flush()
				silent++
				if silent >= 2 {
					sub.log.Warn("pub/sub connection silent; replacing it", "node", n.addr)
					return heard, errSilent
				}
				if err := conn.ps.Ping(ctx); err != nil {
					return heard, err
				}
				continue
			}
			var rerr redis.Error
			if !errors.As(err, &rerr) {
				return heard, err
			}
			// An error reply answers the oldest command sent.
			heard, silent = true, 0
			if err := sub.refused(n, conn, err); err != nil {
				return heard, err
			}
			continue
		}
		heard, silent = true, 0
		switch m := msg.(type) {
		case *redis.Message:
			flush()
			sub.h.Message(m.Channel, m.Payload)
		case *redis.Subscription:
			rec, settled, err := sub.confirm(n, conn, m)
			if err != nil {
				return heard, err
			}
			if rec {
				recovered = append(recovered, m.Channel)
			}
			if settled {
				flush()
			}
		}
	}
}

// confirm handles a subscribe or unsubscribe confirmation. It reports
// whether the channel is confirmed again after a loss, and whether no
// command remains unanswered (so Recovered need not wait for more).
func (sub *Subscriber) confirm(n *subNode, conn *subConn, m *redis.Subscription) (recovered, settled bool, err error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if n.down {
		n.down = false
		sub.log.Info("pub/sub connection re-established", "node", n.addr)
	}
	isSub := m.Kind == "subscribe" || m.Kind == "ssubscribe"
	if len(conn.pending) > 0 {
		head := conn.pending[0]
		if head.sub == isSub && head.chans[head.next] == m.Channel {
			head.next++
			if head.next == len(head.chans) {
				conn.pending[0] = nil
				conn.pending = conn.pending[1:]
			}
			return sub.settleLocked(n, m.Channel), len(conn.pending) == 0, nil
		}
	}
	if isSub {
		return false, false, fmt.Errorf("%w: %s %s", errOutOfStep, m.Kind, m.Channel)
	}
	// An unsubscribe nobody sent: Redis dropped the subscription itself,
	// as Redis 7 does with shard channels when their slot leaves the node.
	w := n.wire[m.Channel]
	if w == nil || !w.sub {
		return false, len(conn.pending) == 0, nil
	}
	if w.inflight > 0 {
		return false, false, fmt.Errorf("%w: %s %s while a command for it is unanswered", errOutOfStep, m.Kind, m.Channel)
	}
	sub.log.Info("Redis dropped a subscription (its slot moved?); subscribing again", "node", n.addr, "channel", m.Channel)
	sub.dropWireLocked(n, m.Channel)
	if c := sub.chans[m.Channel]; c != nil && c.node == n {
		sub.unconfirmLocked(c)
		// Subscribing on the same node again is answered with MOVED and
		// the new owner, sooner than the slot map would say.
		sub.markLocked(n, c.name)
	}
	if sub.cluster != nil {
		sub.refresh = true
		sub.wakeLocked()
	}
	return false, len(conn.pending) == 0, nil
}

// settleLocked counts one answer to a command about ch on n.
func (sub *Subscriber) settleLocked(n *subNode, ch string) (recovered bool) {
	w := n.wire[ch]
	if w == nil {
		return false
	}
	w.inflight--
	if w.inflight > 0 {
		return false
	}
	if !w.sub {
		sub.dropWireLocked(n, ch)
		return false
	}
	c := sub.chans[ch]
	if c == nil || c.node != n {
		// Not wanted here any more: the writer, marked when that
		// changed, unsubscribes it.
		return false
	}
	return sub.confirmLocked(c)
}

// confirmLocked marks c, held by its node, as confirmed.
func (sub *Subscriber) confirmLocked(c *subChan) (recovered bool) {
	if c.refs == 0 || c.confirmed {
		return false
	}
	c.confirmed, c.alone = true, false
	if c.ready != nil {
		close(c.ready)
		c.ready = nil
	}
	if c.lost {
		c.lost = false
		return true
	}
	return false
}

// refused handles an error reply, which answers the oldest command sent
// as a whole. A MOVED names the slot's owner: the channels go there.
// Anything else is tried again after a pause.
func (sub *Subscriber) refused(n *subNode, conn *subConn, err error) error {
	msg := err.Error()
	// go-redis reconnects a PubSub by itself after these replies (see
	// isBadConn), re-subscribing what it remembers: what the new
	// connection holds is unknown, so it is replaced once more.
	if strings.HasPrefix(msg, "READONLY") || movedTo(msg) == n.addr && n.addr != "" {
		return fmt.Errorf("pub/sub command refused: %w", err)
	}
	if sub.onErr != nil {
		sub.onErr(err)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(conn.pending) == 0 {
		return fmt.Errorf("%w: error reply to no command: %w", errOutOfStep, err)
	}
	head := conn.pending[0]
	conn.pending[0] = nil
	conn.pending = conn.pending[1:]
	slot, addr, moved := parseMoved(msg)
	if moved && sub.cluster != nil {
		sub.owner[slot] = addr
	}
	for _, ch := range head.chans[head.next:] {
		w := n.wire[ch]
		if w == nil {
			continue
		}
		w.inflight--
		if w.inflight == 0 {
			// Refused or not, nothing is subscribed there: a subscribe
			// was refused, and an unsubscribe is refused only by a node
			// that no longer owns the slot (and dropped it already).
			sub.dropWireLocked(n, ch)
		}
		c := sub.chans[ch]
		if !head.sub || c == nil || c.node != n || c.refs == 0 {
			continue
		}
		if !moved || sub.cluster == nil {
			sub.retry[ch] = struct{}{}
			c.alone = true
		}
	}
	if sub.cluster != nil {
		sub.refresh = true
	}
	sub.wakeLocked()
	if !moved {
		sub.log.Warn("Redis refused a pub/sub command", "node", n.addr, "channels", len(head.chans), "err", err)
	}
	return nil
}

// parseMoved reads "MOVED <slot> <host:port>".
func parseMoved(msg string) (slot int, addr string, ok bool) {
	f := strings.Fields(msg)
	if len(f) != 3 || f[0] != "MOVED" {
		return 0, "", false
	}
	slot, err := strconv.Atoi(f[1])
	if err != nil || slot < 0 || slot >= clusterSlots {
		return 0, "", false
	}
	addr = f[2]
	if strings.HasPrefix(addr, ":") {
		// Redis leaves the host out when it does not know its own
		// endpoint; go-redis keeps the host it dialled then. We cannot
		// know it here: let the slot map say.
		return 0, "", false
	}
	return slot, addr, true
}

func movedTo(msg string) string {
	_, addr, _ := parseMoved(msg)
	return addr
}

// readSlots reads which primary owns each slot (CLUSTER SHARDS). A shard
// without a healthy primary (a failover under way) has its slots unknown.
func (sub *Subscriber) readSlots(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	shards, err := sub.cluster.ClusterShards(rctx).Result()
	if err != nil {
		return err
	}
	owner := make([]string, clusterSlots)
	tls := sub.cluster.Options().TLSConfig != nil
	for _, sh := range shards {
		addr := ""
		for _, nd := range sh.Nodes {
			if nd.Role == "master" && nd.Health == "online" {
				addr = shardNodeAddr(nd, tls)
				break
			}
		}
		if addr == "" {
			continue
		}
		for _, r := range sh.Slots {
			for s := max(r.Start, 0); s <= min(r.End, clusterSlots-1); s++ {
				owner[s] = addr
			}
		}
	}
	sub.mu.Lock()
	sub.owner = owner
	sub.refresh = false
	sub.mu.Unlock()
	return nil
}

func shardNodeAddr(nd redis.Node, tls bool) string {
	host := nd.Endpoint
	if host == "" || host == "?" {
		host = nd.IP
	}
	port := nd.Port
	if tls && nd.TLSPort > 0 || port == 0 {
		port = nd.TLSPort
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// newClusterNodeClient is a client of one cluster node, made as
// ClusterClient makes its own node clients (which are not reachable by
// address). Its PubSubs stay on that node: go-redis's cluster PubSub picks
// its node once, by the hash slot of the first channel (go-redis #3133,
// still open), and since #3829 re-picks it the same way on reconnect, from
// its possibly stale slot map, with one SSUBSCRIBE for every channel it
// holds (CROSSSLOT once they span slots). Each ClusterClient.SSubscribe also
// opens a connection of its own (#3574); one connection per node here
// serves every channel the node owns. And plain Subscribe on a cluster is
// pinned to one node (#3709): Trellis uses SSUBSCRIBE on a cluster anyway.
func newClusterNodeClient(co *redis.ClusterOptions, addr string) *redis.Client {
	o := &redis.Options{
		Addr:                         addr,
		ClientName:                   co.ClientName,
		Dialer:                       co.Dialer,
		OnConnect:                    co.OnConnect,
		Protocol:                     co.Protocol,
		Username:                     co.Username,
		Password:                     co.Password,
		CredentialsProvider:          co.CredentialsProvider,
		CredentialsProviderContext:   co.CredentialsProviderContext,
		StreamingCredentialsProvider: co.StreamingCredentialsProvider,
		MaxRetries:                   co.MaxRetries,
		MinRetryBackoff:              co.MinRetryBackoff,
		MaxRetryBackoff:              co.MaxRetryBackoff,
		DialTimeout:                  co.DialTimeout,
		DialerRetries:                co.DialerRetries,
		DialerRetryTimeout:           co.DialerRetryTimeout,
		DialerRetryBackoff:           co.DialerRetryBackoff,
		ReadTimeout:                  co.ReadTimeout,
		WriteTimeout:                 co.WriteTimeout,
		ContextTimeoutEnabled:        co.ContextTimeoutEnabled,
		PoolSize:                     1, // only its PubSubs are used, which have a pool of their own
		TLSConfig:                    co.TLSConfig,
		DisableIdentity:              co.DisableIdentity,
		IdentitySuffix:               co.IdentitySuffix,
	}
	// As ClusterClient does: its options say "no timeout" as 0, a node
	// client's as -1 (0 would mean the default).
	if o.ReadTimeout == 0 {
		o.ReadTimeout = -1
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = -1
	}
	if co.NewClient != nil {
		return co.NewClient(o)
	}
	return redis.NewClient(o)
}
