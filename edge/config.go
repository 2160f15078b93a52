package edge

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-mud/trellis/internal/config"
)

// Config is the edge's part of the environment, read with the prefix
// TRELLIS_EDGE_ (config.Process("TRELLIS_EDGE", &cfg)). Each default is
// stated once, in its tag.
type Config struct {
	Listen string `default:":8080" desc:"address of the HTTP and WebSocket listener"`
	// AdminListen serves /metrics, /healthz and /readyz for operators and
	// Prometheus, away from the players' listener. Empty means none (the
	// zero Config of a test has none; the variable's default is loopback).
	AdminListen string `split_words:"true" keepzero:"true" default:"127.0.0.1:9090" desc:"address of /metrics, /healthz and /readyz (empty: none)"`
	// ID names this edge in heartbeats, attaches and events. Empty means
	// hostname + "-" + 8 hex digits, unique per process.
	ID string `desc:"edge instance id (default: hostname-xxxxxxxx)"`
	// AllowedOrigins lists the origins (scheme://host[:port]) whose pages
	// may open /ws; "*" allows any. Empty means the page must come from
	// the host the request was sent to.
	AllowedOrigins     []string      `split_words:"true" desc:"origins allowed to open /ws (default: same host)"`
	Guest              bool          `default:"false" desc:"allow players without a token, identified by a signed cookie"`
	MaxSessionsPerUser int           `split_words:"true" keepzero:"true" default:"5" desc:"game sessions one user may hold at once (0: no limit)"`
	MaxConnections     int           `split_words:"true" keepzero:"true" default:"20000" desc:"browser connections this edge holds at most, including those still saying hello; more get HTTP 503 (0: no limit)"`
	InputRate          float64       `split_words:"true" default:"20" desc:"messages per second a browser may send (token bucket rate)"`
	InputBurst         int           `split_words:"true" default:"40" desc:"token bucket size for browser messages"`
	MaxLine            int           `split_words:"true" default:"4096" desc:"longest input line in bytes"`
	MaxMessage         int           `split_words:"true" default:"65536" desc:"largest browser frame accepted; larger ones are discarded with an error (1 MiB closes)"`
	SendQueue          int           `split_words:"true" default:"1024" desc:"output entries queued per browser before it is cut as too slow (4008)"`
	WriteTimeout       time.Duration `split_words:"true" default:"10s" desc:"deadline of one write to a browser"`
	PingInterval       time.Duration `split_words:"true" default:"25s" desc:"WebSocket ping interval; two missed pongs close the connection"`
	HelloTimeout       time.Duration `split_words:"true" default:"10s" desc:"time a browser has to send hello"`
	Compression        bool          `desc:"offer permessage-deflate"`
	LeaseCheck         time.Duration `split_words:"true" default:"2s" desc:"how often the watchdog checks the leases of watched sessions"`
	// TrustProxy takes the player's address from the last X-Forwarded-For
	// entry (the one the trusted proxy in front of the edge appended).
	TrustProxy bool `split_words:"true" desc:"take the player IP from X-Forwarded-For (only behind a proxy that sets it)"`
}

// Validate reports the first setting that cannot work, naming its
// variable and value, and fills in the instance id.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Listen) == "":
		return fmt.Errorf("TRELLIS_EDGE_LISTEN=%q: want host:port", c.Listen)
	case c.AdminListen != "" && !validHostPort(c.AdminListen):
		return fmt.Errorf("TRELLIS_EDGE_ADMIN_LISTEN=%q: want host:port, or empty for no admin listener", c.AdminListen)
	case c.AdminListen != "" && c.AdminListen == c.Listen:
		return fmt.Errorf("TRELLIS_EDGE_ADMIN_LISTEN=%q: must differ from TRELLIS_EDGE_LISTEN (the admin endpoints stay off the players' listener)", c.AdminListen)
	case c.MaxConnections < 0:
		return fmt.Errorf("TRELLIS_EDGE_MAX_CONNECTIONS=%d: must be 0 (no limit) or more", c.MaxConnections)
	case c.MaxSessionsPerUser < 0:
		return fmt.Errorf("TRELLIS_EDGE_MAX_SESSIONS_PER_USER=%d: must be 0 (no limit) or more", c.MaxSessionsPerUser)
	case !(c.InputRate > 0):
		return fmt.Errorf("TRELLIS_EDGE_INPUT_RATE=%v: must be positive", c.InputRate)
	case c.InputBurst < 1:
		return fmt.Errorf("TRELLIS_EDGE_INPUT_BURST=%d: must be at least 1", c.InputBurst)
	case c.MaxMessage < 512 || c.MaxMessage > hardMessageLimit:
		return fmt.Errorf("TRELLIS_EDGE_MAX_MESSAGE=%d: want 512 to %d", c.MaxMessage, hardMessageLimit)
	case c.MaxLine < 1 || c.MaxLine > c.MaxMessage:
		return fmt.Errorf("TRELLIS_EDGE_MAX_LINE=%d: want 1 to TRELLIS_EDGE_MAX_MESSAGE (%d)", c.MaxLine, c.MaxMessage)
	case c.SendQueue < 16:
		return fmt.Errorf("TRELLIS_EDGE_SEND_QUEUE=%d: must be at least 16", c.SendQueue)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("TRELLIS_EDGE_WRITE_TIMEOUT=%s: must be positive", c.WriteTimeout)
	case c.PingInterval < 10*time.Millisecond:
		return fmt.Errorf("TRELLIS_EDGE_PING_INTERVAL=%s: must be at least 10ms", c.PingInterval)
	case c.HelloTimeout <= 0:
		return fmt.Errorf("TRELLIS_EDGE_HELLO_TIMEOUT=%s: must be positive", c.HelloTimeout)
	case c.LeaseCheck < 10*time.Millisecond:
		return fmt.Errorf("TRELLIS_EDGE_LEASE_CHECK=%s: must be at least 10ms", c.LeaseCheck)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("TRELLIS_EDGE_ALLOWED_ORIGINS: %q is not an origin like https://play.example.com", o)
		}
	}
	if c.ID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "edge"
		}
		c.ID = host + "-" + uuid.NewString()[:8]
	}
	return nil
}

func validHostPort(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil
}

// withDefaults fills zero fields from their default tags, so a Config
// literal in a test or a caller that skipped the environment still works.
// AdminListen (empty: no admin listener), MaxSessionsPerUser and
// MaxConnections (0: no limit) are tagged keepzero and left alone.
func (c Config) withDefaults() Config {
	config.SetDefaults(&c)
	return c
}
