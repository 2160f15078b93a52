package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/internal/ops"
	"github.com/trellis-mud/trellis/store"
)

func runSessions(ctx context.Context, args []string) error {
	const synopsis = "sessions ls | show USER/GAME | kill USER/GAME [-reason TEXT] [-o json]"
	fs := newFlags("sessions", synopsis, redisSection(&store.Config{}))
	out := outputFlag(fs)
	reason := fs.String("reason", "stopped by an operator", "kill: the reason shown to the player")
	if len(args) > 0 && isHelp(args[0]) {
		args = []string{"--help"}
	}
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("missing subcommand: ls, show USER/GAME or kill USER/GAME")
	}
	sub, pos := pos[0], pos[1:]
	var key store.SessionKey
	switch sub {
	case "ls", "list":
		if len(pos) > 0 {
			return usageErrorf("ls takes no arguments (got %q)", pos[0])
		}
	case "show", "kill":
		if key, err = sessionArg(pos); err != nil {
			return err
		}
	default:
		return usageErrorf("unknown subcommand %q: want ls, show or kill", sub)
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	st, _, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()

	switch sub {
	case "ls", "list":
		list, err := st.ListSessions(ctx)
		if err != nil {
			return err
		}
		if *out == "json" {
			js := make([]sessionJSON, 0, len(list))
			for _, si := range list {
				js = append(js, toSessionJSON(si))
			}
			return writeJSON(os.Stdout, js)
		}
		t := newTable("USER", "GAME", "STATE", "VIEWERS", "WORKER", "FENCE", "UP")
		for _, s := range list {
			t.row(s.Key.User, s.Key.Game, s.State, strconv.Itoa(s.Viewers), s.Worker,
				strconv.FormatInt(s.Fence, 10), since(s.Started))
		}
		t.flush()
		fmt.Fprintf(os.Stderr, "%s\n", plural(len(list), "session"))
		return nil
	case "show":
		si, ok, err := st.GetSession(ctx, key)
		if err != nil {
			return err
		}
		lease, leased, err := st.GetLease(ctx, key)
		if err != nil {
			return err
		}
		if !ok && !leased {
			return fmt.Errorf("no session for %s", key)
		}
		if *out == "json" {
			j := sessionShowJSON{User: key.User, Game: key.Game, Running: leased}
			if ok {
				sj := toSessionJSON(si)
				j.Session = &sj
			}
			if leased {
				j.Lease = &leaseJSON{Owner: lease.Owner, SessionID: lease.Session, Fence: lease.Fence,
					Acquired: lease.Acquired, Renewed: lease.Renewed}
			}
			return writeJSON(os.Stdout, j)
		}
		t := newTable("FIELD", "VALUE")
		t.row("session", key.String())
		if ok {
			t.row("state", si.State)
			t.row("viewers", strconv.Itoa(si.Viewers))
			t.row("worker", si.Worker)
			t.row("session id", si.Session)
			t.row("started", si.Started.Format(time.RFC3339)+" ("+since(si.Started)+" ago)")
		}
		if leased {
			t.row("lease owner", lease.Owner)
			t.row("lease fence", strconv.FormatInt(lease.Fence, 10))
			t.row("lease renewed", since(lease.Renewed)+" ago")
		} else {
			t.row("lease", "none (the session is not running)")
		}
		t.flush()
		return nil
	case "kill":
		id, running, err := stopSession(ctx, st, key, *reason)
		if err != nil {
			return err
		}
		if !running {
			return fmt.Errorf("no running session for %s", key)
		}
		fmt.Printf("Asked the owner to stop %s (control entry %s).\n", key, id)
		return nil
	}
	return nil
}

// plural is "1 session", "2 sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// stopSession and stopGameSessions are ops's: the web console's kill
// publishes the same stop.
func stopSession(ctx context.Context, st *store.Store, key store.SessionKey, reason string) (id string, running bool, err error) {
	return ops.StopSession(ctx, st, key, reason, "")
}

var stopGameSessions = ops.StopGameSessions

// sessionArg parses USER/GAME (the game id has no slash; the user may).
func sessionArg(args []string) (store.SessionKey, error) {
	if len(args) != 1 {
		return store.SessionKey{}, usageErrorf("want one USER/GAME argument")
	}
	i := strings.LastIndexByte(args[0], '/')
	if i <= 0 || i == len(args[0])-1 {
		return store.SessionKey{}, usageErrorf("%q is not USER/GAME", args[0])
	}
	return store.SessionKey{User: args[0][:i], Game: args[0][i+1:]}, nil
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
