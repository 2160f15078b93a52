package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// reloadHook makes a cluster client read the slot map again as soon as a
// node stops answering. go-redis v9 reloads it on MOVED, ASK and READONLY
// replies, and otherwise only every ClusterStateReloadInterval (60 s): after
// a primary dies, every command for its slots goes on being sent to the dead
// address (connection refused, or a timeout) until then, although its
// replica was promoted within seconds. A failed connection is the signal
// that the map may be stale. LazyReload is asynchronous and collapses
// concurrent requests into one CLUSTER SLOTS, so calling it on every such
// error costs nothing extra under a storm of them.
type reloadHook struct{ cc *redis.ClusterClient }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.cc.ReloadState(context.WithoutCancel(ctx))
		}
		return c, err
	}
}

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if nodeGone(ctx, err) {
			h.cc.ReloadState(context.WithoutCancel(ctx))
		}
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if nodeGone(ctx, err) {
			h.cc.ReloadState(context.WithoutCancel(ctx))
		}
		return err
	}
}

// nodeGone reports an error that says the node (not the command) failed:
// the connection broke or timed out, or the cluster says it is reshaping.
func nodeGone(ctx context.Context, err error) bool {
	if err == nil || isNil(err) || ctx.Err() != nil {
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN") ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY") ||
		strings.Contains(msg, "connection pool timeout")
}

// ErrTopology is returned (wrapped) by CheckTopology when TRELLIS_REDIS_URL
// describes the wrong kind of Redis.
var ErrTopology = errors.New("TRELLIS_REDIS_URL does not match the Redis it names")

// CheckTopology tells a single-node URL pointed at a cluster node, and a
// node list pointed at a Redis without cluster support, from a Redis that is
// merely down: the first two are configuration errors (ErrTopology, with
// what to write instead); an unreachable Redis is not (nil: components wait
// for Redis to come up). It asks once, bounded by ctx.
func (s *Store) CheckTopology(ctx context.Context) error {
	switch c := s.rdb.(type) {
	case *redis.Client:
		info, err := c.Info(ctx, "cluster").Result()
		if err != nil {
			return nil
		}
		if infoValue(info, "cluster_enabled") == "1" {
			return fmt.Errorf("%w: %s is a node of a Redis Cluster, but the URL names a single node, so keys of other nodes' slots would fail with MOVED; list the cluster's nodes, comma-separated (redis://a:6379,redis://b:6379; one node is enough to find the rest, and a managed service's configuration endpoint may be written twice)",
				ErrTopology, c.Options().Addr)
		}
	case *redis.ClusterClient:
		err := c.Ping(ctx).Err()
		if err != nil && strings.Contains(err.Error(), "cluster support disabled") {
			return fmt.Errorf("%w: it lists nodes of a Redis Cluster (%s), but that Redis has cluster support disabled; give it as one redis:// URL, or enable cluster mode on the server",
				ErrTopology, strings.Join(c.Options().Addrs, ","))
		}
	}
	return nil
}

func infoValue(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
