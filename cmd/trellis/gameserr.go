package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/trellis-mud/trellis/store"
)

// gameFields are the field names of a game in a games file (store.Game's
// JSON and YAML names).
var gameFields = func() []string {
	var names []string
	t := reflect.TypeFor[store.Game]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}()

// The messages store.ParseGames passes on from its decoders, which speak
// of Go types (yaml.v3's "field x not found in type store.Game",
// encoding/json's "Go struct field Game.port of type int").
var (
	yamlUnknownGame  = regexp.MustCompile(`^line (\d+): field (.+) not found in type store\.Game$`)
	yamlUnknownTop   = regexp.MustCompile(`^line (\d+): field (.+) not found in type struct \{.*\}$`)
	yamlWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	yamlSyntax       = regexp.MustCompile(`^yaml: line (\d+): (.+)$`)
	jsonUnknownField = regexp.MustCompile(`^json: unknown field "(.*)"$`)
)

// explainGamesError rewrites a games file's parse error (from
// store.ParseGames reading data) in the file's terms: line numbers, field
// names as written, and what a value should be. Errors it does not
// recognise (validation errors say what they mean already) come back as
// they are.
func explainGamesError(err error, data []byte) error {
	msg := err.Error()
	const prefix = "parse games: "
	i := strings.Index(msg, prefix)
	if i < 0 {
		return err
	}
	detail := msg[i+len(prefix):]
	// store decodes the file with surrounding white space trimmed: JSON
	// offsets count from the first non-space byte.
	lead := int64(len(data) - len(bytes.TrimLeftFunc(data, unicode.IsSpace)))

	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: not valid JSON: %s", lineAt(data, lead+syn.Offset), strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if j := strings.LastIndexByte(field, '.'); j >= 0 {
			field = field[j+1:]
		}
		what := "the file"
		if field != "" {
			what = fmt.Sprintf("%q", field)
		}
		return fmt.Errorf("line %d: %s is %s, want %s", lineAt(data, lead+typ.Offset), what, jsonKind(typ.Value), wantKind(typ.Type.String()))
	}
	if m := jsonUnknownField.FindStringSubmatch(detail); m != nil {
		where := ""
		if n := lineOfKey(data, `"`+m[1]+`"`); n > 0 {
			where = fmt.Sprintf("line %d: ", n)
		}
		return errors.New(where + unknownField(m[1]) + "; " + knownFields())
	}
	if m := yamlSyntax.FindStringSubmatch(detail); m != nil {
		return fmt.Errorf("line %s: not valid YAML: %s", m[1], m[2])
	}
	if !strings.HasPrefix(detail, "yaml: unmarshal errors:") {
		return err
	}
	var out []string
	unknown := false
	for _, line := range strings.Split(detail, "\n")[1:] {
		line = strings.TrimSpace(line)
		if m := yamlUnknownGame.FindStringSubmatch(line); m != nil {
			out = append(out, "line "+m[1]+": "+unknownField(m[2]))
			unknown = true
		} else if m := yamlUnknownTop.FindStringSubmatch(line); m != nil {
			out = append(out, fmt.Sprintf(`line %s: unknown field %q at the top of the file (a games file is a list of games, or has one field, "games")`, m[1], m[2]))
		} else if m := yamlWrongType.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			what := yamlKind(m[2])
			if m[3] != "" {
				what = strconv.Quote(m[3])
				if key := keyBefore(data, n, m[3]); key != "" {
					what = key + ": " + what
				}
			}
			out = append(out, fmt.Sprintf("line %s: %s is not %s", m[1], what, wantKind(m[4])))
		} else {
			out = append(out, line)
		}
	}
	if unknown {
		out = append(out, knownFields())
	}
	if len(out) == 1 {
		return errors.New(out[0])
	}
	return errors.New("\n  " + strings.Join(out, "\n  "))
}

func knownFields() string { return "a game's fields are " + strings.Join(gameFields, ", ") }

// unknownField says a game's field is unknown, and suggests the one meant.
func unknownField(name string) string {
	msg := fmt.Sprintf("unknown field %q in a game", name)
	if s := closestField(name); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// closestField is the known field name meant by a misspelt one: the same
// but for case and '-' for '_', or at most two edits away.
func closestField(name string) string {
	norm := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	best, bestD := "", 3
	for _, f := range gameFields {
		if f == norm {
			return f
		}
		if d := editDistance(norm, f); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// wantKind says what a value decoded into the Go type named t should be.
func wantKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list of games"
	case t == "store.Game":
		return "a game (its fields, such as id, name, host and port)"
	case strings.HasPrefix(t, "struct"):
		return `a list of games, or a mapping with one field, "games"`
	}
	return "a " + t
}

// jsonKind names what encoding/json says it found ("string", "number"...).
func jsonKind(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "bool":
		return "true or false"
	}
	if strings.HasPrefix(v, "number") {
		return "a number"
	}
	return "a " + v
}

// yamlKind names a YAML tag (str, int, seq, map...).
func yamlKind(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	}
	return "a " + tag
}

// lineAt is the 1-based line number of byte offset off of data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// lineOfKey is the line of the first occurrence of key followed by a
// colon, or 0.
func lineOfKey(data []byte, key string) int {
	re := regexp.MustCompile(regexp.QuoteMeta(key) + `\s*:`)
	if loc := re.FindIndex(data); loc != nil {
		return lineAt(data, int64(loc[0]))
	}
	return 0
}

// keyBefore finds, on line n of data, the key whose value is val ("port"
// in "{..., port: abc}"), or "".
func keyBefore(data []byte, n int, val string) string {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return ""
	}
	re := regexp.MustCompile(`([A-Za-z0-9_-]+)["']?\s*:\s*["']?` + regexp.QuoteMeta(val))
	if m := re.FindSubmatch(lines[n-1]); m != nil {
		return string(m[1])
	}
	return ""
}
