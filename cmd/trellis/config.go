package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/internal/config"
	"github.com/trellis-mud/trellis/store"
)

// envSection is one component's configuration struct and its prefix.
type envSection struct {
	prefix string
	spec   any
}

// LogConfig configures logging for every subcommand. No configuration
// struct uses envconfig tags: the variable names come from the field names
// (split_words where there are several words), because a tag makes
// envconfig also read the bare name (LEVEL for TRELLIS_LOG_LEVEL).
type LogConfig struct {
	Level  string `default:"info" desc:"log level: debug, info, warn, error"`
	Format string `default:"text" desc:"log format: text or json"`
}

func (c LogConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("TRELLIS_LOG_LEVEL=%q: want debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("TRELLIS_LOG_FORMAT=%q: want text or json", c.Format)
}

// loadEnv fills every section from the environment and validates those
// that can validate themselves. config.Process reads only the TRELLIS_
// names, never envconfig's bare fallback (URL for TRELLIS_REDIS_URL).
func loadEnv(sections ...envSection) error {
	for _, s := range sections {
		if err := config.Process(s.prefix, s.spec); err != nil {
			return configError(s, err)
		}
		if d, ok := s.spec.(interface{ SetDefaults() }); ok {
			d.SetDefaults()
		}
		if v, ok := s.spec.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
		}
	}
	return nil
}

// requiredKey is envconfig's (v1.4.0) error for a required variable that
// is not set, a plain error naming the key: "required key
// TRELLIS_AUTH_SECRET missing value" (without the prefix when the field
// has an envconfig tag).
var requiredKey = regexp.MustCompile(`^required key (\S+) missing value$`)

// configError rewrites an error of config.Process in the operator's
// terms: the whole TRELLIS_ variable, the value, and what it should be,
// without Go's field or type names.
func configError(s envSection, err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("configuration: %s=%q: want %s", pe.KeyName, pe.Value, wantValue(pe))
	}
	if m := requiredKey.FindStringSubmatch(err.Error()); m != nil {
		key := m[1]
		if !strings.HasPrefix(key, s.prefix+"_") {
			key = s.prefix + "_" + key
		}
		msg := fmt.Sprintf("configuration: %s is not set", key)
		if desc := envDesc(s, key); desc != "" {
			msg += ": " + desc
		}
		return errors.New(msg)
	}
	return fmt.Errorf("configuration: %s: %s", s.prefix, strings.TrimPrefix(err.Error(), "envconfig.Process: "))
}

// wantValue says what a variable of the ParseError's type takes.
func wantValue(pe *envconfig.ParseError) string {
	switch pe.TypeName {
	case "time.Duration":
		return "a duration such as 500ms, 10s, 1m30s or 2h"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		if errors.Is(pe.Err, strconv.ErrRange) {
			return "a whole number in range (this one is too large)"
		}
		if strings.HasPrefix(pe.TypeName, "u") {
			return "a whole number, 0 or more"
		}
		return "a whole number"
	case "float32", "float64":
		return "a number"
	}
	var ne *strconv.NumError
	if errors.As(pe.Err, &ne) {
		return "a number (" + ne.Err.Error() + ")"
	}
	return "a valid value (" + pe.Err.Error() + ")"
}

// envDesc is the help text of the variable key in section s.
func envDesc(s envSection, key string) string {
	keys, err := config.Keys(s.prefix, s.spec)
	if err != nil {
		return ""
	}
	t := reflect.TypeOf(s.spec).Elem()
	for name, k := range keys {
		if k == key {
			if f, ok := t.FieldByName(name); ok {
				return f.Tag.Get("desc")
			}
		}
	}
	return ""
}

const envFormat = `{{range .}}{{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`

func printEnv(w io.Writer, sections ...envSection) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, s := range sections {
		var b strings.Builder
		_ = envconfig.Usagef(s.prefix, s.spec, &b, envFormat)
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line != "" {
				fmt.Fprintln(tw, "  "+line)
			}
		}
	}
	tw.Flush()
}

// Common sections.
func logSection(c *LogConfig) envSection      { return envSection{"TRELLIS_LOG", c} }
func redisSection(c *store.Config) envSection { return envSection{"TRELLIS_REDIS", c} }

// openStore loads the Redis and log configuration, plus any other sections
// the command reads, from the environment and connects.
func openStore(own ...envSection) (*store.Store, *slog.Logger, error) {
	var rc store.Config
	var lc LogConfig
	if err := loadEnv(append(own, redisSection(&rc), logSection(&lc))...); err != nil {
		return nil, nil, err
	}
	log, err := lc.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(rc)
	if err != nil {
		return nil, nil, err
	}
	// A URL of the wrong kind fails every command later in a way that is
	// hard to read (MOVED, "cluster support disabled"): say it now. A Redis
	// that is down is not an error here: components wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), rc.DialTimeout+rc.ReadTimeout)
	defer cancel()
	if err := st.CheckTopology(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	// So is a control shard count the namespace was not created with: an
	// edge and a worker that disagreed would lose attaches between them.
	if _, err := st.ControlShards(ctx); errors.Is(err, store.ErrControlShards) {
		st.Close()
		return nil, nil, err
	}
	return st, log, nil
}
