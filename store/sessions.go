package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SessionInfo says what runs where: one record per live session, kept by
// the owning worker.
type SessionInfo struct {
	Key     SessionKey
	Worker  string
	Session string
	Fence   int64
	State   string // one of the State constants
	Started time.Time
	Updated time.Time
	Viewers int
}

// PutSession records (or updates) a session and indexes it.
func (s *Store) PutSession(ctx context.Context, si SessionInfo) error {
	if si.Updated.IsZero() {
		si.Updated = s.now()
	}
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, s.ks.session(si.Key),
		"user", si.Key.User, "game", si.Key.Game,
		"worker", si.Worker, "session", si.Session,
		"fence", si.Fence, "state", si.State,
		"started", si.Started.UnixMilli(), "updated", si.Updated.UnixMilli(),
		"viewers", si.Viewers)
	pipe.SAdd(ctx, s.ks.sessions(indexShard(si.Key)), si.Key.indexMember())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record session %s: %w", si.Key, err)
	}
	return nil
}

// DeleteSession removes the record of session id of key, unless a newer
// session has replaced it.
func (s *Store) DeleteSession(ctx context.Context, key SessionKey, session string) error {
	n, err := deleteSessionScript.Run(ctx, s.rdb, []string{s.ks.session(key)}, session).Int()
	if err != nil {
		return fmt.Errorf("delete session %s: %w", key, err)
	}
	if n == 1 {
		// The index lives in another slot; a failure here leaves a member
		// that ListSessions prunes.
		_ = s.rdb.SRem(ctx, s.ks.sessions(indexShard(key)), key.indexMember()).Err()
	}
	return nil
}

// SetSessionViewers records how many viewers the session of fence has
// now. (Its state follows the status entries written to the output stream.)
func (s *Store) SetSessionViewers(ctx context.Context, key SessionKey, fence int64, viewers int) error {
	if err := setViewersScript.Run(ctx, s.rdb, []string{s.ks.session(key)}, fence, viewers, s.now().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("set viewers of %s: %w", key, err)
	}
	return nil
}

// GetSession returns the record of key, ok=false if none.
func (s *Store) GetSession(ctx context.Context, key SessionKey) (SessionInfo, bool, error) {
	m, err := s.rdb.HGetAll(ctx, s.ks.session(key)).Result()
	if err != nil {
		return SessionInfo{}, false, fmt.Errorf("get session %s: %w", key, err)
	}
	if len(m) == 0 {
		return SessionInfo{}, false, nil
	}
	return sessionFromHash(key, m), true, nil
}

func sessionFromHash(key SessionKey, m map[string]string) SessionInfo {
	si := SessionInfo{Key: key, Worker: m["worker"], Session: m["session"], State: m["state"]}
	si.Fence, _ = strconv.ParseInt(m["fence"], 10, 64)
	si.Viewers, _ = strconv.Atoi(m["viewers"])
	si.Started = msTime(m["started"])
	si.Updated = msTime(m["updated"])
	return si
}

// ListSessions returns every indexed session, ordered by user then game.
// Index members whose record is gone (a worker died before cleaning up)
// are pruned on the way.
func (s *Store) ListSessions(ctx context.Context) ([]SessionInfo, error) {
	pipe := s.rdb.Pipeline()
	shards := make([]*redis.StringSliceCmd, IndexShards)
	for i := range shards {
		shards[i] = pipe.SMembers(ctx, s.ks.sessions(i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var keys []SessionKey
	for _, c := range shards {
		for _, m := range c.Val() {
			if k, ok := parseIndexMember(m); ok {
				keys = append(keys, k)
			}
		}
	}
	out := make([]SessionInfo, 0, len(keys))
	const batch = 500
	for start := 0; start < len(keys); start += batch {
		end := min(start+batch, len(keys))
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, end-start)
		for i, k := range keys[start:end] {
			cmds[i] = pipe.HGetAll(ctx, s.ks.session(k))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		stale := s.rdb.Pipeline()
		for i, c := range cmds {
			k := keys[start+i]
			if len(c.Val()) == 0 {
				stale.SRem(ctx, s.ks.sessions(indexShard(k)), k.indexMember())
				continue
			}
			out = append(out, sessionFromHash(k, c.Val()))
		}
		if stale.Len() > 0 {
			_, _ = stale.Exec(ctx)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.User != out[j].Key.User {
			return out[i].Key.User < out[j].Key.User
		}
		return out[i].Key.Game < out[j].Key.Game
	})
	return out, nil
}

// CountUserSessions counts the live leases of a user across the given games
// (the edge's per-user session limit).
func (s *Store) CountUserSessions(ctx context.Context, user string, games []string) (int, error) {
	if len(games) == 0 {
		return 0, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(games))
	for i, g := range games {
		cmds[i] = pipe.Exists(ctx, s.ks.lease(SessionKey{User: user, Game: g}))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count sessions of %s: %w", user, err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// EdgeHeartbeat marks an edge alive for ttl. Workers use it to forget
// viewers held by an edge that died without sending their detaches.
func (s *Store) EdgeHeartbeat(ctx context.Context, edge string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.ks.edge(edge), s.now().UnixMilli(), ttl).Err(); err != nil {
		return fmt.Errorf("heartbeat of edge %s: %w", edge, err)
	}
	return nil
}

// EdgeGone removes an edge's heartbeat at once (clean shutdown).
func (s *Store) EdgeGone(ctx context.Context, edge string) error {
	if err := s.rdb.Del(ctx, s.ks.edge(edge)).Err(); err != nil {
		return fmt.Errorf("remove heartbeat of edge %s: %w", edge, err)
	}
	return nil
}

// LiveEdges reports which of the given edges have a live heartbeat.
func (s *Store) LiveEdges(ctx context.Context, edges []string) (map[string]bool, error) {
	live := make(map[string]bool, len(edges))
	if len(edges) == 0 {
		return live, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(edges))
	for i, e := range edges {
		cmds[i] = pipe.Exists(ctx, s.ks.edge(e))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("check %d edges: %w", len(edges), err)
	}
	for i, c := range cmds {
		live[edges[i]] = c.Val() == 1
	}
	return live, nil
}
