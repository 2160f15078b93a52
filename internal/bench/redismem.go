package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisBreakdown is where one redis-server's memory is at one moment:
// used_memory split as Redis itself splits it (INFO memory), the keys by
// kind with MEMORY USAGE, and the client connections by the process that
// holds them. The logged-in scenario takes one before and one after its
// sessions, so that a per-session figure can be traced to what grew.
type RedisBreakdown struct {
	Info map[string]int64 `json:"info"` // INFO memory fields (bytes)
	Keys int64            `json:"keys"` // DBSIZE
	// KeyKinds is keys grouped by kind: a session key by its suffix
	// ("session:out"), another with its hash tag folded ("{ctl:*}:control").
	KeyKinds map[string]KeyKind `json:"key_kinds"`
	// Clients are the connections grouped by who holds them.
	Clients map[string]ClientGroup `json:"clients"`
	// OutKinds is every session's output stream taken apart: entries by
	// kind (the payload's "k", with its GMCP package; demo-game arrival
	// lines, "X arrives.", apart as ArrivalKind), Bytes each kind's share
	// of the streams' MEMORY USAGE by payload bytes.
	OutKinds       map[string]KeyKind `json:"out_kinds,omitempty"`
	PubSubChannels int64              `json:"pubsub_channels"`
	ShardChannels  int64              `json:"shard_channels"`
	Error          string             `json:"error,omitempty"`
}

// KeyKind is the keys of one kind and their MEMORY USAGE.
type KeyKind struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
	// Entries is the stream entries, for streams (XLEN summed).
	Entries int64 `json:"entries,omitempty"`
	// Samples are a few payloads of the kind (output streams only).
	Samples []string `json:"samples,omitempty"`
}

// ClientGroup is the connections of one holder: their number and their
// buffers as CLIENT LIST reports them.
type ClientGroup struct {
	Count  int64 `json:"count"`
	TotMem int64 `json:"tot_mem"`
	Qbuf   int64 `json:"qbuf"`
	Omem   int64 `json:"omem"`
	Subs   int64 `json:"subscriptions"` // sub + psub + ssub
}

// redisInfoFields are the INFO memory figures worth a per-session delta.
var redisInfoFields = []string{
	"used_memory", "used_memory_rss", "used_memory_dataset", "used_memory_overhead", "used_memory_startup",
	"mem_clients_normal", "mem_clients_slaves", "used_memory_scripts", "used_memory_vm_eval", "mem_not_counted_for_evict",
	"mem_replication_backlog", "allocator_allocated", "allocator_resident",
}

var hashTag = regexp.MustCompile(`\{[^}]*\}`)

// keyKind groups a key name: session keys (hash tag {ug:...}) by suffix,
// any other with its hash tag folded and the namespace cut off.
func keyKind(key string) string {
	if i := strings.Index(key, "{ug:"); i >= 0 {
		if j := strings.Index(key[i:], "}"); j >= 0 {
			return "session" + key[i+j+1:]
		}
	}
	if _, rest, ok := strings.Cut(key, ":"); ok {
		key = rest
	}
	return hashTag.ReplaceAllString(key, "{*}")
}

// readBreakdown reads a single node's breakdown; owners maps a client's
// source port to the name of the process holding it.
func readBreakdown(ctx context.Context, rdb redis.UniversalClient, owners map[int]string) RedisBreakdown {
	b := RedisBreakdown{Info: map[string]int64{}, KeyKinds: map[string]KeyKind{}, Clients: map[string]ClientGroup{}}
	if _, ok := rdb.(*redis.ClusterClient); ok {
		b.Error = "breakdown is read on a single node only"
		return b
	}
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		b.Error = err.Error()
		return b
	}
	for _, f := range redisInfoFields {
		if v, ok := infoField(info, f); ok {
			b.Info[f], _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	b.Keys, _ = rdb.DBSize(ctx).Result()
	var keys []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	usageOf := map[string]int64{}
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		usage := make([]*redis.IntCmd, len(part))
		types := make([]*redis.StatusCmd, len(part))
		_, _ = rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for j, k := range part {
				usage[j] = pl.MemoryUsage(ctx, k, 0)
				types[j] = pl.Type(ctx, k)
			}
			return nil
		})
		var streams []string
		for j, k := range part {
			usageOf[k] = usage[j].Val()
			kk := b.KeyKinds[keyKind(k)]
			kk.Count++
			kk.Bytes += usage[j].Val()
			b.KeyKinds[keyKind(k)] = kk
			if types[j].Val() == "stream" {
				streams = append(streams, k)
			}
		}
		lens := make([]*redis.IntCmd, len(streams))
		_, _ = rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for j, k := range streams {
				lens[j] = pl.XLen(ctx, k)
			}
			return nil
		})
		for j, k := range streams {
			kk := b.KeyKinds[keyKind(k)]
			kk.Entries += lens[j].Val()
			b.KeyKinds[keyKind(k)] = kk
		}
	}
	b.OutKinds = outKinds(ctx, rdb, keys, usageOf)
	list, err := rdb.ClientList(ctx).Result()
	if err == nil {
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			f := clientFields(line)
			who := "other"
			if _, port, ok := strings.Cut(f["addr"], ":"); ok {
				p, _ := strconv.Atoi(port)
				if n, ok := owners[p]; ok {
					who = n
				}
			}
			if f["name"] != "" {
				who += " (" + f["name"] + ")"
			}
			num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
			g := b.Clients[who]
			g.Count++
			g.TotMem += num("tot-mem")
			g.Qbuf += num("qbuf")
			g.Omem += num("omem")
			g.Subs += num("sub") + num("psub") + num("ssub")
			b.Clients[who] = g
		}
	}
	if v, err := rdb.PubSubChannels(ctx, "*").Result(); err == nil {
		b.PubSubChannels = int64(len(v))
	}
	if v, err := rdb.PubSubShardChannels(ctx, "*").Result(); err == nil {
		b.ShardChannels = int64(len(v))
	}
	return b
}

func clientFields(line string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// socketOwners maps the local port of every TCP socket the given
// processes hold to the process's name (/proc/<pid>/fd and /proc/net/tcp).
func socketOwners(procs map[int]string) map[int]string {
	inodes := map[string]string{}
	for pid, name := range procs {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = name
			}
		}
	}
	out := map[int]string{}
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 {
				continue
			}
			name, ok := inodes[fs[9]]
			if !ok {
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				out[int(p)] = name
			}
		}
		f.Close()
	}
	return out
}

// breakdownDelta is after minus before per session, as lines for a report.
func breakdownDelta(before, after RedisBreakdown, n int) []string {
	if n <= 0 {
		return nil
	}
	per := func(d int64) string { return fmt.Sprintf("%.0f B", float64(d)/float64(n)) }
	var out []string
	for _, f := range redisInfoFields {
		if d := after.Info[f] - before.Info[f]; d != 0 {
			out = append(out, fmt.Sprintf("%s %s", f, per(d)))
		}
	}
	out = append(out, fmt.Sprintf("keys %.2f", float64(after.Keys-before.Keys)/float64(n)))
	var kinds []string
	for k := range after.KeyKinds {
		kinds = append(kinds, k)
	}
	for k := range before.KeyKinds {
		if _, ok := after.KeyKinds[k]; !ok {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		a, b := after.KeyKinds[k], before.KeyKinds[k]
		if a.Count == b.Count && a.Bytes == b.Bytes && a.Entries == b.Entries {
			continue
		}
		out = append(out, fmt.Sprintf("key %s: %+d keys, %s, %+d entries", k, a.Count-b.Count, per(a.Bytes-b.Bytes), a.Entries-b.Entries))
	}
	var who []string
	for k := range after.Clients {
		who = append(who, k)
	}
	for k := range before.Clients {
		if _, ok := after.Clients[k]; !ok {
			who = append(who, k)
		}
	}
	slices.Sort(who)
	for _, k := range who {
		a, b := after.Clients[k], before.Clients[k]
		out = append(out, fmt.Sprintf("clients %s: %d -> %d, tot-mem %d -> %d B (qbuf %d, omem %d, subscriptions %d)", k, b.Count, a.Count, b.TotMem, a.TotMem, a.Qbuf, a.Omem, a.Subs))
	}
	var outKinds []string
	for k := range after.OutKinds {
		outKinds = append(outKinds, k)
	}
	slices.Sort(outKinds)
	for _, k := range outKinds {
		a, b := after.OutKinds[k], before.OutKinds[k]
		out = append(out, fmt.Sprintf("output streams, %s: %.1f entries, %s", k, float64(a.Entries-b.Entries)/float64(n), per(a.Bytes-b.Bytes)))
	}
	out = append(out, fmt.Sprintf("pubsub channels %d -> %d, shard channels %d -> %d", before.PubSubChannels, after.PubSubChannels, before.ShardChannels, after.ShardChannels))
	return out
}

// ArrivalKind is the OutKinds entry for the demo game's "X arrives."
// (and "X leaves.") lines: every player in its one room sees every later login, so a
// session's stream holds one for each player after it, O(N) per session.
// That is the game talking, not what an idle session costs Trellis.
const ArrivalKind = "text: others' arrivals"

var arrivalLine = regexp.MustCompile(`[A-Za-z]+ (?:arrives|leaves)\.`)

// isArrival reports whether a text entry is only arrival (or departure:
// a session that ended) lines, with the line breaks and the redrawn
// prompt ("> ") around them.
func isArrival(text string) bool {
	if !arrivalLine.MatchString(text) {
		return false
	}
	rest := strings.NewReplacer(">", "", "\r", "", "\n", "", " ", "").Replace(arrivalLine.ReplaceAllString(text, ""))
	return rest == ""
}

// outKinds reads every session's output stream and splits its entries and
// memory by kind.
func outKinds(ctx context.Context, rdb redis.UniversalClient, keys []string, usageOf map[string]int64) map[string]KeyKind {
	var outs []string
	for _, k := range keys {
		if keyKind(k) == "session:out" {
			outs = append(outs, k)
		}
	}
	total := map[string]KeyKind{}
	const chunk = 100
	for i := 0; i < len(outs); i += chunk {
		part := outs[i:min(i+chunk, len(outs))]
		cmds := make([]*redis.XMessageSliceCmd, len(part))
		_, _ = rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for j, k := range part {
				cmds[j] = pl.XRange(ctx, k, "-", "+")
			}
			return nil
		})
		for j, k := range part {
			payload := map[string]int64{}
			count := map[string]int64{}
			samples := map[string][]string{}
			var all int64
			for _, m := range cmds[j].Val() {
				for _, v := range m.Values {
					str, _ := v.(string)
					var p struct {
						Kind    string `json:"k"`
						Package string `json:"g"`
						Text    string `json:"t"`
					}
					_ = json.Unmarshal([]byte(str), &p)
					kind := p.Kind
					switch {
					case p.Package != "":
						kind += " " + p.Package
					case p.Kind == "text" && isArrival(p.Text):
						kind = ArrivalKind
					}
					if len(samples[kind]) < 3 && len(total[kind].Samples) < 3 {
						samples[kind] = append(samples[kind], str[:min(len(str), 160)])
					}
					payload[kind] += int64(len(str))
					count[kind]++
					all += int64(len(str))
				}
			}
			for kind, n := range payload {
				kk := total[kind]
				kk.Count += count[kind]
				kk.Entries += count[kind]
				if len(kk.Samples) < 3 {
					kk.Samples = append(kk.Samples, samples[kind]...)
				}
				if all > 0 {
					kk.Bytes += usageOf[k] * n / all
				}
				total[kind] = kk
			}
		}
	}
	return total
}
