package demogame

import (
	"flag"
	"log/slog"
	"time"

	"github.com/trellis-mud/trellis/internal/config"
)

// Config says which telnet options the demo game offers and how it behaves.
// The zero value is a full-featured game: every option offered, login on.
type Config struct {
	// Name is the MUD's name in the banner and in MSSP.
	Name string `default:"Trellis Demo"`

	// Each No* switch stops the server from offering that option, and makes
	// it refuse the option if the client asks for it. Tests use them to
	// check that a client copes with a game that lacks the option.
	NoEcho, NoSGA, NoTTYPE, NoNAWS, NoCharset, NoEOR, NoGMCP, NoMSDP, NoMSSP, NoMCCP2 bool
	// NoNewEnviron stops the DO NEW-ENVIRON offer (MNES: the player's IP).
	NoNewEnviron bool
	// MXP offers MXP (WILL MXP), which real servers offer but is off here
	// by default so the other tests meet the same negotiation as before;
	// see mxp.go.
	MXP bool

	// Quiet keeps arrivals and departures to the player who made them:
	// nobody else is told. The bench logs a thousand players in at once to
	// measure idle sessions, and every arrival told to everyone online
	// made that an O(n²) storm of output still draining when memory was
	// read. "say" still reaches the others.
	Quiet bool

	// Bench turns the game into an echo server for measurements: no
	// negotiation, no login, every received line is sent straight back
	// (its exact bytes plus CR LF). "flood <n> [bytes]" still works.
	Bench bool

	// NegotiationWait is how long a new connection waits for the client to
	// answer the offers before the banner is shown. The wait ends early
	// once every offer is answered. Zero means the default; a negative
	// value means no wait at all.
	NegotiationWait time.Duration `default:"200ms"`

	// WriteTimeout bounds one write to a client. A client that does not
	// read for this long is disconnected, so a stuck player cannot hold up
	// the others. Zero or negative means the default.
	WriteTimeout time.Duration `default:"10s"`

	// TLSCertFile and TLSKeyFile (PEM) make the listener speak TLS; both
	// or neither.
	TLSCertFile string
	TLSKeyFile  string
	// ProxyProtocol requires a PROXY protocol header (v1 or v2) before
	// anything else on each connection and takes the player's address from
	// it (what "who" shows, unless NEW-ENVIRON says otherwise). A
	// connection without one is closed.
	ProxyProtocol bool
	// HandshakeTimeout bounds reading the PROXY header and the TLS
	// handshake, each.
	HandshakeTimeout time.Duration `default:"5s"`

	// Logger receives connection and login events. Default slog.Default().
	Logger *slog.Logger `ignored:"true"`
}

// Defaults returns the zero Config with its defaults filled in (the
// default tags above, in envconfig's syntax, are their one statement).
func Defaults() Config {
	var c Config
	config.SetDefaults(&c)
	return c
}

// RegisterFlags binds the fields of c to command-line flags on fs:
// -name, -bench, -quiet, -negotiation-wait, -mxp, and -no-echo ... -no-new-environ.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	def := Defaults()
	fs.StringVar(&c.Name, "name", def.Name, "MUD name shown in the banner and MSSP")
	fs.BoolVar(&c.Bench, "bench", false, "echo server for benchmarks: no negotiation, no login, every line echoed")
	fs.DurationVar(&c.NegotiationWait, "negotiation-wait", def.NegotiationWait, "how long to wait for option answers before the banner")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", def.WriteTimeout, "disconnect a client that does not read for this long")
	fs.BoolVar(&c.Quiet, "quiet", false, "do not tell other players of arrivals and departures (the bench's logged-in idle sessions)")
	fs.BoolVar(&c.MXP, "mxp", false, "offer MXP: look shows an exit link and a coloured word")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM certificate: serve TLS (with -tls-key)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key of -tls-cert")
	fs.BoolVar(&c.ProxyProtocol, "proxy-protocol", false, "require a PROXY protocol v1/v2 header and take the player's address from it")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", def.HandshakeTimeout, "bound on the PROXY header read and the TLS handshake")
	for _, f := range []struct {
		p    *bool
		name string
		what string
	}{
		{&c.NoEcho, "no-echo", "ECHO (password masking)"},
		{&c.NoSGA, "no-sga", "SGA (suppress go-ahead)"},
		{&c.NoTTYPE, "no-ttype", "TTYPE / MTTS"},
		{&c.NoNAWS, "no-naws", "NAWS (window size)"},
		{&c.NoCharset, "no-charset", "CHARSET"},
		{&c.NoEOR, "no-eor", "EOR prompt marks"},
		{&c.NoGMCP, "no-gmcp", "GMCP"},
		{&c.NoMSDP, "no-msdp", "MSDP"},
		{&c.NoMSSP, "no-mssp", "MSSP"},
		{&c.NoMCCP2, "no-mccp2", "MCCP2 compression"},
		{&c.NoNewEnviron, "no-new-environ", "NEW-ENVIRON / MNES"},
	} {
		fs.BoolVar(f.p, f.name, false, "do not offer "+f.what)
	}
}

// withDefaults returns c with zero fields filled in.
func (c Config) withDefaults() Config {
	c.WriteTimeout = max(c.WriteTimeout, 0) // negative: the default too
	c.HandshakeTimeout = max(c.HandshakeTimeout, 0)
	config.SetDefaults(&c)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// offersUs reports whether the server may enable opt on its own side.
// ECHO is deliberately absent: it is only switched on around the password
// prompt, never because a client asked for it.
func (c *Config) offersUs(opt byte) bool {
	if c.Bench {
		return false
	}
	switch opt {
	case optSGA:
		return !c.NoSGA
	case optEOR:
		return !c.NoEOR
	case optGMCP:
		return !c.NoGMCP
	case optMSDP:
		return !c.NoMSDP
	case optMSSP:
		return !c.NoMSSP
	case optMCCP2:
		return !c.NoMCCP2
	case optMXP:
		return c.MXP
	}
	return false
}

// offersHim reports whether the server wants the client to enable opt.
func (c *Config) offersHim(opt byte) bool {
	if c.Bench {
		return false
	}
	switch opt {
	case optTTYPE:
		return !c.NoTTYPE
	case optNAWS:
		return !c.NoNAWS
	case optCHARSET:
		return !c.NoCharset
	case optNEWENVIRON:
		return !c.NoNewEnviron
	}
	return false
}
