package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// captureAll runs args with os.Stdout and os.Stderr captured (warnings go
// straight to os.Stderr).
func captureAll(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	pipe := func(f **os.File) func() string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		saved := *f
		*f = w
		done := make(chan string)
		go func() {
			var b bytes.Buffer
			_, _ = b.ReadFrom(r)
			done <- b.String()
		}()
		return func() string {
			*f = saved
			w.Close()
			return <-done
		}
	}
	endOut, endErr := pipe(&os.Stdout), pipe(&os.Stderr)
	code, msg := run(t, args...)
	return code, endOut(), endErr() + msg
}

// gamesTestStore points the commands at a fresh database and returns a
// store on it.
func gamesTestStore(t *testing.T) *store.Store {
	t.Helper()
	return openTestStore(t, useRedis(t))
}

// runSession records a session the way a worker does: a lease, then the
// session record (indexed). leased=false leaves a record whose worker died
// and whose lease expired.
func runSession(t *testing.T, st *store.Store, user, game string, leased bool) store.SessionKey {
	t.Helper()
	ctx := context.Background()
	key := store.SessionKey{User: user, Game: game}
	si := store.SessionInfo{Key: key, Worker: "w1-abcd", Session: "s-" + user + "-" + game,
		State: store.StateConnected, Started: time.Now(), Viewers: 1}
	if leased {
		l, err := st.AcquireLease(ctx, key, "w1-abcd", si.Session, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		si.Fence = l.Fence
	}
	if err := st.PutSession(ctx, si); err != nil {
		t.Fatal(err)
	}
	return key
}

// stops returns the stop commands on the control stream after id from,
// as "user/game: reason", sorted, and the id of the last entry.
func stops(t *testing.T, st *store.Store, from string) ([]string, string) {
	t.Helper()
	entries, err := st.ControlEntries(context.Background(), from, "+", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	last := from
	for _, e := range entries {
		last = e.ID
		if e.ID == from {
			continue
		}
		if e.Err != nil || e.Command.Type != store.CmdStop || e.Command.Correlation == "" {
			t.Errorf("control entry %s: %+v %v, want a stop with a correlation id", e.ID, e.Command, e.Err)
			continue
		}
		out = append(out, e.Command.Key().String()+": "+e.Command.Reason)
	}
	slices.Sort(out)
	return out, last
}

func keys(reason string, ks ...store.SessionKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.String()+": "+reason)
	}
	slices.Sort(out)
	return out
}

// Removing a game stops its running sessions, and only those: a session
// keeps its socket to the game otherwise, and the player keeps playing a
// game the operator removed.
func TestGamesRmStopsTheGamesSessions(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	for _, g := range []store.Game{{ID: "mud", Name: "MUD", Host: "8.8.8.8", Port: 4000}, {ID: "other", Name: "Other", Host: "8.8.4.4", Port: 4000}} {
		if err := st.PutGame(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	ann := runSession(t, st, "ann", "mud", true)
	bob := runSession(t, st, "bob/x", "mud", true) // user ids may hold a slash
	runSession(t, st, "ann", "other", true)
	runSession(t, st, "dan", "mud", false) // not running: nothing to stop

	code, out, errs := captureAll(t, "games", "rm", "mud")
	if code != 0 {
		t.Fatalf("rm: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "Removed game mud; stopped 2 running sessions.") {
		t.Errorf("rm output %q does not say it stopped 2 running sessions", out)
	}
	const reason = "this game was removed from the registry"
	got, last := stops(t, st, "-")
	if want := keys(reason, ann, bob); !slices.Equal(got, want) {
		t.Fatalf("stop commands after rm:\n got %q\nwant %q", got, want)
	}
	if _, err := st.GetGame(ctx, "mud"); err == nil {
		t.Fatal("mud still registered after rm")
	}

	// rm again: the game is gone, but sessions still run (their workers
	// have not acted yet, or an older rm left them): they are stopped.
	code, out, errs = captureAll(t, "games", "rm", "mud")
	if code != 0 || !strings.Contains(out, "Game mud was not registered; stopped 2 running sessions left from it.") {
		t.Fatalf("rm of a removed game with sessions left: exit %d, %q %s", code, out, errs)
	}
	got, last = stops(t, st, last)
	if want := keys(reason, ann, bob); !slices.Equal(got, want) {
		t.Fatalf("stop commands after the second rm:\n got %q\nwant %q", got, want)
	}
	// With nothing left running, an unknown id is an error.
	for _, k := range []store.SessionKey{ann, bob} {
		l, _, _ := st.GetLease(ctx, k)
		if err := st.ReleaseLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, _ := captureAll(t, "games", "rm", "mud"); code != 1 {
		t.Errorf("rm of an unknown game: exit %d, want 1", code)
	}
	if got, _ := stops(t, st, last); len(got) != 0 {
		t.Errorf("stop commands with no session running: %q", got)
	}
	code, out, _ = captureAll(t, "games", "rm", "other")
	if code != 0 || !strings.Contains(out, "Removed game other; stopped 1 running session.") {
		t.Errorf("rm other: exit %d, %q", code, out)
	}
}

// Changing a game's host, port or TLS ends its running sessions (they
// would keep talking to the old address); other changes leave them alone.
func TestGamesAddressChangeStopsTheGamesSessions(t *testing.T) {
	st := gamesTestStore(t)
	if code, _, errs := captureAll(t, "games", "add", "-id", "mud", "-name", "MUD", "-host", "8.8.8.8", "-port", "4000"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	ann := runSession(t, st, "ann", "mud", true)
	runSession(t, st, "bob", "two", true)
	const reason = "this game's address changed; reconnect to play"

	// add cannot overwrite: the running session is untouched.
	if code, _, errs := captureAll(t, "games", "add", "-id", "mud", "-name", "MUD", "-host", "8.8.4.4", "-port", "4000"); code != 1 || !strings.Contains(errs, "already registered") {
		t.Fatalf("add over an existing id: exit %d: %s", code, errs)
	}
	code, out, errs := captureAll(t, "games", "update", "-id", "mud", "-name", "Renamed", "-host", "8.8.8.8", "-port", "4000")
	if code != 0 || strings.Contains(out, "stopped") {
		t.Fatalf("update of the name only: exit %d, %q %s", code, out, errs)
	}
	got, last := stops(t, st, "-")
	if len(got) != 0 {
		t.Fatalf("stop commands after add and a rename: %q", got)
	}
	code, out, errs = captureAll(t, "games", "update", "-id", "mud", "-name", "Renamed", "-host", "8.8.8.8", "-port", "4001")
	if code != 0 || !strings.Contains(out, "stopped 1 running session") {
		t.Fatalf("update of the port: exit %d, %q %s", code, out, errs)
	}
	if got, last = stops(t, st, last); !slices.Equal(got, keys(reason, ann)) {
		t.Fatalf("stop commands after the port changed: %q", got)
	}

	file := filepath.Join(t.TempDir(), "games.yaml")
	os.WriteFile(file, []byte("games:\n"+
		"  - {id: mud, name: Renamed, host: 8.8.8.8, port: 4001, tls: true}\n"+
		"  - {id: two, name: Two, host: 8.8.4.4, port: 23}\n"), 0o644)
	code, out, errs = captureAll(t, "games", "import", file)
	if code != 0 || !strings.Contains(out, "mud: address changed") || !strings.Contains(out, "stopped 1 running session") {
		t.Fatalf("import turning TLS on: exit %d, %q %s", code, out, errs)
	}
	// two is new: bob's session of it (started before it was registered)
	// is not an address change.
	if got, last = stops(t, st, last); !slices.Equal(got, keys(reason, ann)) {
		t.Fatalf("stop commands after import changed TLS: %q", got)
	}
	code, out, _ = captureAll(t, "games", "import", file)
	if code != 0 || strings.Contains(out, "stopped") {
		t.Fatalf("import of the same file: exit %d, %q", code, out)
	}
	if got, _ = stops(t, st, last); len(got) != 0 {
		t.Fatalf("stop commands after an import that changed nothing: %q", got)
	}
}

// A game at Trellis's own Redis would let a player type Redis commands:
// add, update and import refuse it, however the address is spelled. A
// game on a range the workers refuse by default only gets a warning,
// since the workers may allow it.
func TestGamesRefuseTrellisRedisAndWarnAboutRefusedRanges(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	// The first address of the URL: a redis:// URL, or the cluster's
	// comma-separated list.
	addr, _, _ := strings.Cut(os.Getenv("TRELLIS_REDIS_URL"), ",")
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1", "127.0.0.2"} {
		code, _, errs := captureAll(t, "games", "add", "-id", "redis", "-name", "Redis", "-host", host, "-port", port)
		if code != 1 || !strings.Contains(errs, "Trellis's own Redis") {
			t.Errorf("add at %s:%s (Trellis's Redis): exit %d, want 1 and a clear refusal: %s", host, port, code, errs)
		}
	}
	if _, err := st.GetGame(ctx, "redis"); err == nil {
		t.Fatal("a game at Trellis's Redis was registered")
	}

	code, out, errs := captureAll(t, "games", "add", "-id", "local", "-name", "Local", "-host", "127.0.0.1", "-port", "4000")
	if code != 0 || !strings.Contains(out, "Added local") {
		t.Fatalf("add of a loopback game: exit %d, %q %s", code, out, errs)
	}
	if !strings.Contains(errs, "warning: game local: 127.0.0.1 is loopback") || !strings.Contains(errs, "TRELLIS_WORKER_ALLOW_NETWORKS") {
		t.Errorf("no warning that workers refuse loopback by default: %q", errs)
	}
	code, _, errs = captureAll(t, "games", "add", "-id", "local", "-name", "Local", "-host", "127.0.0.1", "-port", "4000")
	if code != 1 || strings.Contains(errs, "warning") {
		t.Errorf("add of an existing id: exit %d, want 1 and no warning about a game it did not add: %q", code, errs)
	}
	code, _, errs = captureAll(t, "games", "add", "-id", "lan", "-name", "LAN", "-host", "10.1.2.3", "-port", "4000")
	if code != 0 || !strings.Contains(errs, "10.1.2.3 is private") {
		t.Errorf("add of a private game: exit %d, want 0 and a warning: %q", code, errs)
	}
	code, _, errs = captureAll(t, "games", "add", "-id", "public", "-name", "Public", "-host", "8.8.8.8", "-port", "4000")
	if code != 0 || strings.Contains(errs, "warning") {
		t.Errorf("add of a public game: exit %d, %q", code, errs)
	}

	code, _, errs = captureAll(t, "games", "update", "-id", "local", "-name", "Local", "-host", "127.0.0.1", "-port", port)
	if code != 1 || !strings.Contains(errs, "Trellis's own Redis") {
		t.Errorf("update onto Trellis's Redis: exit %d: %s", code, errs)
	}
	file := filepath.Join(t.TempDir(), "games.json")
	os.WriteFile(file, []byte(`[{"id":"fine","name":"Fine","host":"8.8.8.8","port":23},`+
		`{"id":"sneaky","name":"Sneaky","host":"localhost","port":`+port+`}]`), 0o644)
	code, _, errs = captureAll(t, "games", "import", file)
	if code != 1 || !strings.Contains(errs, "sneaky") || !strings.Contains(errs, "Trellis's own Redis") || !strings.Contains(errs, "nothing was changed") {
		t.Errorf("import with a game at Trellis's Redis: exit %d: %s", code, errs)
	}
	games, err := st.ListGames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range games {
		ids = append(ids, g.ID+"@"+g.Addr())
	}
	if got := strings.Join(ids, " "); got != "lan@10.1.2.3:4000 local@127.0.0.1:4000 public@8.8.8.8:4000" {
		t.Errorf("registry holds %s", got)
	}
}
