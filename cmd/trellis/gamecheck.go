package main

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

// What players whose session a registry change ended are told.
const (
	reasonGameRemoved = "this game was removed from the registry"
	reasonAddrChanged = "this game's address changed; reconnect to play"
)

// registryCheck judges registry entries before they are written: a game
// at one of Trellis's own Redis endpoints (as this command's
// TRELLIS_REDIS_URL names them) is refused, since a player would type
// Redis commands into it; a host the workers' dial guard refuses by
// default only gets a warning, because the workers may allow its network
// (TRELLIS_WORKER_ALLOW_NETWORKS), which this command cannot see. The
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

// addrChanged says whether a session connected as old says would now be
// talking to the wrong place, or in the wrong way.
func addrChanged(old, new store.Game) bool {
	return !strings.EqualFold(old.Host, new.Host) || old.Port != new.Port ||
		old.TLS != new.TLS || old.TLSInsecure != new.TLSInsecure
}

// stoppedText is "stopped 1 running session", "stopped 3 running
// sessions", or "no sessions were running".
func stoppedText(n int) string {
	switch n {
	case 0:
		return "no sessions were running"
	case 1:
		return "stopped 1 running session"
	}
	return "stopped " + strconv.Itoa(n) + " running sessions"
}
