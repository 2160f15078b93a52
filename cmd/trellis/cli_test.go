package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// unsetEnv unsets k for the test (t.Setenv restores it afterwards).
func unsetEnv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "")
	os.Unsetenv(k)
}

// A configuration error names the whole variable an operator sets, never
// envconfig's short key, a Go field or a Go type.
func TestConfigurationErrorsNameTheFullVariable(t *testing.T) {
	t.Setenv("TRELLIS_REDIS_URL", "redis://127.0.0.1:1/0")
	unsetEnv(t, "TRELLIS_AUTH_SECRET")
	unsetEnv(t, "SECRET") // envconfig's fallback name: it must not be what is reported
	for _, args := range [][]string{{"edge"}, {"token", "-user", "alice"}} {
		code, out := run(t, args...)
		if code != 1 || !strings.Contains(out, "TRELLIS_AUTH_SECRET") || strings.Contains(out, "required key") {
			t.Errorf("%v without a secret: exit %d, %q: want 1 and TRELLIS_AUTH_SECRET named", args, code, out)
		}
	}
	for k, v := range map[string]string{
		"TRELLIS_WORKER_LEASE_TTL":          "soon",
		"TRELLIS_WORKER_MAX_SESSIONS":       "lots",
		"TRELLIS_WORKER_REFUSE_COMPRESSION": "maybe",
		"TRELLIS_REDIS_OUTPUT_MAXLEN":       "99999999999999999999",
	} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			code, out := run(t, "worker")
			if code != 1 || !strings.Contains(out, k+`="`+v+`"`) {
				t.Fatalf("exit %d, %q: want 1 and %s=%q named", code, out, k, v)
			}
			for _, goism := range []string{"envconfig", "converting", "time.Duration", "strconv", "LeaseTTL", "MaxSessions", "OutputMaxLen", "type "} {
				if strings.Contains(out, goism) {
					t.Errorf("message %q says %q: Go's words, not the operator's", out, goism)
				}
			}
		})
	}
}

// A games file with a typo or a wrong type is explained in the file's
// terms: field names as written, line numbers, no Go types.
func TestGamesImportErrorsSpeakTheFilesLanguage(t *testing.T) {
	gamesTestStore(t)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		file string
		want []string
	}{
		"yaml-unknown": {"games:\n  - {id: a, name: A, host: x.org, port: 23, tls-insecure: true}\n",
			[]string{`line 2`, `unknown field "tls-insecure"`, "tls_insecure"}},
		"yaml-top": {"gamez:\n  - {id: a, name: A, host: x.org, port: 23}\n",
			[]string{`line 1`, `unknown field "gamez"`, `games`}},
		"yaml-type": {"games:\n  - {id: a, name: A, host: x.org, port: abc}\n",
			[]string{`line 2`, `port`, `"abc"`, `whole number`}},
		"json-unknown": {`[{"id":"a","name":"A","host":"x.org","port":23,"tls-insecure":true}]`,
			[]string{`unknown field "tls-insecure"`, "tls_insecure"}},
		"json-type": {"{\"games\": [\n  {\"id\":\"a\",\"name\":\"A\",\"host\":\"x.org\",\"port\":\"23\"}\n]}",
			[]string{`line 2`, `port`, `whole number`}},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name)
			os.WriteFile(file, []byte(c.file), 0o644)
			code, _, errs := captureAll(t, "games", "import", file)
			if code != 1 || !strings.Contains(errs, "nothing was changed") {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("message lacks %q:\n%s", w, errs)
				}
			}
			for _, goism := range []string{"store.Game", "type struct", "Go struct field", "!!str", "into int", "of type int"} {
				if strings.Contains(errs, goism) {
					t.Errorf("message says %q:\n%s", goism, errs)
				}
			}
		})
	}
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkSnake fails for any object key in v that is not snake_case; the
// contents of data-carrying fields (event data, MSSP variables) are the
// data's, and not walked.
func checkSnake(t *testing.T, what string, v any, path string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !snakeKey.MatchString(k) {
				t.Errorf("%s: key %q at %s is not snake_case", what, k, path)
			}
			if k == "data" || k == "mssp" {
				continue
			}
			checkSnake(t, what, e, path+"."+k)
		}
	case []any:
		for _, e := range v {
			checkSnake(t, what, e, path+"[]")
		}
	}
}

// jsonDocs decodes one JSON document, or one per line (jsonl).
func jsonDocs(t *testing.T, what, out string) []any {
	t.Helper()
	var docs []any
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no JSON output", what)
	}
	return docs
}

// Every -o json (and -format jsonl) output uses snake_case keys, and
// durations as _seconds numbers.
func TestJSONOutputIsSnakeCase(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	if err := st.PutGame(ctx, store.Game{ID: "demo", Name: "Demo", Host: "8.8.8.8", Port: 23, TLS: true}); err != nil {
		t.Fatal(err)
	}
	key := runSession(t, st, "ann", "demo", true)
	if _, err := st.AppendOutput(ctx, key, store.Output{Kind: store.OutText, Text: "hello\n", Fence: 1, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvent(ctx, store.NewEvent(store.EvSessionStarted, "worker/w1", key, "corr-1", map[string]any{"fence": 1})); err != nil {
		t.Fatal(err)
	}
	// A consumer that read an entry (pending, idle) and a dead letter.
	if err := st.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := st.PublishControl(ctx, store.Command{Type: store.CmdAttach, User: "ann", Game: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.ControlConsumer("w1").Read(ctx, 2, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read control: %v %v", msgs, err)
	}
	if err := st.DeadLetter(ctx, msgs[0], "test"); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"sessions", "ls", "-o", "json"},
		{"sessions", "show", "ann/demo", "-o", "json"},
		{"ops", "lag", "-o", "json"},
		{"games", "ls", "-o", "json"},
		{"games", "show", "demo", "-o", "json"},
		{"replay", "events", "-o", "json"},
		{"replay", "transcript", "-user", "ann", "-game", "demo", "-format", "jsonl"},
	} {
		what := strings.Join(args, " ")
		code, out, errs := captureAll(t, args...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", what, code, errs)
			continue
		}
		for _, d := range jsonDocs(t, what, out) {
			checkSnake(t, what, d, "")
		}
	}

	_, out, _ := captureAll(t, "ops", "lag", "-o", "json")
	var lag struct {
		Consumers []map[string]any `json:"consumers"`
	}
	if err := json.Unmarshal([]byte(out), &lag); err != nil || len(lag.Consumers) != 1 {
		t.Fatalf("ops lag -o json: want consumers at the top: %v\n%s", err, out)
	}
	if idle, ok := lag.Consumers[0]["idle_seconds"].(float64); !ok || idle < 0 || idle > 60 {
		t.Errorf("consumer idle_seconds = %v, want seconds as a number:\n%s", lag.Consumers[0]["idle_seconds"], out)
	}
}

// `games ls -o json` is a games file: it imports back as it is.
func TestGamesListJSONImportsBack(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	for _, g := range []store.Game{
		{ID: "one", Name: "One", Host: "8.8.8.8", Port: 23, TLS: true, TLSInsecure: true, Charset: "cp437", MNES: true},
		{ID: "two", Name: "Two", Host: "8.8.4.4", Port: 4000, Description: "the second", KeepControls: true},
	} {
		if err := st.PutGame(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := captureAll(t, "games", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errs)
	}
	file := filepath.Join(t.TempDir(), "games.json")
	os.WriteFile(file, []byte(out), 0o644)
	if code, _, errs := captureAll(t, "games", "import", file); code != 0 {
		t.Fatalf("import of ls -o json: exit %d: %s\n%s", code, errs, out)
	}
}

// Exit codes: 0 success (and --help), 1 failure, 2 a usage error, with the
// usage on stderr and nothing on stdout.
func TestExitCodes(t *testing.T) {
	good, other := redistest.Isolated(t), redistest.Isolated(t)
	t.Setenv("TRELLIS_AUTH_SECRET", strings.Repeat("k", 32))
	// What dev would set for itself, so that a dev run leaves the
	// environment as it was.
	for k, v := range map[string]string{
		"TRELLIS_EDGE_LISTEN": "127.0.0.1:0", "TRELLIS_EDGE_GUEST": "true", "TRELLIS_EDGE_ADMIN_LISTEN": "", "TRELLIS_WORKER_ADMIN_LISTEN": "",
		"TRELLIS_WORKER_IDLE_GRACE": "10m", "TRELLIS_WORKER_DRAIN_TIMEOUT": "1s", "TRELLIS_WORKER_ALLOW_NETWORKS": "127.0.0.0/8",
	} {
		t.Setenv(k, v)
	}
	type c struct {
		args []string
		code int
		msg  string // in stderr, if set
	}
	check := func(t *testing.T, cases []c) {
		t.Helper()
		for _, c := range cases {
			code, out, errs := captureAll(t, c.args...)
			if code != c.code {
				t.Errorf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errs)
				continue
			}
			if code == 2 && out != "" {
				t.Errorf("%q: usage error wrote to stdout:\n%s", c.args, out)
			}
			if code == 2 && !strings.Contains(errs, "Usage") && !strings.Contains(errs, "--help") {
				t.Errorf("%q: usage error without a usage hint:\n%s", c.args, errs)
			}
			if c.msg != "" && !strings.Contains(errs, c.msg) {
				t.Errorf("%q: stderr lacks %q:\n%s", c.args, c.msg, errs)
			}
		}
	}
	t.Run("reachable redis", func(t *testing.T) {
		t.Setenv("TRELLIS_REDIS_URL", good.URL)
		t.Setenv("TRELLIS_REDIS_NAMESPACE", good.Namespace)
		check(t, []c{
			{args: []string{}, code: 2},
			{args: []string{"help"}, code: 0},
			{args: []string{"help", "games"}, code: 0},
			{args: []string{"help", "nonsense"}, code: 2},
			{args: []string{"nonsense"}, code: 2},
			{args: []string{"games"}, code: 2},
			{args: []string{"games", "help"}, code: 0},
			{args: []string{"games", "--help"}, code: 0},
			{args: []string{"games", "ls", "--help"}, code: 0},
			{args: []string{"games", "frob"}, code: 2},
			{args: []string{"games", "ls"}, code: 0},
			{args: []string{"games", "ls", "extra"}, code: 2},
			{args: []string{"games", "show"}, code: 2},
			{args: []string{"games", "show", "nope"}, code: 1, msg: "unknown game"},
			{args: []string{"games", "rm"}, code: 2},
			{args: []string{"games", "import"}, code: 2},
			{args: []string{"games", "import", "/nonexistent/games.yaml"}, code: 1},
			{args: []string{"games", "update", "-id", "nope", "-name", "N", "-host", "8.8.8.8", "-port", "1"}, code: 1, msg: "unknown game"},
			{args: []string{"sessions"}, code: 2},
			{args: []string{"sessions", "help"}, code: 0},
			{args: []string{"sessions", "--help"}, code: 0},
			{args: []string{"sessions", "frob"}, code: 2},
			{args: []string{"sessions", "ls"}, code: 0},
			{args: []string{"sessions", "-o", "json", "ls"}, code: 0},
			{args: []string{"sessions", "ls", "extra"}, code: 2},
			{args: []string{"sessions", "show", "ann/nope"}, code: 1, msg: "no session for ann/nope"},
			{args: []string{"sessions", "kill", "ann/nope"}, code: 1},
			{args: []string{"ops"}, code: 2},
			{args: []string{"ops", "help"}, code: 0},
			{args: []string{"ops", "--help"}, code: 0},
			{args: []string{"ops", "frob"}, code: 2},
			{args: []string{"ops", "lag"}, code: 0},
			{args: []string{"ops", "-o", "json", "lag"}, code: 0},
			{args: []string{"ops", "lag", "extra"}, code: 2},
			{args: []string{"replay"}, code: 2},
			{args: []string{"replay", "help"}, code: 0},
			{args: []string{"replay", "frob"}, code: 2},
			{args: []string{"replay", "transcript", "-user", "nobody", "-game", "demo"}, code: 1, msg: "no transcript for nobody/demo"},
			{args: []string{"replay", "transcript", "-user", "u", "-game", "g", "extra"}, code: 2},
			{args: []string{"replay", "events"}, code: 0},
			{args: []string{"replay", "events", "extra"}, code: 2},
			{args: []string{"replay", "events", "-since", "-2h"}, code: 2},
			{args: []string{"replay", "redrive", "-from", "-", "-target-url", other.URL, "-target-namespace", other.Namespace}, code: 1, msg: "no control entries"},
			{args: []string{"replay", "redrive", "-from", "-", "-target-url", other.URL, "-target-namespace", other.Namespace, "extra"}, code: 2},
			{args: []string{"replay", "redrive", "-from", "-", "-target-url", other.URL, "-target-namespace", "a:b"}, code: 2, msg: "-target-namespace"},
			{args: []string{"token"}, code: 2},
			{args: []string{"token", "--help"}, code: 0},
			{args: []string{"token", "-user", "a", "extra"}, code: 2},
			{args: []string{"bench", "-o", "xml", "extra"}, code: 2},
			{args: []string{"demo-game", "-listen", "nowhere:x:y", "extra"}, code: 2},
			{args: []string{"edge", "--help"}, code: 0},
		})
	})
	// Usage is judged before Redis is: a mistyped command says so, not
	// that Redis is unreachable.
	t.Run("unusable redis", func(t *testing.T) {
		t.Setenv("TRELLIS_REDIS_URL", "not-a-url")
		check(t, []c{
			{args: []string{"games", "frob"}, code: 2},
			{args: []string{"games", "ls", "extra"}, code: 2},
			{args: []string{"sessions", "frob"}, code: 2},
			{args: []string{"ops", "frob"}, code: 2},
			{args: []string{"replay", "frob"}, code: 2},
			{args: []string{"worker", "extra"}, code: 2},
			{args: []string{"edge", "extra"}, code: 2},
			{args: []string{"dev", "extra"}, code: 2},
			{args: []string{"games", "ls"}, code: 1},
			{args: []string{"worker"}, code: 1},
		})
	})
}

// Event types may be given short (session.started) or in full
// (trellis.session.started), or as a family (session, trellis.lease); an
// unknown one is a usage error that lists the known ones.
func TestReplayEventsTypeNames(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	key := store.SessionKey{User: "ann", Game: "demo"}
	for _, typ := range []string{store.EvSessionStarting, store.EvSessionStarted, store.EvLeaseLost, store.EvEdgeStarted} {
		if _, err := st.AppendEvent(ctx, store.NewEvent(typ, "worker/w1", key, "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	for typ, want := range map[string]int{
		"session.started":         1,
		"trellis.session.started": 1,
		"session":                 2,
		"trellis.session":         2,
		"lease.lost":              1,
		"session.started,lease":   2,
		"":                        4,
	} {
		code, out, errs := captureAll(t, "replay", "events", "-type", typ)
		if code != 0 || strings.Count(out, "\n") != want {
			t.Errorf("-type %q: exit %d, %d lines, want %d:\n%s%s", typ, code, strings.Count(out, "\n"), want, out, errs)
		}
	}
	for _, typ := range []string{"bogus", "session.begun", "trellis.sess", "trellis"} {
		code, out, errs := captureAll(t, "replay", "events", "-type", typ)
		if code != 2 || out != "" || !strings.Contains(errs, "session.started") || !strings.Contains(errs, "lease.lost") {
			t.Errorf("-type %q: exit %d, want 2 and the known types listed:\n%s%s", typ, code, out, errs)
		}
	}
}

// -from 0 is the stream's start (not "0 ago", which is now), and the
// progress bar is drawn only on a terminal, never into a pipe or a file.
func TestRedriveFromZeroWithoutProgressFrames(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	for _, u := range []string{"ann", "bob"} {
		if _, err := st.PublishControl(ctx, store.Command{Type: store.CmdStop, User: u, Game: "demo", Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []string{"-", "0"} {
		target := redistest.Isolated(t)
		code, _, errs := captureAll(t, append([]string{"replay", "redrive", "-from", from, "-rate", "1000"}, redriveTo(target)...)...)
		if code != 0 {
			t.Errorf("redrive -from %s: exit %d: %s", from, code, errs)
			continue
		}
		if strings.Contains(errs, "\r") {
			t.Errorf("redrive -from %s: progress frames written into a pipe: %q", from, errs)
		}
		if !strings.Contains(errs, "Redrove 2 entries") {
			t.Errorf("redrive -from %s: no summary: %q", from, errs)
		}
		moved, err := openTestStore(t, target).ControlEntries(ctx, "-", "+", 10)
		if err != nil || len(moved) != 2 {
			t.Errorf("redrive -from %s: target control stream: %d entries, %v; want 2", from, len(moved), err)
		}
	}
}

// Input typed at a prompt that already ends in '>' is not given a second
// '>' ("> > look"); at any other prompt it is marked "> ".
func TestTranscriptInputAfterPrompt(t *testing.T) {
	st := gamesTestStore(t)
	ctx := context.Background()
	key := store.SessionKey{User: "ann", Game: "demo"}
	l, err := st.AcquireLease(ctx, key, "w1", "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range []store.Output{
		{Kind: store.OutText, Text: "What is your name? "},
		{Kind: store.OutInput, Text: "Ann"},
		{Kind: store.OutText, Text: "Welcome!\n\x1b[32m>\x1b[0m "},
		{Kind: store.OutInput, Text: "look"},
		{Kind: store.OutText, Text: "A room.\n"},
		{Kind: store.OutInput, Text: "typed ahead"},
		{Kind: store.OutText, Text: "hp 10> "},
		{Kind: store.OutInput, Text: "quit"},
	} {
		o.Fence, o.Seq = l.Fence, uint64(i+1)
		if _, err := st.AppendOutput(ctx, key, o); err != nil {
			t.Fatal(err)
		}
	}
	for format, c := range map[string]struct{ want, not []string }{
		"text": {want: []string{"What is your name? > Ann\n", "Welcome!\n> look\n", "A room.\n> typed ahead\n", "hp 10> quit\n"}, not: []string{"> >"}},
		"ansi": {want: []string{"\x1b[32m>\x1b[0m look\n", "hp 10> quit\n"}, not: []string{"\x1b[0m > look"}},
		"html": {want: []string{`<span class="in">&gt; Ann</span>`, `<span class="in">look</span>`}, not: []string{`&gt; <span class="in">&gt;`}},
	} {
		code, out, errs := captureAll(t, "replay", "transcript", "-user", "ann", "-game", "demo", "-format", format)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s transcript lacks %q:\n%q", format, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("%s transcript has %q:\n%q", format, n, out)
			}
		}
	}
}

// With several control shards, ops lag adds up every shard and shows each;
// a component configured with another count than the namespace's is
// refused, naming the setting.
func TestOpsLagPerShard(t *testing.T) {
	gamesTestStore(t) // a fresh database in TRELLIS_REDIS_URL
	t.Setenv("TRELLIS_REDIS_CONTROL_SHARDS", "4")
	st, _, err := openStore()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.EnsureControlGroup(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := st.PublishControl(ctx, store.Command{Type: store.CmdAttach, User: fmt.Sprint("u", i), Game: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := captureAll(t, "ops", "lag")
	if code != 0 {
		t.Fatalf("ops lag: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "Control streams (4 shards): 12 entries, lag 12") {
		t.Errorf("ops lag does not sum the shards:\n%s", out)
	}
	for shard := range 4 {
		if !strings.Contains(out, store.ControlStreamName(os.Getenv("TRELLIS_REDIS_NAMESPACE"), shard)) {
			t.Errorf("ops lag does not show shard %d:\n%s", shard, out)
		}
	}
	_, out, _ = captureAll(t, "ops", "lag", "-o", "json")
	var lag struct {
		Lag    int64 `json:"lag"`
		Shards []struct {
			Stream string `json:"stream"`
			Lag    int64  `json:"lag"`
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &lag); err != nil || len(lag.Shards) != 4 || lag.Lag != 12 {
		t.Errorf("ops lag -o json: %v, want 4 shards and lag 12:\n%s", err, out)
	}
	t.Setenv("TRELLIS_REDIS_CONTROL_SHARDS", "8")
	code, _, errs = captureAll(t, "ops", "lag")
	if code != 1 || !strings.Contains(errs, "TRELLIS_REDIS_CONTROL_SHARDS=8") || !strings.Contains(errs, "created with 4") {
		t.Errorf("a different shard count: exit %d, %q; want 1 and the setting named", code, errs)
	}
}
