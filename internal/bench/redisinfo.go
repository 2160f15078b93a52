package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// redisSnapshot is what the benchmark reads from Redis's INFO: memory and
// how many times each command ran. On a cluster both are sums over the
// primaries (replicas, when there are any, would count every write again).
type redisSnapshot struct {
	UsedMemory int64
	Calls      map[string]int64 // command name -> calls (commands run by scripts included)
	// Pids are the primaries' process ids (INFO server), for their CPU
	// time: the benchmark starts them on this machine.
	Pids []int
}

// readRedis reads INFO memory, commandstats and server: of the node, or of
// every primary of a cluster.
func readRedis(ctx context.Context, rdb redis.UniversalClient) (redisSnapshot, error) {
	s := redisSnapshot{Calls: make(map[string]int64)}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		err := readNode(ctx, rdb, &s)
		return s, err
	}
	var mu sync.Mutex
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		var one redisSnapshot
		one.Calls = make(map[string]int64)
		if err := readNode(ctx, node, &one); err != nil {
			return fmt.Errorf("%s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		s.add(one)
		return nil
	})
	slices.Sort(s.Pids)
	return s, err
}

func (s *redisSnapshot) add(o redisSnapshot) {
	s.UsedMemory += o.UsedMemory
	for k, v := range o.Calls {
		s.Calls[k] += v
	}
	s.Pids = append(s.Pids, o.Pids...)
}

// readNode reads one node's figures into s.
func readNode(ctx context.Context, rdb redis.Cmdable, s *redisSnapshot) error {
	info, err := rdb.Info(ctx, "server", "memory", "commandstats").Result()
	if err != nil {
		return fmt.Errorf("redis INFO: %w", err)
	}
	s.Calls = parseCommandStats(info)
	if v, ok := infoField(info, "used_memory"); ok {
		s.UsedMemory, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := infoField(info, "process_id"); ok {
		if pid, err := strconv.Atoi(v); err == nil {
			s.Pids = []int{pid}
		}
	}
	return nil
}

func infoField(info, name string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// parseCommandStats reads lines such as
//
//	cmdstat_xadd:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0
func parseCommandStats(info string) map[string]int64 {
	out := make(map[string]int64)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		name, ok = strings.CutPrefix(name, "cmdstat_")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out
}

// callsSince returns the commands run between two snapshots, leaving out
// the benchmark's own INFO calls and the cluster client's topology reads.
func callsSince(before, after redisSnapshot) map[string]int64 {
	d := make(map[string]int64)
	for name, n := range after.Calls {
		if name == "info" || name == "cluster" {
			continue
		}
		if k := n - before.Calls[name]; k > 0 {
			d[name] = k
		}
	}
	return d
}

func sum(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}
