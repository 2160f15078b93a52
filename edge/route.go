package edge

import (
	"context"
	"errors"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// errNoOwner says no worker holds the session, or none answered on the
// owner's channel: the line was not sent.
var errNoOwner = errors.New("no worker holds the session")

// sendInput sends cmd to the session's owner with the fence it holds: the
// route cached from the last lease read or status entry, else a lease read.
// A cached route that no worker answers on is refreshed once.
//
// A PUBLISH that reaches the owner's channel does not mean the line
// reaches the game: a worker paused past its lease still has a
// subscription, and drops the line when it wakes. So with in given, the
// line (cmd.Seq) is tracked there under the fence it was sent with, before
// each publish (the record can come back before the publish returns), and
// taken back when the publish failed. forgot reports that tracking it
// pushed an older line out (see inputTracker.add).
func (s *session) sendInput(ctx context.Context, st *store.Store, cmd store.Command, in *inputTracker, now time.Time) (forgot bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		owner, fence, ok := s.route()
		if !ok || attempt > 0 {
			l, live, err := st.GetLease(ctx, s.key)
			if err != nil {
				return forgot, err
			}
			s.setRoute(l, live)
			if !live {
				return forgot, errNoOwner
			}
			owner, fence = l.Owner, l.Fence
			if o, f, ok := s.route(); ok && f > fence {
				owner, fence = o, f // a status entry newer than this read
			}
		}
		cmd.Fence = fence
		if in != nil && in.add(cmd.Seq, fence, now) {
			forgot = true
		}
		err := st.SendInput(ctx, owner, cmd)
		if err == nil {
			return forgot, nil
		}
		if in != nil {
			in.remove(cmd.Seq) // the caller tells the player
		}
		if !errors.Is(err, store.ErrNoReceiver) {
			return forgot, err
		}
	}
	return forgot, errNoOwner
}
