package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// maxBlockSlice bounds one blocking read (XREAD / XREADGROUP BLOCK).
//
// go-redis ignores a context's deadline and cancellation while a command
// waits for its reply, unless the client was built with
// ContextTimeoutEnabled (Connect does that, but New accepts any client), and
// BLOCK 0 waits forever. So a read that should wait "until ctx is done" is
// cut into slices that each end by ctx's deadline, with ctx checked between
// them: a cancelled reader is noticed within one slice.
const maxBlockSlice = 5 * time.Second

// blockInSlices calls read with block times that together cover block (0 or
// less: until ctx is done), each at most maxBlockSlice and none past ctx's
// deadline, until read reports that it got something or fails. When block
// runs out with nothing read it returns nil; when ctx ends first, ctx's
// error.
func blockInSlices(ctx context.Context, block time.Duration, read func(slice time.Duration) (got bool, err error)) error {
	var until time.Time
	if block > 0 {
		until = time.Now().Add(block)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		slice := maxBlockSlice
		if !until.IsZero() {
			left := time.Until(until)
			if left <= 0 {
				return nil
			}
			slice = min(slice, left)
		}
		if dl, ok := ctx.Deadline(); ok {
			slice = min(slice, time.Until(dl))
		}
		// BLOCK counts whole milliseconds and 0 means forever: never send it.
		slice = max(slice, time.Millisecond)
		got, err := read(slice)
		if err != nil || got {
			return err
		}
	}
}

// resolveNewest turns "$" (only entries newer than now) into the id of the
// stream's newest entry, so that a read cut into slices by blockInSlices
// does not lose an entry added between two slices. Other ids pass through.
func (s *Store) resolveNewest(ctx context.Context, stream, after string) (string, error) {
	if after != "$" {
		return after, nil
	}
	last, err := s.rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(last) == 0 {
		return "0-0", nil
	}
	return last[0].ID, nil
}

// readBlocking reads entries of one stream after the id after, waiting up
// to block (0: until ctx is done) in slices, as blockInSlices explains.
func (s *Store) readBlocking(ctx context.Context, key, after string, count int64, block time.Duration) ([]redis.XMessage, error) {
	var res []redis.XStream
	err := blockInSlices(ctx, block, func(slice time.Duration) (bool, error) {
		var err error
		res, err = s.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{key, after},
			Count:   count,
			Block:   slice,
		}).Result()
		if errors.Is(err, redis.Nil) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	var msgs []redis.XMessage
	for _, st := range res {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, nil
}
