package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The reads below serve the operator's web console (internal/console).

// RecentEvents returns up to count events with ids at or before before
// ("+" for the newest), newest first: the console shows the log's tail
// and pages back from it.
func (s *Store) RecentEvents(ctx context.Context, before string, count int64) ([]Event, error) {
	res, err := s.rdb.XRevRangeN(ctx, s.ks.events(), before, "-", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read events before %s: %w", before, err)
	}
	return decodeEvents(res), nil
}

// EdgeBeat is one edge's heartbeat: the edge is alive while it exists.
type EdgeBeat struct {
	ID   string
	Last time.Time // when the edge last beat
}

// maxEdgeScan bounds the SCAN of heartbeat keys (per node), so a Redis
// full of other keys cannot keep the console's request busy for long.
const maxEdgeScan = 1000

// Edges lists the edges with a live heartbeat, by id. It SCANs for the
// heartbeat keys (on every primary of a cluster); there are as many as
// there are edges.
func (s *Store) Edges(ctx context.Context) ([]EdgeBeat, error) {
	prefix := s.ks.edge("")
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for range maxEdgeScan {
			page, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			keys = append(keys, page...)
			mu.Unlock()
			if cursor = next; cursor == 0 {
				return nil
			}
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // a cluster SCAN may repeat a key during a resharding
	out := make([]EdgeBeat, 0, len(keys))
	for _, k := range keys {
		v, err := s.rdb.Get(ctx, k).Result()
		if isNil(err) {
			continue // expired since the scan
		}
		if err != nil {
			return nil, fmt.Errorf("read heartbeat %s: %w", k, err)
		}
		b := EdgeBeat{ID: unescape(strings.TrimPrefix(k, prefix))}
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			b.Last = time.UnixMilli(ms)
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Operator event types: what operators did through the web console, with
// the operator's name in the data ("operator"). Add, never rename.
const (
	EvOperatorSignedIn      = "trellis.operator.signed_in"
	EvOperatorSessionKilled = "trellis.operator.session_killed" // correlation: the stop command's
	EvOperatorGamesChanged  = "trellis.operator.games_changed"  // data: action (add, update, remove, import) and ids
)
