package console

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Listen: "127.0.0.1:9092", MaxSignIn: time.Hour, MaxStreams: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"listen":  {func(c *Config) { c.Listen = "9092" }, "TRELLIS_CONSOLE_LISTEN"},
		"tls":     {func(c *Config) { c.TLSCert = "cert.pem" }, "TRELLIS_CONSOLE_TLS_KEY"},
		"sign-in": {func(c *Config) { c.MaxSignIn = time.Second }, "TRELLIS_CONSOLE_MAX_SIGN_IN"},
		"streams": {func(c *Config) { c.MaxStreams = 0 }, "TRELLIS_CONSOLE_MAX_STREAMS"},
		"origins": {func(c *Config) { c.AllowedOrigins = []string{"console.example"} }, "TRELLIS_CONSOLE_ALLOWED_ORIGINS"},
	} {
		cfg := good
		c.mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v; want an error naming %s", name, err, c.want)
		}
	}
}
