package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/trellis-mud/trellis/store"
)

// What players whose session a registry change ended are told.
const (
	ReasonGameRemoved = "this game was removed from the registry"
	ReasonAddrChanged = "this game's address changed; reconnect to play"
)

// StopSession asks whoever runs key's session to end it, telling the
// player reason: a stop command on the control stream, which any worker
// routes to the lease holder. With no lease held no session runs, and
// nothing is published (running is false). correlation ties the command
// to the events it causes; empty: a new one.
func StopSession(ctx context.Context, st *store.Store, key store.SessionKey, reason, correlation string) (id string, running bool, err error) {
	if _, ok, err := st.GetLease(ctx, key); err != nil || !ok {
		return "", false, err
	}
	if correlation == "" {
		correlation = uuid.NewString()
	}
	id, err = st.PublishControl(ctx, store.Command{
		Type: store.CmdStop, User: key.User, Game: key.Game,
		Reason: reason, Correlation: correlation,
	})
	if err != nil {
		return "", true, fmt.Errorf("stop %s: %w", key, err)
	}
	return id, true, nil
}

// StopGameSessions stops every running session of game (found through the
// session index) with reason, and returns how many it asked to stop.
func StopGameSessions(ctx context.Context, st *store.Store, game, reason string) (int, error) {
	list, err := st.ListSessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("find the sessions of %s: %w", game, err)
	}
	n := 0
	for _, si := range list {
		if si.Key.Game != game {
			continue
		}
		_, running, err := StopSession(ctx, st, si.Key, reason, "")
		if err != nil {
			return n, err
		}
		if running {
			n++
		}
	}
	return n, nil
}

// AddrChanged says whether a session connected as old says would now be
// talking to the wrong place, or in the wrong way.
func AddrChanged(old, new store.Game) bool {
	return !strings.EqualFold(old.Host, new.Host) || old.Port != new.Port ||
		old.TLS != new.TLS || old.TLSInsecure != new.TLSInsecure ||
		old.TLSCAFile != new.TLSCAFile || old.TLSPinSHA256 != new.TLSPinSHA256 ||
		old.ProxyProtocol != new.ProxyProtocol
}
