package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/store"
)

// envSection is one component's configuration struct and its prefix.
type envSection struct {
	prefix string
	spec   any
}

// LogConfig configures logging for every subcommand.
type LogConfig struct {
	Level  string `envconfig:"LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	Format string `envconfig:"FORMAT" default:"text" desc:"log format: text or json"`
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
// that can validate themselves.
func loadEnv(sections ...envSection) error {
	for _, s := range sections {
		if err := envconfig.Process(s.prefix, s.spec); err != nil {
			return fmt.Errorf("configuration: %s", strings.TrimPrefix(err.Error(), "envconfig.Process: "))
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
	return st, log, nil
}
