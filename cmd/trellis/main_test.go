package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func run(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return code, out.String() + errb.String()
}

func TestHelpListsEverySubcommand(t *testing.T) {
	code, out := run(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("--help does not list %q:\n%s", c.name, out)
		}
	}
	if code, _ := run(t); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nonsense"},
		{"token", "-bogus"},
		{"token"}, // -user missing
		{"games", "frobnicate"},
		{"replay", "transcript"}, // -user and -game missing
		{"sessions", "show", "no-slash"},
	} {
		t.Setenv("TRELLIS_AUTH_SECRET", strings.Repeat("k", 32))
		t.Setenv("TRELLIS_REDIS_URL", "redis://127.0.0.1:1/0")
		if code, out := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, code, out)
		}
	}
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	t.Setenv("TRELLIS_WORKER_LEASE_TTL", "soon")
	code, out := run(t, "worker")
	if code != 1 || !strings.Contains(out, "TRELLIS_WORKER_LEASE_TTL") {
		t.Fatalf("exit %d, output %q: want 1 and the variable named", code, out)
	}
	t.Setenv("TRELLIS_WORKER_LEASE_TTL", "10s")
	t.Setenv("TRELLIS_LOG_FORMAT", "xml")
	if code, out := run(t, "worker"); code != 1 || !strings.Contains(out, "TRELLIS_LOG_FORMAT") {
		t.Fatalf("exit %d, output %q: want 1 and TRELLIS_LOG_FORMAT named", code, out)
	}
	t.Setenv("TRELLIS_LOG_FORMAT", "text")
	// An unusable Redis URL too, so that a worker that accepted the bad
	// network would still stop at start-up (naming the wrong variable).
	t.Setenv("TRELLIS_REDIS_URL", "not-a-url")
	t.Setenv("TRELLIS_WORKER_ALLOW_NETWORKS", "127.0.0.0/8,10.0.0.0/33")
	if code, out := run(t, "worker"); code != 1 || !strings.Contains(out, "TRELLIS_WORKER_ALLOW_NETWORKS") || !strings.Contains(out, "10.0.0.0/33") {
		t.Fatalf("exit %d, output %q: want 1 and TRELLIS_WORKER_ALLOW_NETWORKS and the bad CIDR named", code, out)
	}
}

// worker --help lists every variable from the configuration's tags, the
// dial guard's networks included.
func TestWorkerHelpListsAllowNetworks(t *testing.T) {
	code, out, _ := capture(t, "worker", "--help")
	if code != 0 || !strings.Contains(out, "TRELLIS_WORKER_ALLOW_NETWORKS") {
		t.Fatalf("worker --help: exit %d, lacks TRELLIS_WORKER_ALLOW_NETWORKS:\n%s", code, out)
	}
}

func TestTokenVerifies(t *testing.T) {
	secret := strings.Repeat("s", 40)
	t.Setenv("TRELLIS_AUTH_SECRET", secret)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	code, out := run(t, "token", "-user", "alice", "-ttl", "1h")
	os.Stdout = stdout
	w.Close()
	var tok bytes.Buffer
	_, _ = tok.ReadFrom(r)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	v, err := auth.NewVerifier([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	user, err := v.Verify(strings.TrimSpace(tok.String()))
	if err != nil || user != "alice" {
		t.Fatalf("minted token verifies as %q, %v", user, err)
	}
}

func TestGamesCommandsAgainstRedis(t *testing.T) {
	tgt := useRedis(t)
	if code, out := run(t, "games", "add", "-id", "mud", "-name", "A MUD", "-host", "127.0.0.1", "-port", "4000"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, out)
	}
	if code, _ := run(t, "games", "add", "-id", "mud", "-name", "Again", "-host", "127.0.0.1", "-port", "4000"); code != 1 {
		t.Errorf("adding an existing id: exit %d, want 1", code)
	}
	if code, out := run(t, "games", "add", "-id", "Bad Id", "-name", "", "-host", "a b", "-port", "0"); code != 1 {
		t.Errorf("invalid game: exit %d, want 1: %s", code, out)
	}
	file := filepath.Join(t.TempDir(), "games.yaml")
	os.WriteFile(file, []byte("games:\n  - {id: two, name: Two, host: two.example.org, port: 23, charset: cp437}\n"), 0o644)
	if code, out := run(t, "games", "import", file); code != 0 {
		t.Fatalf("import: exit %d: %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"id":"three","name":"Three","host":"x.org","port":1},{"id":"four","name":"","host":"x.org","port":70000}]`), 0o644)
	if code, _ := run(t, "games", "import", bad); code != 1 {
		t.Errorf("bad import: exit %d, want 1", code)
	}
	st := openTestStore(t, tgt)
	games, err := st.ListGames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range games {
		ids = append(ids, g.ID)
	}
	if strings.Join(ids, ",") != "mud,two" {
		t.Fatalf("registry holds %v, want mud,two (a bad file imports nothing)", ids)
	}
	if code, out := run(t, "games", "rm", "mud"); code != 0 {
		t.Fatalf("rm: exit %d: %s", code, out)
	}
	if code, _ := run(t, "games", "rm", "mud"); code != 1 {
		t.Errorf("removing an unknown game: exit %d, want 1", code)
	}
}

func TestParseSince(t *testing.T) {
	if id, err := parseSince("", "-"); err != nil || id != "-" {
		t.Errorf("empty: %q %v", id, err)
	}
	if id, err := parseSince("1700000000000-3", "-"); err != nil || id != "1700000000000-3" {
		t.Errorf("stream id: %q %v", id, err)
	}
	if id, err := parseSince("2026-01-02T03:04:05Z", "-"); err != nil || id != store.TimeID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("time: %q %v", id, err)
	}
	if _, err := parseSince("2h", "-"); err != nil {
		t.Errorf("duration: %v", err)
	}
	if id, err := parseSince("+", "-"); err != nil || id != "+" {
		t.Errorf("stream end: %q %v", id, err)
	}
	if _, err := parseSince("yesterday", "-"); err == nil {
		t.Error("nonsense accepted")
	}
}

// capture runs args with os.Stdout captured.
func capture(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		done <- b.String()
	}()
	code, stderr = run(t, args...)
	os.Stdout = saved
	w.Close()
	return code, <-done, stderr
}

func openTestStore(t *testing.T, tgt redistest.Target) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{URL: tgt.URL, Namespace: tgt.Namespace, DialTimeout: time.Second, ReadTimeout: time.Second,
		OutputMaxLen: 1000, EventsMaxAge: time.Hour, ControlMaxLen: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// useRedis points the commands at a fresh share of the test Redis (a
// database of the single node, or a namespace of the cluster with
// TRELLIS_TEST_REDIS=cluster) and returns it.
func useRedis(t *testing.T) redistest.Target {
	t.Helper()
	tgt := redistest.Isolated(t)
	t.Setenv("TRELLIS_REDIS_URL", tgt.URL)
	t.Setenv("TRELLIS_REDIS_NAMESPACE", tgt.Namespace)
	return tgt
}

// redriveTo is the redrive flags that publish into tgt.
func redriveTo(tgt redistest.Target) []string {
	return []string{"-target-url", tgt.URL, "-target-namespace", tgt.Namespace}
}

// The ops tools against a real Redis holding one session's transcript,
// events, a lease, a session record and control entries.
func TestOpsToolsAgainstRedis(t *testing.T) {
	src := useRedis(t)
	st := openTestStore(t, src)
	ctx := context.Background()
	key := store.SessionKey{User: "ann", Game: "demo"}
	l, err := st.AcquireLease(ctx, key, "w1-abcd", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range []store.Output{
		{Kind: store.OutStatus, State: store.StateConnected, Text: "connected to Demo"},
		{Kind: store.OutText, Text: "What is your name? "},
		{Kind: store.OutInput, Text: "Ann"},
		{Kind: store.OutText, Text: "\x1b[1;31mPassword:\x1b[0m "},
		{Kind: store.OutInput, Redacted: true},
		{Kind: store.OutText, Text: "Welcome <Ann> & friends\n"},
	} {
		o.Fence, o.Seq = l.Fence, uint64(i+1)
		if _, err := st.AppendOutput(ctx, key, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutSession(ctx, store.SessionInfo{Key: key, Worker: "w1-abcd", Session: "s1", Fence: l.Fence,
		State: store.StateConnected, Started: time.Now(), Viewers: 2}); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{store.EvSessionStarting, store.EvSessionStarted, store.EvEdgeStarted} {
		k := key
		if typ == store.EvEdgeStarted {
			k = store.SessionKey{}
		}
		if _, err := st.AppendEvent(ctx, store.NewEvent(typ, "worker/w1-abcd", k, "corr-1", map[string]any{"fence": l.Fence})); err != nil {
			t.Fatal(err)
		}
	}

	// Transcripts: the password line is hidden in every format.
	for format, want := range map[string][]string{
		"text":  {"What is your name? > Ann", "Password: > (hidden", "Welcome <Ann> & friends"},
		"ansi":  {"\x1b[1;31mPassword:\x1b[0m"},
		"html":  {"&gt; Ann", "Welcome &lt;Ann&gt; &amp; friends", `<span style="color:#cd3131;font-weight:bold">Password:</span>`},
		"jsonl": {`"kind":"input",`, `"fence":1,"seq":5,"redacted":true}`, `"text":"Welcome <Ann> & friends\n"`},
	} {
		code, out, errs := capture(t, "replay", "transcript", "-user", "ann", "-game", "demo", "-format", format)
		if code != 0 {
			t.Fatalf("transcript %s: exit %d: %s", format, code, errs)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("transcript %s lacks %q:\n%s", format, w, out)
			}
		}
	}
	// Events, filtered.
	code, out, errs := capture(t, "replay", "events", "-since", "1h", "-type", "trellis.session", "-user", "ann")
	if code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "edge.started") || !strings.Contains(out, "corr=corr-1") {
		t.Fatalf("events: exit %d, %q, %s", code, out, errs)
	}
	// Sessions.
	code, out, _ = capture(t, "sessions", "ls", "-o", "json")
	if code != 0 || !strings.Contains(out, `"worker": "w1-abcd"`) || !strings.Contains(out, `"viewers": 2`) {
		t.Fatalf("sessions ls: exit %d: %s", code, out)
	}
	code, out, _ = capture(t, "sessions", "show", "ann/demo")
	if code != 0 || !strings.Contains(out, "lease owner") || !strings.Contains(out, "w1-abcd") {
		t.Fatalf("sessions show: exit %d: %s", code, out)
	}
	if code, _, _ := capture(t, "sessions", "kill", "ann/demo", "-reason", "maintenance"); code != 0 {
		t.Fatalf("sessions kill: exit %d", code)
	}
	entries, err := st.ControlEntries(ctx, "-", "+", 10)
	if err != nil || len(entries) != 1 || entries[0].Command.Type != store.CmdStop || entries[0].Command.Reason != "maintenance" {
		t.Fatalf("control stream after kill: %+v %v", entries, err)
	}
	if code, _, _ := capture(t, "sessions", "kill", "bob/demo"); code != 1 {
		t.Errorf("kill of no session: exit %d, want 1", code)
	}
	// Ops view.
	code, out, _ = capture(t, "ops", "lag", "-o", "json")
	if code != 0 || !strings.Contains(out, `"length": 1`) {
		t.Fatalf("ops lag: exit %d: %s", code, out)
	}
	// Redrive into another database (or namespace), never into the source.
	target := redistest.Isolated(t)
	if code, _, _ := capture(t, "replay", "redrive", "-from", "-", "-target-url", src.URL); code != 1 {
		t.Errorf("redrive into the source: exit %d, want 1", code)
	}
	if code, _, _ := capture(t, append([]string{"replay", "redrive", "-from", "-"}, redriveTo(src)...)...); code != 1 {
		t.Errorf("redrive into the source, namespace named: exit %d, want 1", code)
	}
	code, _, errs = capture(t, append([]string{"replay", "redrive", "-from", "0-0", "-rate", "1000"}, redriveTo(target)...)...)
	if code != 0 {
		t.Fatalf("redrive: exit %d: %s", code, errs)
	}
	moved, err := openTestStore(t, target).ControlEntries(ctx, "-", "+", 10)
	if err != nil || len(moved) != 1 || moved[0].Command.Reason != "maintenance" {
		t.Fatalf("target control stream: %+v %v", moved, err)
	}
	if age := time.Since(moved[0].Command.Time); age > time.Minute {
		t.Errorf("redriven command is %s old: workers would drop it as expired", age)
	}
}

func TestParseMemoryMax(t *testing.T) {
	for in, want := range map[string]int64{"2147483648\n": 2147483648, "max\n": 0, "": 0, "garbage": 0, "-5": 0} {
		got, ok := parseMemoryMax(in)
		if got != want || ok != (want > 0) {
			t.Errorf("parseMemoryMax(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}
