package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/trellis-mud/trellis/internal/dialguard"
	"github.com/trellis-mud/trellis/store"
)

// CheckGames refuses games that point at Trellis's own Redis and returns a
// warning for each host the workers refuse by default, to show once the
// games are written. `trellis games` and the console check every write.
func CheckGames(ctx context.Context, st *store.Store, games ...store.Game) ([]string, error) {
	rc, err := newRegistryCheck(ctx, st)
	if err != nil {
		return nil, err
	}
	return rc.checkAll(ctx, games)
}

// registryCheck judges registry entries before they are written: a game
// at one of Trellis's own Redis endpoints (as the tool's
// TRELLIS_REDIS_URL names them) is refused, since a player would type
// Redis commands into it; a host the workers' dial guard refuses by
// default only gets a warning, because the workers may allow its network
// (TRELLIS_WORKER_ALLOW_NETWORKS), which this tool cannot see. The
// workers check every dial anyway; this catches mistakes when they are
// made.
type registryCheck struct {
	endpoints []string
	own       *dialguard.Guard // refuses Trellis's endpoints, allows everything else
}

// lookupTimeout bounds the name lookups of one game's checks.
const lookupTimeout = 5 * time.Second

func newRegistryCheck(ctx context.Context, st *store.Store) (*registryCheck, error) {
	eps := st.Endpoints()
	deny := make([]dialguard.Endpoint, 0, len(eps))
	for _, e := range eps {
		deny = append(deny, dialguard.Endpoint{HostPort: e, What: "Redis"})
	}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	g, err := dialguard.New(lctx, everything, deny)
	if err != nil {
		return nil, fmt.Errorf("cannot check games against Trellis's own Redis: %w", err)
	}
	return &registryCheck{endpoints: eps, own: g}, nil
}

// check returns an error if g is one of Trellis's own Redis endpoints, and
// otherwise a warning ("" if none) if workers would refuse its host by
// default.
func (r *registryCheck) check(ctx context.Context, g store.Game) (warning string, err error) {
	refuse := func(what string) error {
		return fmt.Errorf("game %s: %s is Trellis's own Redis (%s): players would be typing Redis commands; a game may not point there",
			g.ID, g.Addr(), what)
	}
	port := strconv.Itoa(g.Port)
	for _, ep := range r.endpoints {
		if h, p, err := net.SplitHostPort(ep); err == nil && p == port && strings.EqualFold(h, g.Host) {
			return "", refuse("TRELLIS_REDIS_URL names " + ep)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(g.Host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		// A name that does not resolve now is HostWarning's to report.
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", g.Host)
	}
	for _, a := range addrs {
		var re *dialguard.RefusedError
		if err := r.own.Check(netip.AddrPortFrom(a, uint16(g.Port))); errors.As(err, &re) {
			what := "TRELLIS_REDIS_URL names " + strings.Join(r.endpoints, ", ")
			if a = a.Unmap(); a.String() != g.Host {
				what = g.Host + " resolves to " + a.String() + "; " + what
			}
			return "", refuse(what)
		}
	}
	return dialguard.HostWarning(ctx, g.Host), nil
}

// checkAll checks games (a few at a time: each may wait for DNS) and
// returns every warning, prefixed with the game id, and every refusal.
func (r *registryCheck) checkAll(ctx context.Context, games []store.Game) (warnings []string, err error) {
	warns := make([]string, len(games))
	errs := make([]error, len(games))
	var eg errgroup.Group
	eg.SetLimit(16)
	for i, g := range games {
		eg.Go(func() error {
			warns[i], errs[i] = r.check(ctx, g)
			return nil
		})
	}
	_ = eg.Wait()
	for i, w := range warns {
		if w != "" {
			warnings = append(warnings, "game "+games[i].ID+": "+w)
		}
	}
	return warnings, errors.Join(errs...)
}
