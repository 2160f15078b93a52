package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/config"
	"github.com/trellis-mud/trellis/internal/config/configtest"
	"github.com/trellis-mud/trellis/internal/console"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

// allSections are every configuration section a subcommand reads, fresh.
func allSections() []envSection {
	return []envSection{
		{"TRELLIS_DEV", &DevConfig{}},
		redisSection(&store.Config{}),
		logSection(&LogConfig{}),
		{"TRELLIS_WORKER", &worker.Config{}},
		{"TRELLIS_EDGE", &edge.Config{}},
		{"TRELLIS_AUTH", &auth.Config{}},
		{"TRELLIS_CONSOLE", &console.Config{}},
	}
}

// goldenVars is every variable Trellis reads. Operators' deployments set
// these names: a renamed field or a changed tag that renames one fails here
// (and then needs a note in OPERATIONS.md), not in production.
var goldenVars = map[string][]string{
	"TRELLIS_DEV": {"TRELLIS_DEV_LISTEN", "TRELLIS_DEV_DEMO_LISTEN", "TRELLIS_DEV_REDIS_LISTEN"},
	"TRELLIS_REDIS": {"TRELLIS_REDIS_URL", "TRELLIS_REDIS_PASSWORD", "TRELLIS_REDIS_POOL_SIZE",
		"TRELLIS_REDIS_DIAL_TIMEOUT", "TRELLIS_REDIS_READ_TIMEOUT", "TRELLIS_REDIS_OUTPUT_MAXLEN",
		"TRELLIS_REDIS_OUTPUT_MAX_BYTES", "TRELLIS_REDIS_EVENTS_RETENTION", "TRELLIS_REDIS_CONTROL_MAXLEN",
		"TRELLIS_REDIS_NAMESPACE", "TRELLIS_REDIS_CONTROL_SHARDS"},
	"TRELLIS_LOG": {"TRELLIS_LOG_LEVEL", "TRELLIS_LOG_FORMAT"},
	"TRELLIS_WORKER": {"TRELLIS_WORKER_NAME", "TRELLIS_WORKER_ADMIN_LISTEN", "TRELLIS_WORKER_MAX_SESSIONS",
		"TRELLIS_WORKER_IDLE_GRACE", "TRELLIS_WORKER_DRAIN_TIMEOUT", "TRELLIS_WORKER_LEASE_TTL",
		"TRELLIS_WORKER_DIAL_TIMEOUT", "TRELLIS_WORKER_CLAIM_MIN_IDLE", "TRELLIS_WORKER_MAX_DELIVERIES",
		"TRELLIS_WORKER_FLUSH_DELAY", "TRELLIS_WORKER_FLUSH_BYTES", "TRELLIS_WORKER_SESSION_BUFFER", "TRELLIS_WORKER_PPROF",
		"TRELLIS_WORKER_REFUSE_COMPRESSION", "TRELLIS_WORKER_TRANSCRIPT_TTL", "TRELLIS_WORKER_RESTART_INTENSITY",
		"TRELLIS_WORKER_RESTART_PERIOD", "TRELLIS_WORKER_BACKOFF_MIN", "TRELLIS_WORKER_BACKOFF_MAX",
		"TRELLIS_WORKER_CLIENT_NAME", "TRELLIS_WORKER_CLIENT_VERSION", "TRELLIS_WORKER_VIEWER_CHECK",
		"TRELLIS_WORKER_CLOSE_TIMEOUT", "TRELLIS_WORKER_ALLOW_NETWORKS", "TRELLIS_WORKER_GMCP_MAX_PACKAGES",
		"TRELLIS_WORKER_GMCP_MAX_BYTES", "TRELLIS_WORKER_MSDP_MAX_VARS", "TRELLIS_WORKER_MSDP_MAX_BYTES",
		"TRELLIS_WORKER_MXP_MAX_TAG", "TRELLIS_WORKER_MXP_MAX_DEPTH", "TRELLIS_WORKER_MXP_MAX_ELEMENT_BYTES", "TRELLIS_WORKER_MXP_MAX_ESCAPE",
		"TRELLIS_WORKER_TYPEAHEAD_HOLD", "TRELLIS_WORKER_MAX_SUBNEG",
		"TRELLIS_WORKER_GAME_WRITE_QUEUE", "TRELLIS_WORKER_OUTPUT_RATE"},
	"TRELLIS_EDGE": {"TRELLIS_EDGE_LISTEN", "TRELLIS_EDGE_ADMIN_LISTEN", "TRELLIS_EDGE_ID",
		"TRELLIS_EDGE_ALLOWED_ORIGINS", "TRELLIS_EDGE_GUEST", "TRELLIS_EDGE_MAX_SESSIONS_PER_USER",
		"TRELLIS_EDGE_MAX_CONNECTIONS", "TRELLIS_EDGE_INPUT_RATE", "TRELLIS_EDGE_INPUT_BURST",
		"TRELLIS_EDGE_MAX_LINE", "TRELLIS_EDGE_MAX_MESSAGE", "TRELLIS_EDGE_SEND_QUEUE",
		"TRELLIS_EDGE_WRITE_TIMEOUT", "TRELLIS_EDGE_PING_INTERVAL", "TRELLIS_EDGE_HELLO_TIMEOUT",
		"TRELLIS_EDGE_COMPRESSION", "TRELLIS_EDGE_LEASE_CHECK", "TRELLIS_EDGE_TRUST_PROXY"},
	"TRELLIS_AUTH": {"TRELLIS_AUTH_SECRET"},
	"TRELLIS_CONSOLE": {"TRELLIS_CONSOLE_LISTEN", "TRELLIS_CONSOLE_TLS_CERT", "TRELLIS_CONSOLE_TLS_KEY",
		"TRELLIS_CONSOLE_ALLOWED_ORIGINS", "TRELLIS_CONSOLE_MAX_SIGN_IN", "TRELLIS_CONSOLE_MAX_STREAMS"},
}

// Every variable each component reads, by name, as envconfig names it.
func TestVariableNamesAreTheGoldenList(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range allSections() {
		seen[s.prefix] = true
		var b strings.Builder
		if err := envconfig.Usagef(s.prefix, s.spec, &b, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(b.String())
		if want := goldenVars[s.prefix]; !slices.Equal(got, want) {
			t.Errorf("%s reads\n  %q\nthe golden list says\n  %q", s.prefix, got, want)
		}
	}
	for p := range goldenVars {
		if !seen[p] {
			t.Errorf("golden prefix %s is read by no section", p)
		}
	}
}

// bareName is what envconfig's fallback would read for key: the name
// without the section's prefix (NAME for TRELLIS_WORKER_NAME).
func bareName(s envSection, key string) string {
	return strings.TrimPrefix(key, s.prefix+"_")
}

// A variable without the TRELLIS_ prefix, such as a container's NAME, URL,
// SECRET or ADMIN_LISTEN, configures nothing: envconfig would take it when
// the prefixed variable is unset.
func TestBareVariablesAreIgnored(t *testing.T) {
	const stray = "stray-bare-value"
	for _, s := range allSections() {
		configtest.EmptyEnv(t, s.prefix, s.spec)
	}
	for _, s := range allSections() {
		keys, _ := config.Keys(s.prefix, s.spec)
		for _, k := range keys {
			t.Setenv(bareName(s, k), stray)
		}
	}
	// Required and not bare: the one variable that has to be set.
	t.Setenv("TRELLIS_AUTH_SECRET", strings.Repeat("s", 32))

	for _, s := range allSections() {
		t.Run(s.prefix, func(t *testing.T) {
			if err := loadEnv(s); err != nil {
				t.Fatalf("loadEnv: %v", err)
			}
			checkNoStray(t, s.prefix, s.spec, stray)
		})
	}
	// The structs themselves name no bare variable, so even a direct
	// envconfig.Process is safe. store.Config still has envconfig tags:
	// loadEnv's config.Process covers it.
	for _, s := range allSections() {
		if s.prefix == "TRELLIS_REDIS" {
			continue
		}
		t.Run(s.prefix+"/envconfig", func(t *testing.T) {
			spec := reflect.New(reflect.TypeOf(s.spec).Elem()).Interface()
			if err := envconfig.Process(s.prefix, spec); err != nil {
				t.Fatalf("envconfig.Process: %v", err)
			}
			checkNoStray(t, s.prefix, spec, stray)
		})
	}
}

// A bare SECRET, some other program's, is not taken for the missing
// TRELLIS_AUTH_SECRET.
func TestBareSecretIsNotTheAuthSecret(t *testing.T) {
	configtest.Unset(t, "TRELLIS_AUTH_SECRET")
	t.Setenv("SECRET", strings.Repeat("x", 40))
	var ac auth.Config
	err := loadEnv(envSection{"TRELLIS_AUTH", &ac})
	if err == nil || !strings.Contains(err.Error(), "TRELLIS_AUTH_SECRET is not set") || ac.Secret != "" {
		t.Errorf("loadEnv with only SECRET set: %v (secret %d bytes): want TRELLIS_AUTH_SECRET is not set", err, len(ac.Secret))
	}
}

func checkNoStray(t *testing.T, prefix string, spec any, stray string) {
	t.Helper()
	v := reflect.ValueOf(spec).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && f.String() == stray ||
			f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String && slices.Contains(f.Interface().([]string), stray) {
			t.Errorf("%s.%s = %q: read from the bare variable", prefix, v.Type().Field(i).Name, stray)
		}
	}
}
