package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dune() Game {
	return Game{ID: "dune", Name: "Dune MUD", Host: "mud.example.org", Port: 4000}
}

func TestGameValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	bad := Game{
		ID:          "Bad ID!",
		Name:        "",
		Description: strings.Repeat("x", 2001),
		Host:        "not_a host",
		Port:        70000,
		TLSInsecure: true,
		Charset:     "klingon-8",
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid game accepted")
	}
	for _, field := range []string{"id ", "name ", "description:", "host ", "port ", "tls_insecure", "charset "} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not mention %q:\n%v", field, err)
		}
	}

	for name, g := range map[string]Game{
		"long name":     {ID: "a", Name: strings.Repeat("n", 81), Host: "h", Port: 1},
		"blank name":    {ID: "a", Name: "  ", Host: "h", Port: 1},
		"port 0":        {ID: "a", Name: "A", Host: "h", Port: 0},
		"long id":       {ID: strings.Repeat("a", 33), Name: "A", Host: "h", Port: 1},
		"id with colon": {ID: "a:b", Name: "A", Host: "h", Port: 1},
		"empty host":    {ID: "a", Name: "A", Port: 1},
		"label too long": {ID: "a", Name: "A", Port: 1,
			Host: strings.Repeat("h", 64) + ".org"},
	} {
		if g.Validate() == nil {
			t.Errorf("%s: accepted %+v", name, g)
		}
	}
	for name, g := range map[string]Game{
		"plain":      dune(),
		"ipv4":       {ID: "a", Name: "A", Host: "127.0.0.1", Port: 23},
		"ipv6":       {ID: "a-b_c", Name: "A", Host: "::1", Port: 65535},
		"tls":        {ID: "0x", Name: "A", Host: "h", Port: 1, TLS: true, TLSInsecure: true},
		"charset":    {ID: "a", Name: "A", Host: "h", Port: 1, Charset: "latin1"},
		"cp437":      {ID: "a", Name: "A", Host: "h", Port: 1, Charset: "IBM437"},
		"single lbl": {ID: "a", Name: "A", Host: "localhost", Port: 1, MNES: true},
	} {
		if err := g.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := (Game{Host: "::1", Port: 4000}).Addr(); got != "[::1]:4000" {
		t.Errorf("Addr() = %q", got)
	}
}

func TestGameRegistry(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)

	if games, err := s.ListGames(ctx); err != nil || len(games) != 0 {
		t.Fatalf("empty registry lists %v, %v", games, err)
	}
	g := dune()
	if err := s.AddGame(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.AddGame(ctx, g); !errors.Is(err, ErrGameExists) {
		t.Errorf("second add: err=%v, want ErrGameExists", err)
	}
	if err := s.AddGame(ctx, Game{ID: "x"}); err == nil {
		t.Error("invalid game added")
	}
	got, err := s.GetGame(ctx, "dune")
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Errorf("GetGame = %+v, %v; want %+v", got, err, g)
	}

	g.Name, g.TLS, g.Charset = "Dune II", true, "latin1"
	if err := s.UpdateGame(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetGame(ctx, "dune"); !reflect.DeepEqual(got, g) {
		t.Errorf("after update: %+v, want %+v", got, g)
	}
	ghost := dune()
	ghost.ID = "ghost"
	if err := s.UpdateGame(ctx, ghost); !errors.Is(err, ErrUnknownGame) {
		t.Errorf("update of unknown game: err=%v, want ErrUnknownGame", err)
	}
	if err := s.UpdateGame(ctx, Game{ID: "dune"}); err == nil || errors.Is(err, ErrUnknownGame) {
		t.Errorf("invalid update: err=%v, want a validation error", err)
	}
	if err := s.PutGame(ctx, Game{ID: "dune"}); err == nil {
		t.Error("invalid put accepted")
	}
	moo := Game{ID: "moo", Name: "LambdaMOO", Host: "lambda.moo.mud.org", Port: 8888}
	if err := s.PutGame(ctx, moo); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListGames(ctx)
	if err != nil || !reflect.DeepEqual(list, []Game{g, moo}) {
		t.Errorf("ListGames = %+v, %v", list, err)
	}

	for _, id := range []string{"ghost", "", "../etc", "Dune", strings.Repeat("a", 100)} {
		if _, err := s.GetGame(ctx, id); !errors.Is(err, ErrUnknownGame) {
			t.Errorf("GetGame(%q): err=%v, want ErrUnknownGame", id, err)
		}
	}
	if err := s.RemoveGame(ctx, "moo"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveGame(ctx, "moo"); !errors.Is(err, ErrUnknownGame) {
		t.Errorf("second remove: err=%v, want ErrUnknownGame", err)
	}
	if _, err := s.GetGame(ctx, "moo"); !errors.Is(err, ErrUnknownGame) {
		t.Errorf("removed game still found: %v", err)
	}

	// A corrupt entry is reported, not passed on half-read.
	if err := rdb.HSet(ctx, s.ks.games(), "broken", "{").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetGame(ctx, "broken"); err == nil || errors.Is(err, ErrUnknownGame) {
		t.Errorf("corrupt entry: err=%v", err)
	}
	if _, err := s.ListGames(ctx); err == nil {
		t.Error("ListGames with a corrupt entry succeeded")
	}
}

func TestParseGamesShapes(t *testing.T) {
	t.Parallel()
	want := []Game{
		{ID: "dune", Name: "Dune MUD", Host: "mud.example.org", Port: 4000, TLS: true, Charset: "latin1"},
		{ID: "moo", Name: "LambdaMOO", Host: "127.0.0.1", Port: 8888, MNES: true},
	}
	for name, src := range map[string]string{
		"json array": `[
			{"id":"dune","name":"Dune MUD","host":"mud.example.org","port":4000,"tls":true,"charset":"latin1"},
			{"id":"moo","name":"LambdaMOO","host":"127.0.0.1","port":8888,"mnes":true}]`,
		"json object": `  {"games":[
			{"id":"dune","name":"Dune MUD","host":"mud.example.org","port":4000,"tls":true,"charset":"latin1"},
			{"id":"moo","name":"LambdaMOO","host":"127.0.0.1","port":8888,"mnes":true}]}`,
		"yaml list": `
- id: dune
  name: Dune MUD
  host: mud.example.org
  port: 4000
  tls: true
  charset: latin1
- id: moo
  name: LambdaMOO
  host: 127.0.0.1
  port: 8888
  mnes: true
`,
		"yaml object": `
# the registry
games:
  - {id: dune, name: Dune MUD, host: mud.example.org, port: 4000, tls: true, charset: latin1}
  - id: moo
    name: LambdaMOO
    host: 127.0.0.1
    port: 8888
    mnes: true
`,
	} {
		got, err := ParseGames(strings.NewReader(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

func TestParseGamesRejects(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct{ src, mention string }{
		"empty":       {"  \n", "empty"},
		"empty array": {"[]", "no games"},
		"no games":    {`{}`, "no games"},
		"other key":   {`{"other":1}`, `unknown field "other"`},
		"bad json":    {`[{"id":`, "parse games"},
		"bad yaml":    {"- id: [unclosed", "parse games"},
		"wrong type":  {`[{"id":"a","name":"A","host":"h","port":"many"}]`, "parse games"},
		"duplicate": {`[{"id":"a","name":"A","host":"h","port":1},{"id":"a","name":"B","host":"h","port":2}]`,
			`entry 2: game "a" listed twice`},
	} {
		_, err := ParseGames(strings.NewReader(c.src))
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: err=%v, want one mentioning %q", name, err, c.mention)
		}
	}
	// Every bad entry is reported, not only the first.
	_, err := ParseGames(strings.NewReader(`[
		{"id":"ok","name":"OK","host":"h","port":1},
		{"id":"BAD","name":"x","host":"h","port":1},
		{"id":"b","name":"x","host":"h","port":0}]`))
	if err == nil || !strings.Contains(err.Error(), "entry 2:") || !strings.Contains(err.Error(), "entry 3:") || strings.Contains(err.Error(), "entry 1:") {
		t.Errorf("err=%v, want entries 2 and 3 reported", err)
	}
}

func TestImportGamesAllOrNothing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)
	bad := `[{"id":"good","name":"Good","host":"h","port":1},{"id":"bad","name":"Bad","host":"h","port":-1}]`
	if _, err := s.ImportGames(ctx, strings.NewReader(bad)); err == nil {
		t.Fatal("bad file imported")
	}
	if games, _ := s.ListGames(ctx); len(games) != 0 {
		t.Fatalf("bad file left %+v behind", games)
	}
	if err := s.AddGame(ctx, Game{ID: "old", Name: "Old", Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	good := "games:\n- {id: a, name: A, host: h, port: 1}\n- {id: old, name: New, host: h, port: 2}\n"
	imported, err := s.ImportGames(ctx, strings.NewReader(good))
	if err != nil || len(imported) != 2 {
		t.Fatalf("import: %v, %v", imported, err)
	}
	games, err := s.ListGames(ctx)
	if err != nil || len(games) != 2 || games[0].ID != "a" || games[1].Name != "New" {
		t.Errorf("after import: %+v, %v; want a and the replaced old", games, err)
	}
}

func TestGameMSSP(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)
	if m, err := s.GameMSSP(ctx, "dune"); err != nil || m != nil {
		t.Errorf("MSSP of a game that never reported: %v, %v", m, err)
	}
	report := map[string][]string{"NAME": {"Dune"}, "PLAYERS": {"42"}, "PORT": {"4000", "4001"}}
	if err := s.SetGameMSSP(ctx, "dune", report, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.GameMSSP(ctx, "dune")
	if err != nil || !reflect.DeepEqual(got, report) {
		t.Errorf("GameMSSP = %v, %v; want %v", got, err, report)
	}
	if ttl := rdb.PTTL(ctx, s.ks.mssp("dune")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("mssp ttl %v, want at most an hour", ttl)
	}
	if err := rdb.Set(ctx, s.ks.mssp("dune"), "{", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GameMSSP(ctx, "dune"); err == nil {
		t.Error("corrupt MSSP report decoded")
	}
}

// A misspelt field is an error, in JSON and YAML alike: silently dropping
// it would register a game without the setting the admin wrote.
func TestParseGamesRejectsUnknownFields(t *testing.T) {
	for name, file := range map[string]string{
		"json":      `[{"id":"a","name":"A","host":"a.org","port":23,"tls-insecure":true}]`,
		"json-wrap": `{"games":[{"id":"a","name":"A","host":"a.org","port":23,"char_set":"latin1"}]}`,
		"yaml":      "- id: a\n  name: A\n  host: a.org\n  port: 23\n  mnes_opt_in: true\n",
		"yaml-wrap": "games:\n  - id: a\n    name: A\n    host: a.org\n    port: 23\n    tsl: true\n",
	} {
		if _, err := ParseGames(strings.NewReader(file)); err == nil {
			t.Errorf("%s: a misspelt field was accepted", name)
		}
	}
	if _, err := ParseGames(strings.NewReader("# " + strings.Repeat("x", 5<<20))); err == nil || !strings.Contains(err.Error(), "4 MiB") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestGamePasswordPromptValidated(t *testing.T) {
	t.Parallel()
	for name, prompt := range map[string]string{
		"empty (the default)": "",
		"the default":         DefaultPasswordPrompt,
		"256 bytes":           strings.Repeat("a", 256),
		"simple":              `(?i)secret word:\s*$`,
	} {
		g := dune()
		g.PasswordPrompt = prompt
		if err := g.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, prompt := range map[string]string{
		"unbalanced":      `(password`,
		"perl lookahead":  `pass(?=word)`,
		"backreference":   `(a)\1`,
		"257 bytes":       strings.Repeat("a", 257),
		"bad repeat":      `a{2,1}`,
		"long and broken": strings.Repeat("(", 300),
	} {
		g := dune()
		g.PasswordPrompt = prompt
		err := g.Validate()
		if err == nil {
			t.Errorf("%s: %q accepted", name, prompt)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `game "dune"`) || !strings.Contains(msg, "password_prompt") {
			t.Errorf("%s: error does not name the game and the field: %v", name, err)
		}
	}
	// A games file with a broken prompt is refused as a whole.
	_, err := ParseGames(strings.NewReader(`[{"id":"a","name":"A","host":"h","port":1,"password_prompt":"(x"}]`))
	if err == nil || !strings.Contains(err.Error(), "password_prompt") {
		t.Errorf("ParseGames with a broken prompt: %v", err)
	}
}
