package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/store"
)

// eventTypes lists every Ev* constant of store (events.go and
// console.go): -type would call a new type unknown otherwise.
func TestEventTypesAreStoresEventTypes(t *testing.T) {
	var want []string
	for _, file := range []string{"../../store/events.go", "../../store/console.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if strings.HasPrefix(name.Name, "Ev") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						want = append(want, v)
					}
				}
			}
			return true
		})
	}
	if len(want) == 0 {
		t.Fatal("no Ev* constants found in store/events.go")
	}
	got := slices.Clone(eventTypes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cmd's eventTypes:\n%q\nstore/events.go:\n%q", got, want)
	}
}

// gameJSON (games ls -o json) has exactly the fields of a games file.
func TestGameJSONHasTheGamesFileFields(t *testing.T) {
	b, err := json.Marshal(toGameJSON(store.Game{}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var got []string
	for k := range m {
		got = append(got, k)
	}
	want := slices.Clone(gameFields)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("games ls -o json keys %q, a games file's fields %q", got, want)
	}
	if n := reflect.TypeFor[store.Game]().NumField(); len(want) != n {
		t.Errorf("%d game fields named, store.Game has %d", len(want), n)
	}
}

// The embedded Redis has no password: dev serves it on loopback only,
// by default at a fixed address so the printed URL is the same each run.
func TestDevRedisListensOnLoopbackOnly(t *testing.T) {
	ok := DevConfig{Listen: "127.0.0.1:8080", DemoListen: "127.0.0.1:0"}
	for _, a := range []string{"127.0.0.1:6380", "127.0.0.1:0", "[::1]:6380", "localhost:6380", "127.0.0.2:1"} {
		c := ok
		c.RedisListen = a
		if err := c.Validate(); err != nil {
			t.Errorf("TRELLIS_DEV_REDIS_LISTEN=%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"0.0.0.0:6380", ":6380", "192.168.1.5:6380", "example.org:6380", "6380"} {
		c := ok
		c.RedisListen = a
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "TRELLIS_DEV_REDIS_LISTEN") {
			t.Errorf("TRELLIS_DEV_REDIS_LISTEN=%s: %v, want refused, naming the variable", a, err)
		}
	}
	code, out, _ := capture(t, "dev", "--help")
	if code != 0 || !regexp.MustCompile(`TRELLIS_DEV_REDIS_LISTEN\s+127\.0\.0\.1:6380\s`).MatchString(out) {
		t.Errorf("dev --help: exit %d, does not show TRELLIS_DEV_REDIS_LISTEN's default 127.0.0.1:6380:\n%s", code, out)
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                        "redis://127.0.0.1:6379/0",
		"redis://:hunter2@10.0.0.1:6379/0":                "redis://xxxxx@10.0.0.1:6379/0",
		"rediss://user:p@ss/w@r.d@redis.example.org:6380": "rediss://xxxxx@redis.example.org:6380",
		"redis://a:x@n1:7000,redis://a:x@n2:7000":         "redis://xxxxx@n1:7000,redis://xxxxx@n2:7000",
		"n1:7000,n2:7000":                                 "n1:7000,n2:7000",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSinceStartAndSign(t *testing.T) {
	for _, s := range []string{"0", "0-0", "-"} {
		if id, err := parseSince(s, "+"); err != nil || id != "-" {
			t.Errorf("parseSince(%q) = %q, %v; want the stream's start", s, id, err)
		}
	}
	if _, err := parseSince("-2h", "-"); err == nil {
		t.Error("a negative duration (the future) accepted")
	}
	if id, err := parseSince("1700000000000", "-"); err != nil || id != "1700000000000" {
		t.Errorf("a millisecond stream id: %q %v", id, err)
	}
}

func TestProgressDrawsOnlyWhenLive(t *testing.T) {
	for _, live := range []bool{true, false} {
		var b bytes.Buffer
		p := newProgress(&b, 2, live)
		p.step()
		p.step()
		p.done()
		if got := strings.Contains(b.String(), "\r[") && strings.Contains(b.String(), "2/2"); got != live {
			t.Errorf("live=%v: drew %q", live, b.String())
		}
	}
}
