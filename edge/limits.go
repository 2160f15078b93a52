package edge

import (
	"context"
	"fmt"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// checkSessionLimit counts the user's sessions in other games; the game
// being attached does not count (a reload re-attaches it). A session
// counts if its lease is live or if this edge has a viewer attaching to it:
// a worker takes the lease only some time after the attach, so leases
// alone would let a script saying hello to game after game open a game
// connection for each before the first lease appears. (Hellos spread over
// several edges at once can still get past it, by at most one batch.)
//
// Over the limit it returns the Disconnect (4029) to close with; other
// errors are the store's.
func (s *Server) checkSessionLimit(ctx context.Context, user, game string) error {
	limit := s.cfg.MaxSessionsPerUser
	if limit == 0 {
		return nil
	}
	games, err := s.st.ListGames(ctx)
	if err != nil {
		return fmt.Errorf("count sessions: %w", err)
	}
	ids := make([]string, 0, len(games))
	local := 0
	for _, g := range games {
		switch {
		case g.ID == game:
		case s.hub.attaching(store.SessionKey{User: user, Game: g.ID}):
			local++
		default:
			ids = append(ids, g.ID)
		}
	}
	n, err := s.st.CountUserSessions(ctx, user, ids)
	if err != nil {
		return fmt.Errorf("count sessions: %w", err)
	}
	n += local
	if n >= limit {
		return Disconnect{Code: wire.CloseTooManySessions,
			Reason: fmt.Sprintf("too many sessions: %d of %d in use; leave another game first", n, limit)}
	}
	return nil
}
