package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisSnapshot is what the benchmark reads from Redis's INFO: memory and
// how many times each command ran.
type redisSnapshot struct {
	UsedMemory int64
	Calls      map[string]int64 // command name -> calls (commands run by scripts included)
}

// readRedis reads INFO memory and INFO commandstats.
func readRedis(ctx context.Context, rdb redis.UniversalClient) (redisSnapshot, error) {
	mem, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return redisSnapshot{}, fmt.Errorf("redis INFO memory: %w", err)
	}
	stats, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return redisSnapshot{}, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	s := redisSnapshot{Calls: parseCommandStats(stats)}
	if v, ok := infoField(mem, "used_memory"); ok {
		s.UsedMemory, _ = strconv.ParseInt(v, 10, 64)
	}
	return s, nil
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
// the benchmark's own INFO calls.
func callsSince(before, after redisSnapshot) map[string]int64 {
	d := make(map[string]int64)
	for name, n := range after.Calls {
		if name == "info" {
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
