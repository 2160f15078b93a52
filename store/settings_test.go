package store

import (
	"errors"
	"strings"
	"testing"
)

func TestUserSettingsRoundTrip(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	ctx := testContext(t)

	got, err := s.UserSettings(ctx, "alice")
	if err != nil || got != nil {
		t.Fatalf("settings of a new user = %q, %v; want none", got, err)
	}
	doc := []byte(`{"fontSize":18,"aliases":[{"name":"k","expansion":"kill $1"}]}`)
	if err := s.PutUserSettings(ctx, "alice", doc); err != nil {
		t.Fatal(err)
	}
	if got, err = s.UserSettings(ctx, "alice"); err != nil || string(got) != string(doc) {
		t.Fatalf("settings = %q, %v; want %q", got, err, doc)
	}
	// Another user's settings are their own.
	if got, _ := s.UserSettings(ctx, "bob"); got != nil {
		t.Fatalf("bob sees %q", got)
	}
	// Kept with a TTL, so abandoned accounts do not hold memory for ever.
	if ttl := rdb.TTL(ctx, s.ks.userSettings("alice")).Val(); ttl <= 0 {
		t.Fatalf("settings TTL = %v, want a positive TTL", ttl)
	}
	if err := s.DeleteUserSettings(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserSettings(ctx, "alice"); got != nil {
		t.Fatalf("deleted settings still read %q", got)
	}
}

func TestUserSettingsBounded(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := testContext(t)

	big := []byte(`{"x":"` + strings.Repeat("a", MaxUserSettings) + `"}`)
	if err := s.PutUserSettings(ctx, "alice", big); !errors.Is(err, ErrSettingsTooLarge) {
		t.Fatalf("oversized settings: err = %v, want ErrSettingsTooLarge", err)
	}
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{"a":`} {
		if err := s.PutUserSettings(ctx, "alice", []byte(bad)); !errors.Is(err, ErrSettingsInvalid) {
			t.Errorf("settings %q: err = %v, want ErrSettingsInvalid", bad, err)
		}
	}
	if got, _ := s.UserSettings(ctx, "alice"); got != nil {
		t.Fatalf("a refused write stored %q", got)
	}
	// Exactly at the bound is fine.
	pad := MaxUserSettings - len(`{"x":""}`)
	exact := []byte(`{"x":"` + strings.Repeat("a", pad) + `"}`)
	if err := s.PutUserSettings(ctx, "alice", exact); err != nil {
		t.Fatalf("settings of exactly %d bytes refused: %v", len(exact), err)
	}
}

func TestGameClientFieldsValidated(t *testing.T) {
	t.Parallel()
	ok := dune()
	ok.Echo = EchoCharacter
	ok.Vitals = []VitalSpec{
		{Label: "HP", Package: "Char.Status", Value: "health", Max: "maxHealth", MaxPackage: "Char.MaxStats", Kind: "hp"},
		{Label: "Focus", Package: "msdp", Value: "FOCUS", Max: "100"},
		{Label: "Mana", Package: "Char.Vitals", Value: "stats.mana.cur", Max: "stats.mana.max"},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid client fields refused: %v", err)
	}
	if ok.EchoMode() != EchoCharacter || dune().EchoMode() != EchoAuto {
		t.Fatalf("EchoMode = %q / %q", ok.EchoMode(), dune().EchoMode())
	}

	for name, tc := range map[string]struct {
		mut  func(*Game)
		want string
	}{
		"echo":        {func(g *Game) { g.Echo = "sometimes" }, "echo "},
		"label":       {func(g *Game) { g.Vitals[0].Label = "<b>HP</b>" }, "label "},
		"long label":  {func(g *Game) { g.Vitals[0].Label = strings.Repeat("H", 17) }, "label "},
		"package":     {func(g *Game) { g.Vitals[0].Package = "vitals" }, "package "},
		"max package": {func(g *Game) { g.Vitals[0].MaxPackage = "x y" }, "max_package "},
		"value":       {func(g *Game) { g.Vitals[0].Value = "a..b" }, "value "},
		"deep path":   {func(g *Game) { g.Vitals[0].Value = "a.b.c.d.e" }, "value "},
		"max":         {func(g *Game) { g.Vitals[0].Max = "" }, "max "},
		"kind":        {func(g *Game) { g.Vitals[0].Kind = "red" }, "kind "},
		"too many": {func(g *Game) {
			for len(g.Vitals) <= MaxVitals {
				g.Vitals = append(g.Vitals, g.Vitals[0])
			}
		}, "at most 8"},
	} {
		g := ok
		g.Vitals = append([]VitalSpec(nil), ok.Vitals...)
		tc.mut(&g)
		err := g.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", name, err, tc.want)
		}
	}

	// The registry file format takes them, and a typo is refused.
	games, err := ParseGames(strings.NewReader(`games:
  - id: dune
    name: Dune
    host: mud.example.org
    port: 4000
    echo: character
    vitals:
      - {label: HP, package: Char.Vitals, value: hp, max: hp_max}
`))
	if err != nil || len(games) != 1 || games[0].Echo != EchoCharacter || len(games[0].Vitals) != 1 || games[0].Vitals[0].Max != "hp_max" {
		t.Fatalf("parse = %+v, %v", games, err)
	}
	if _, err := ParseGames(strings.NewReader(`[{"id":"dune","name":"Dune","host":"h","port":1,"vitals":[{"label":"HP","package":"Char.Vitals","value":"hp","maximum":"x"}]}]`)); err == nil {
		t.Fatal("unknown vitals field accepted")
	}
}
