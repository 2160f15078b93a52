package worker

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/internal/config"
	"github.com/trellis-mud/trellis/internal/dialguard"
)

// Config is a worker's configuration, read from the environment with the
// prefix TRELLIS_WORKER_ (config.Process("TRELLIS_WORKER", &cfg)). Each
// default is stated once, in its tag; zero fields take it when the Config
// reaches New (SetDefaults), so a Config literal in a test needs only the
// fields it cares about. Variable names come from split_words, never from an
// envconfig tag, whose bare-name fallback would let a stray NAME configure
// the worker.
type Config struct {
	Name          string        `split_words:"true" desc:"consumer name in the control group; stable across restarts (default: hostname)"`
	AdminListen   string        `split_words:"true" keepzero:"true" default:"127.0.0.1:9091" desc:"address of /metrics, /healthz and /readyz (empty: none)"`
	MaxSessions   int           `split_words:"true" default:"5000" desc:"sessions this worker runs at most; it stops pulling work when full"`
	IdleGrace     time.Duration `split_words:"true" default:"10m" desc:"how long a session with no viewer is kept"`
	DrainTimeout  time.Duration `split_words:"true" default:"30s" desc:"how long a draining worker lets sessions run before closing them"`
	LeaseTTL      time.Duration `split_words:"true" default:"10s" desc:"session lease TTL; renewed every TTL/3"`
	DialTimeout   time.Duration `split_words:"true" default:"10s" desc:"timeout of a dial to a game: TCP connect, PROXY header and TLS handshake together"`
	ClaimMinIdle  time.Duration `split_words:"true" default:"15s" desc:"control entries pending this long with another worker are claimed"`
	MaxDeliveries int           `split_words:"true" default:"5" desc:"attempts before a control entry is dead-lettered"`
	FlushDelay    time.Duration `split_words:"true" default:"0s" desc:"extra time output is coalesced before a write (0: write as soon as the previous write returned)"`
	FlushBytes    int           `split_words:"true" default:"16384" desc:"output of one session that triggers a write at once"`
	SessionBuffer int           `split_words:"true" default:"1048576" desc:"bytes of output kept per session while Redis is away (oldest dropped)"`
	// Pprof is off by default: profiles show what sessions hold (names,
	// the text in flight), so they are for an operator on a private admin
	// listener, not for whoever can reach /metrics.
	Pprof bool `split_words:"true" default:"false" desc:"also serve Go's /debug/pprof/ profiles (heap, goroutine, CPU) on the admin listener"`
	// RefuseCompression answers MCCP2 offers with DONT: compression saves
	// bandwidth to distant games but costs about 40 KiB per session.
	RefuseCompression bool          `split_words:"true" default:"false" desc:"refuse MCCP2 compression from games (saves ~40 KiB per session; for games on the workers' network)"`
	TranscriptTTL     time.Duration `split_words:"true" default:"24h" desc:"how long the output stream of an ended session is kept"`

	RestartIntensity int           `split_words:"true" default:"5" desc:"game connection failures within RESTART_PERIOD before a session gives up"`
	RestartPeriod    time.Duration `split_words:"true" default:"1m" desc:"window of RESTART_INTENSITY"`
	BackoffMin       time.Duration `split_words:"true" default:"500ms" desc:"first redial delay"`
	BackoffMax       time.Duration `split_words:"true" default:"30s" desc:"longest redial delay"`

	ClientName    string        `split_words:"true" default:"Trellis" desc:"client name sent to games (TTYPE, GMCP Core.Hello, MNES)"`
	ClientVersion string        `split_words:"true" default:"1.0" desc:"client version sent to games"`
	ViewerCheck   time.Duration `split_words:"true" default:"10s" desc:"how often viewers held by dead edges are forgotten"`
	CloseTimeout  time.Duration `split_words:"true" default:"5s" desc:"how long a stopped session has to close before its socket is forced shut"`

	// AllowNetworks opens ranges the dial guard refuses by default
	// (loopback, private, link-local...) to games; Trellis's own Redis and
	// admin endpoints stay refused inside them.
	AllowNetworks []string `split_words:"true" desc:"comma-separated CIDRs or IPs games may be dialled at although loopback, private or link-local (default: public addresses only)"`
	// GMCPMaxPackages and GMCPMaxBytes bound the GMCP state kept per
	// session (the last message of each package, replayed on attach).
	GMCPMaxPackages int `split_words:"true" default:"64" desc:"GMCP packages whose last message is kept per session; past it the oldest is forgotten"`
	GMCPMaxBytes    int `split_words:"true" default:"131072" desc:"bytes of GMCP state kept per session; past it the oldest packages are forgotten"`
	// MSDPMaxVars and MSDPMaxBytes bound the MSDP state kept per session
	// (the last value of each variable, replayed on attach) the same way.
	MSDPMaxVars  int `split_words:"true" default:"128" desc:"MSDP variables whose last value is kept per session; past it the oldest is forgotten"`
	MSDPMaxBytes int `split_words:"true" default:"65536" desc:"bytes of MSDP state kept per session; past it the oldest variables are forgotten"`
	// The MXP decoder's bounds, for games that opted in to MXP (see
	// worker/mxp.Config; the same defaults).
	MXPMaxTag          int `split_words:"true" default:"4096" desc:"bytes of one MXP tag (between < and >); a longer tag is dropped"`
	MXPMaxDepth        int `split_words:"true" default:"32" desc:"MXP tags open at once; tags past it are dropped"`
	MXPMaxElementBytes int `split_words:"true" default:"16384" desc:"bytes of all of a session's MXP <!ELEMENT> definitions; later ones are ignored"`
	MXPMaxEscape       int `split_words:"true" default:"8192" desc:"bytes of one incomplete escape sequence (an OSC from the game) held across reads; a longer one is dropped"`
	// TypeaheadHold bounds how long a line typed before the game answered
	// the previous one waits for the game's next prompt to show whether it
	// was a password, before it is recorded redacted.
	TypeaheadHold time.Duration `split_words:"true" default:"5s" desc:"how long a typed-ahead line's transcript record waits for the next prompt (then it is recorded redacted)"`
	// MaxSubneg caps one telnet subnegotiation (a GMCP message, say) as
	// received; longer blocks are dropped.
	MaxSubneg int `split_words:"true" default:"65536" desc:"bytes of one telnet subnegotiation (GMCP, MSSP...) kept; longer ones are dropped"`
	// GameWriteQueue bounds bytes waiting for a game that does not read;
	// past it the connection is dropped and redialled.
	GameWriteQueue int `split_words:"true" default:"262144" desc:"bytes queued for a game that does not read before its connection is dropped"`
	// OutputRate bounds how fast one session turns game bytes into output
	// (-1: unlimited). Past it the session stops reading its game, so TCP
	// flow control slows the game: a zip bomb or a flood then costs the
	// worker, the edge and Redis a bounded share of CPU, not whatever the
	// game can push, and its neighbours' echoes stay quick.
	OutputRate int `split_words:"true" default:"1048576" desc:"bytes of output per second one session may produce (-1: unlimited); past it the game is read more slowly"`
}

// Defaults returns the Config of an empty environment, but for Name and
// AdminListen: the default tags are the one statement of each default.
func Defaults() Config {
	var c Config
	config.SetDefaults(&c)
	return c
}

// SetDefaults fills zero fields from their default tags (AdminListen, tagged
// keepzero, is left alone: empty means no admin server), and Name with the
// host name.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Name = h
		} else {
			c.Name = "worker"
		}
	}
	config.SetDefaults(c)
}

// Validate reports the first setting that cannot work, naming its
// environment variable and the bad value.
func (c *Config) Validate() error {
	type check struct {
		bad  bool
		name string
		val  any
		want string
	}
	for _, k := range []check{
		{c.MaxSessions < 1, "MAX_SESSIONS", c.MaxSessions, "at least 1"},
		{c.IdleGrace < 0, "IDLE_GRACE", c.IdleGrace, "0 or more"},
		{c.DrainTimeout < 0, "DRAIN_TIMEOUT", c.DrainTimeout, "0 or more"},
		{c.LeaseTTL < time.Second, "LEASE_TTL", c.LeaseTTL, "at least 1s"},
		{c.DialTimeout <= 0, "DIAL_TIMEOUT", c.DialTimeout, "positive"},
		{c.ClaimMinIdle <= 0, "CLAIM_MIN_IDLE", c.ClaimMinIdle, "positive"},
		{c.MaxDeliveries < 1, "MAX_DELIVERIES", c.MaxDeliveries, "at least 1"},
		{c.FlushDelay < 0 || c.FlushDelay > time.Second, "FLUSH_DELAY", c.FlushDelay, "between 0 and 1s"},
		{c.FlushBytes < 512, "FLUSH_BYTES", c.FlushBytes, "at least 512"},
		{c.SessionBuffer < backpressureFactor*c.FlushBytes, "SESSION_BUFFER", c.SessionBuffer, fmt.Sprintf("at least %d times FLUSH_BYTES (%d)", backpressureFactor, backpressureFactor*c.FlushBytes)},
		{c.TranscriptTTL < time.Second, "TRANSCRIPT_TTL", c.TranscriptTTL, "at least 1s"},
		{c.RestartIntensity < 0, "RESTART_INTENSITY", c.RestartIntensity, "0 or more"},
		{c.RestartPeriod <= 0, "RESTART_PERIOD", c.RestartPeriod, "positive"},
		{c.BackoffMin <= 0, "BACKOFF_MIN", c.BackoffMin, "positive"},
		{c.BackoffMax < c.BackoffMin, "BACKOFF_MAX", c.BackoffMax, fmt.Sprintf("at least BACKOFF_MIN (%s)", c.BackoffMin)},
		{c.ViewerCheck <= 0, "VIEWER_CHECK", c.ViewerCheck, "positive"},
		{c.CloseTimeout <= 0, "CLOSE_TIMEOUT", c.CloseTimeout, "positive"},
		{c.GMCPMaxPackages < 1, "GMCP_MAX_PACKAGES", c.GMCPMaxPackages, "at least 1"},
		{c.MaxSubneg < 1024 || c.MaxSubneg > 16<<20, "MAX_SUBNEG", c.MaxSubneg, "between 1024 and 16777216"},
		{c.GMCPMaxBytes < c.MaxSubneg, "GMCP_MAX_BYTES", c.GMCPMaxBytes, fmt.Sprintf("at least MAX_SUBNEG (%d: the largest GMCP message)", c.MaxSubneg)},
		{c.MSDPMaxVars < 1, "MSDP_MAX_VARS", c.MSDPMaxVars, "at least 1"},
		{c.MSDPMaxBytes < 1024, "MSDP_MAX_BYTES", c.MSDPMaxBytes, "at least 1024"},
		{c.GameWriteQueue < 4096, "GAME_WRITE_QUEUE", c.GameWriteQueue, "at least 4096"},
		{c.MXPMaxTag < 256, "MXP_MAX_TAG", c.MXPMaxTag, "at least 256"},
		{c.MXPMaxDepth < 1, "MXP_MAX_DEPTH", c.MXPMaxDepth, "at least 1"},
		{c.MXPMaxElementBytes < 1024, "MXP_MAX_ELEMENT_BYTES", c.MXPMaxElementBytes, "at least 1024"},
		{c.MXPMaxEscape < 1024, "MXP_MAX_ESCAPE", c.MXPMaxEscape, "at least 1024"},
		{c.OutputRate < -1 || (c.OutputRate >= 0 && c.OutputRate < 4096), "OUTPUT_RATE", c.OutputRate, "-1 (unlimited) or at least 4096"},
		{c.TypeaheadHold < 100*time.Millisecond || c.TypeaheadHold > time.Minute, "TYPEAHEAD_HOLD", c.TypeaheadHold, "between 100ms and 1m"},
	} {
		if k.bad {
			return fmt.Errorf("TRELLIS_WORKER_%s=%v: must be %s", k.name, k.val, k.want)
		}
	}
	if c.Name == "" {
		return fmt.Errorf("TRELLIS_WORKER_NAME is empty")
	}
	if _, err := dialguard.ParsePrefixes(c.AllowNetworks); err != nil {
		return fmt.Errorf("TRELLIS_WORKER_ALLOW_NETWORKS=%s: %w", strings.Join(c.AllowNetworks, ","), err)
	}
	return nil
}
