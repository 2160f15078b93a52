package deploy

import (
	"encoding"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/console"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

// envVar is one environment variable a configuration struct reads.
type envVar struct {
	Name    string
	Default string // the default tag, "" when none
	HasDef  bool
	Type    reflect.Type // the field's type, for checking values
}

// section is a configuration struct and the prefix cmd/trellis processes it
// with (envconfig.Process(prefix, &cfg)).
type section struct {
	prefix string
	spec   any
}

// sections are the configuration structs of the components deploy/ runs.
func sections() []section {
	return []section{
		{"TRELLIS_REDIS", &store.Config{}},
		{"TRELLIS_WORKER", &worker.Config{}},
		{"TRELLIS_EDGE", &edge.Config{}},
		{"TRELLIS_AUTH", &auth.Config{}},
		{"TRELLIS_CONSOLE", &console.Config{}},
	}
}

// logVars are read by cmd/trellis's LogConfig (prefix TRELLIS_LOG), which
// lives in package main and cannot be imported; kept in step by hand.
var logVars = []envVar{
	{Name: "TRELLIS_LOG_LEVEL", Default: "info", HasDef: true, Type: reflect.TypeFor[string]()},
	{Name: "TRELLIS_LOG_FORMAT", Default: "text", HasDef: true, Type: reflect.TypeFor[string]()},
}

// knownVars maps every valid TRELLIS_* name to its variable.
func knownVars(t *testing.T) map[string]envVar {
	t.Helper()
	vars := make(map[string]envVar)
	for _, s := range sections() {
		for _, v := range envVars(s.prefix, s.spec) {
			vars[v.Name] = v
		}
	}
	for _, v := range logVars {
		vars[v.Name] = v
	}
	return vars
}

// The regular expressions envconfig uses to split camel case under
// split_words:"true" (kelseyhightower/envconfig v1.4.0, envconfig.go).
var (
	gatherRegexp  = regexp.MustCompile("([^A-Z]+|[A-Z]+[^A-Z]+|[A-Z]+)")
	acronymRegexp = regexp.MustCompile("([A-Z]+)([A-Z][^A-Z]+)")
)

// The interfaces that make envconfig treat a struct as one value rather
// than a group of variables.
type (
	envDecoder interface{ Decode(value string) error }
	envSetter  interface{ Set(value string) error }
)

// envVars walks spec's fields the way envconfig.Process(prefix, spec) does
// and returns the variables it reads: the name is PREFIX_KEY where KEY is
// the envconfig tag, else the field name split at word boundaries when
// split_words is true, else the upper-cased field name. Nested structs add
// their field's key to the prefix (embedded ones do not); ignored and
// unexported fields read nothing.
//
// envconfig also falls back to the bare tag (without prefix) when the
// prefixed name is unset. Deployments must not rely on that, so those names
// are not returned.
func envVars(prefix string, spec any) []envVar {
	t := reflect.TypeOf(spec)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []envVar
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || isTrue(f.Tag.Get("ignored")) {
			continue
		}
		key := f.Name
		if isTrue(f.Tag.Get("split_words")) {
			if words := gatherRegexp.FindAllStringSubmatch(f.Name, -1); len(words) > 0 {
				var name []string
				for _, w := range words {
					if m := acronymRegexp.FindStringSubmatch(w[0]); len(m) == 3 {
						name = append(name, m[1], m[2])
					} else {
						name = append(name, w[0])
					}
				}
				key = strings.Join(name, "_")
			}
		}
		if alt := f.Tag.Get("envconfig"); alt != "" {
			key = alt
		}
		if prefix != "" {
			key = prefix + "_" + key
		}
		key = strings.ToUpper(key)

		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !decodesItself(ft) {
			inner := key
			if f.Anonymous {
				inner = prefix
			}
			out = append(out, envVars(inner, reflect.New(ft).Interface())...)
			continue
		}
		def, ok := f.Tag.Lookup("default")
		out = append(out, envVar{Name: key, Default: def, HasDef: ok, Type: ft})
	}
	return out
}

func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, iface := range []reflect.Type{
		reflect.TypeFor[envDecoder](),
		reflect.TypeFor[envSetter](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
	} {
		if p.Implements(iface) || t.Implements(iface) {
			return true
		}
	}
	return false
}

// isTrue is envconfig's reading of boolean tags (strconv.ParseBool).
func isTrue(s string) bool {
	switch s {
	case "1", "t", "T", "true", "TRUE", "True":
		return true
	}
	return false
}

// usageKeys asks envconfig itself which variables it reads.
func usageKeys(t *testing.T, prefix string, spec any) []string {
	t.Helper()
	var b strings.Builder
	if err := envconfig.Usagef(prefix, spec, &b, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		t.Fatalf("envconfig.Usagef(%s): %v", prefix, err)
	}
	return strings.Fields(b.String())
}

func names(vs []envVar) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// The walker must name exactly the variables envconfig reads, for the real
// structs and for a fixture with every naming rule in it.
func TestEnvVarsAgreeWithEnvconfig(t *testing.T) {
	type Inner struct {
		Port     int
		HostName string `split_words:"true"`
	}
	type Embedded struct {
		Flavor string `envconfig:"FLAVOUR"`
	}
	type fixture struct {
		Embedded
		Plain         string
		MaxSessions   int    `split_words:"true"`
		HTTPServerURL string `split_words:"true"`
		Tagged        string `envconfig:"CUSTOM_NAME" default:"x"`
		Skipped       string `ignored:"true"`
		//lint:ignore U1000 present only so the walker is seen to skip unexported fields
		unexported  string
		Nested      Inner
		NestedSplit Inner `split_words:"true"`
		Pointer     *Inner
	}
	want := []string{
		"P_FLAVOUR",
		"P_PLAIN",
		"P_MAX_SESSIONS",
		"P_HTTP_SERVER_URL",
		"P_CUSTOM_NAME",
		"P_NESTED_PORT", "P_NESTED_HOST_NAME",
		"P_NESTED_SPLIT_PORT", "P_NESTED_SPLIT_HOST_NAME",
		"P_POINTER_PORT", "P_POINTER_HOST_NAME",
	}
	got := names(envVars("P", &fixture{}))
	if !slices.Equal(got, want) {
		t.Errorf("fixture: walker says\n  %v\nwant\n  %v", got, want)
	}
	if lib := usageKeys(t, "P", &fixture{}); !slices.Equal(got, lib) {
		t.Errorf("fixture: walker says\n  %v\nenvconfig says\n  %v", got, lib)
	}

	for _, s := range sections() {
		got := names(envVars(s.prefix, s.spec))
		if len(got) == 0 {
			t.Errorf("%s: no variables found in %T", s.prefix, s.spec)
		}
		if lib := usageKeys(t, s.prefix, s.spec); !slices.Equal(got, lib) {
			t.Errorf("%s (%T): walker says\n  %v\nenvconfig says\n  %v", s.prefix, s.spec, got, lib)
		}
	}
}

// The variables the brief and the docs promise operators must exist.
func TestDocumentedVariablesExist(t *testing.T) {
	vars := knownVars(t)
	for _, name := range []string{
		"TRELLIS_REDIS_URL", "TRELLIS_REDIS_PASSWORD",
		"TRELLIS_EDGE_LISTEN", "TRELLIS_EDGE_ADMIN_LISTEN", "TRELLIS_EDGE_ID", "TRELLIS_EDGE_ALLOWED_ORIGINS",
		"TRELLIS_EDGE_GUEST", "TRELLIS_EDGE_MAX_SESSIONS_PER_USER", "TRELLIS_EDGE_TRUST_PROXY",
		"TRELLIS_AUTH_SECRET",
		"TRELLIS_WORKER_NAME", "TRELLIS_WORKER_ADMIN_LISTEN", "TRELLIS_WORKER_MAX_SESSIONS",
		"TRELLIS_WORKER_IDLE_GRACE", "TRELLIS_WORKER_DRAIN_TIMEOUT", "TRELLIS_WORKER_LEASE_TTL",
		"TRELLIS_LOG_LEVEL", "TRELLIS_LOG_FORMAT",
	} {
		if _, ok := vars[name]; !ok {
			t.Errorf("%s is read by no configuration struct", name)
		}
	}
}
