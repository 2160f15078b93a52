package store

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/redistest"
)

// The subscriber on a real Redis Cluster (internal/redistest: 3 primaries,
// one replica each): sharded pub/sub, one connection per primary, channels
// following their slot through a failover and a slot migration.

// clusterChannels returns n channels whose slots cover every primary of c,
// with at least two channels on each.
func clusterChannels(t *testing.T, c *redistest.Cluster, n int) ([]string, map[string]*redistest.Node) {
	t.Helper()
	owner := make(map[string]*redistest.Node)
	perNode := make(map[*redistest.Node]int)
	var chans []string
	for len(chans) < n || len(perNode) < 3 || minCount(perNode) < 2 {
		ch := newChannel(t)
		p, err := c.PrimaryFor(ch)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
		owner[ch] = p
		perNode[p]++
	}
	return chans, owner
}

func minCount(m map[*redistest.Node]int) int {
	low := -1
	for _, v := range m {
		if low < 0 || v < low {
			low = v
		}
	}
	return low
}

// spublish publishes through the cluster client until a receiver counts
// it: right after a failover or a move the client's slot map may be behind.
func spublish(t *testing.T, rdb *redis.ClusterClient, ch, payload string) {
	t.Helper()
	ctx := testContext(t)
	eventually(t, "SPUBLISH "+ch+" reaches a subscriber", func() bool {
		n, err := rdb.SPublish(ctx, ch, payload).Result()
		if err != nil {
			rdb.ReloadState(ctx)
			time.Sleep(20 * time.Millisecond)
		}
		return err == nil && n == 1
	})
}

func clusterNodesOf(sub *Subscriber) []string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var out []string
	for addr := range sub.nodes {
		out = append(out, addr)
	}
	return out
}

func TestClusterSubscribeAcrossSlots(t *testing.T) {
	c := redistest.SharedCluster(t)
	rdb := c.Client(t)
	st := New(rdb)
	if !st.sharded {
		t.Fatal("a store on a cluster client must use sharded pub/sub")
	}
	sub, rec := runSubscriber(t, st, SubscriberOptions{})
	ctx := testContext(t)
	chans, owner := clusterChannels(t, c, 60)
	for _, ch := range chans {
		subscribe(t, sub, ch)
	}
	if got := clusterNodesOf(sub); len(got) != 3 {
		t.Fatalf("connections to %v, want one to each of the 3 primaries", got)
	}
	for i, ch := range chans {
		// Confirmed means held by the slot's owner, not merely by some node.
		if n := numSub(t, owner[ch].Client(t), ch, true); n != 1 {
			t.Fatalf("%s: the slot's owner %s counts %d subscribers", ch, owner[ch], n)
		}
		if n := rdb.SPublish(ctx, ch, fmt.Sprint(i)).Val(); n != 1 {
			t.Fatalf("SPUBLISH %s reached %d subscribers, want 1", ch, n)
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

	// The store's publishers: the append script's SPUBLISH (same slot as
	// the stream) and SendInput's.
	key := SessionKey{User: newChannel(t), Game: "g"}
	subscribe(t, sub, st.OutputChannel(key))
	worker := newChannel(t)
	subscribe(t, sub, st.InputChannel(worker))
	id, err := st.AppendOutput(ctx, key, Output{Kind: OutText, Text: "on a cluster"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendInput(ctx, worker, Command{Type: CmdInput, User: key.User, Game: key.Game, Text: "x", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "output and input arrive", func() bool {
		return len(rec.got(st.OutputChannel(key))) == 1 && len(rec.got(st.InputChannel(worker))) == 1
	})
	if o, _ := ParseOutputMessage(rec.got(st.OutputChannel(key))[0]); o.ID != id {
		t.Fatalf("output id %s, want %s", o.ID, id)
	}

	for _, ch := range append(chans, st.OutputChannel(key), st.InputChannel(worker)) {
		sub.Unsubscribe(ch)
	}
	eventually(t, "unsubscribed everywhere, connections closed", func() bool {
		sub.wakeLocked() // connections nobody needs are closed by Run
		return len(clusterNodesOf(sub)) == 0
	})
	if n := numSub(t, owner[chans[0]].Client(t), chans[0], true); n != 0 {
		t.Fatalf("still %d subscribers after Unsubscribe", n)
	}
}

// A primary dies: its replica takes over, the channels of its slots are
// subscribed again on the new primary and reported recovered; channels of
// the other primaries are not disturbed.
func TestClusterFailover(t *testing.T) {
	c := redistest.NewCluster(t, redistest.ClusterOptions{})
	rdb := c.Client(t)
	st := New(rdb)
	sub, rec := runSubscriber(t, st, SubscriberOptions{PingEvery: time.Second})
	chans, owner := clusterChannels(t, c, 30)
	for _, ch := range chans {
		subscribe(t, sub, ch)
	}
	victim := owner[chans[0]]
	// A store as the components make it (Open: the slot-map reload hook
	// on), writing to a session in the victim's slots.
	ost, err := Open(Config{URL: c.URL(), DialTimeout: time.Second, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ost.Close()
	var victimKey SessionKey
	for i := 0; ; i++ {
		victimKey = SessionKey{User: fmt.Sprint("failover-", i), Game: "g"}
		if p, err := c.PrimaryFor(ost.ks.out(victimKey)); err == nil && p == victim {
			break
		}
	}
	ctx := testContext(t)
	if _, err := ost.AppendOutput(ctx, victimKey, Output{Kind: OutText, Text: "before"}); err != nil {
		t.Fatal(err)
	}
	newPrimary, err := c.KillPrimary(victim)
	if err != nil {
		t.Fatal(err)
	}
	// go-redis alone would go on sending these to the dead address until
	// its 60 s slot-map refresh.
	eventually(t, "a write to the dead primary's slots succeeds on the promoted replica", func() bool {
		_, err := ost.AppendOutput(ctx, victimKey, Output{Kind: OutText, Text: "after"})
		return err == nil
	})
	var moved, stayed []string
	for _, ch := range chans {
		if owner[ch] == victim {
			moved = append(moved, ch)
		} else {
			stayed = append(stayed, ch)
		}
	}
	eventually(t, "the dead primary's channels recovered", func() bool {
		got := rec.recoveredSet()
		for _, ch := range moved {
			if !got[ch] {
				return false
			}
		}
		return true
	})
	for _, ch := range moved {
		if n := numSub(t, newPrimary.Client(t), ch, true); n != 1 {
			t.Fatalf("%s: the new primary %s counts %d subscribers", ch, newPrimary, n)
		}
		spublish(t, rdb, ch, "after failover")
		eventually(t, "delivered after the failover", func() bool { return rec.has(ch, "after failover") })
	}
	got := rec.recoveredSet()
	for _, ch := range stayed {
		if got[ch] {
			t.Errorf("%s (on a primary that stayed up) was reported recovered", ch)
		}
		spublish(t, rdb, ch, "still")
		eventually(t, "delivered on an untouched primary", func() bool { return rec.has(ch, "still") })
	}
}

// A slot moves to another primary (resharding): Redis drops the shard
// channel's subscribers on the old owner (sunsubscribe); the subscriber
// follows the slot to the new owner and reports the channel recovered.
func TestClusterSlotMove(t *testing.T) {
	c := redistest.NewCluster(t, redistest.ClusterOptions{Replicas: -1})
	rdb := c.Client(t)
	st := New(rdb)
	sub, rec := runSubscriber(t, st, SubscriberOptions{PingEvery: time.Second})
	ch, other := newChannel(t), newChannel(t)
	from, err := c.PrimaryFor(ch)
	if err != nil {
		t.Fatal(err)
	}
	for keySlot(other) == keySlot(ch) {
		other = newChannel(t)
	}
	subscribe(t, sub, ch)
	subscribe(t, sub, other)
	primaries, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	var to *redistest.Node
	for _, p := range primaries {
		if p != from {
			to = p
			break
		}
	}
	if err := c.MoveSlot(keySlot(ch), to); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the channel recovered on the slot's new owner", func() bool { return rec.recoveredSet()[ch] })
	if n := numSub(t, to.Client(t), ch, true); n != 1 {
		t.Fatalf("the new owner counts %d subscribers", n)
	}
	if n := numSub(t, from.Client(t), ch, true); n != 0 {
		t.Fatalf("the old owner still counts %d subscribers", n)
	}
	spublish(t, rdb, ch, "moved")
	eventually(t, "delivered after the move", func() bool { return rec.has(ch, "moved") })
	if rec.recoveredSet()[other] {
		t.Error("a channel of a slot that did not move was reported recovered")
	}
	spublish(t, rdb, other, "unmoved")
	eventually(t, "the other channel still delivered", func() bool { return rec.has(other, "unmoved") })

	// And back, with a subscribe of another channel of that slot racing it.
	third := "{" + ch + "}:b"
	if keySlot(third) != keySlot(ch) {
		t.Fatal("hash tag ignored")
	}
	moveBack := make(chan error, 1)
	go func() { moveBack <- c.MoveSlot(keySlot(ch), from) }()
	subscribe(t, sub, third)
	if err := <-moveBack; err != nil {
		t.Fatal(err)
	}
	eventually(t, "back on the first owner", func() bool { return numSub(t, from.Client(t), ch, true) == 1 })
	spublish(t, rdb, ch, "back")
	spublish(t, rdb, third, "third")
	eventually(t, "delivered after moving back", func() bool { return rec.has(ch, "back") && rec.has(third, "third") })
}

// The dial guard refuses every node of the cluster, not only the seeds
// the store was given: replicas and bus ports too.
func TestNodeEndpointsListsEveryClusterNode(t *testing.T) {
	c := redistest.SharedCluster(t)
	cfg := Config{URL: strings.Join(c.Addrs()[:1], ",") + "," + c.Addrs()[1]}
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.NodeEndpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range got {
		have[a] = true
	}
	for _, n := range c.Nodes() {
		if !have[n.Addr] || !have[net.JoinHostPort("127.0.0.1", strconv.Itoa(n.BusPort))] {
			t.Fatalf("node %s (bus %d) missing from %v", n.Addr, n.BusPort, got)
		}
	}
}
