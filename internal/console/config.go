package console

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is the console's part of the environment, read with the prefix
// TRELLIS_CONSOLE_. The operator credential is a token signed with
// TRELLIS_AUTH_SECRET (auth.Config), minted by `trellis token -operator`.
type Config struct {
	Listen string `default:"127.0.0.1:9092" desc:"address of the operator's web console (an admin address: keep it off the players' network)"`
	// TLSCert and TLSKey, both set, serve the console over HTTPS (the
	// sign-in cookie is then Secure). Behind a TLS-terminating proxy that
	// sets X-Forwarded-Proto: https the cookie is Secure as well.
	TLSCert string `split_words:"true" desc:"PEM certificate file: serve HTTPS (with TRELLIS_CONSOLE_TLS_KEY)"`
	TLSKey  string `split_words:"true" desc:"PEM private key file of TRELLIS_CONSOLE_TLS_CERT"`
	// AllowedOrigins lists the origins (scheme://host[:port]) whose pages
	// may change state; empty means the host the request was sent to.
	AllowedOrigins []string `split_words:"true" desc:"origins whose pages may kill sessions and edit games (default: same host)"`
	// MaxSignIn caps a sign-in: the cookie lasts until the token expires
	// or this long, whichever comes first.
	MaxSignIn time.Duration `split_words:"true" default:"12h" desc:"longest a console sign-in lasts (never past the token's expiry)"`
	// MaxStreams bounds the live event streams held open at once.
	MaxStreams int `split_words:"true" default:"32" desc:"live event streams (open event pages) served at once; more get HTTP 503"`
}

// Validate reports the first setting that cannot work, naming its
// variable.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("TRELLIS_CONSOLE_LISTEN=%q: want host:port", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("TRELLIS_CONSOLE_TLS_CERT and TRELLIS_CONSOLE_TLS_KEY: set both or neither")
	}
	if c.MaxSignIn < time.Minute {
		return fmt.Errorf("TRELLIS_CONSOLE_MAX_SIGN_IN=%s: must be at least 1m", c.MaxSignIn)
	}
	if c.MaxStreams < 1 {
		return fmt.Errorf("TRELLIS_CONSOLE_MAX_STREAMS=%d: must be at least 1", c.MaxStreams)
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
			return fmt.Errorf("TRELLIS_CONSOLE_ALLOWED_ORIGINS: %q is not scheme://host[:port]", o)
		}
	}
	return nil
}
