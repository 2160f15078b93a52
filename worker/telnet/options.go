package telnet

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// Options configure an Engine for one game connection. The zero value is
// usable: defaults are filled in by New.
type Options struct {
	// ClientName identifies Trellis to the game: TTYPE cycle step 1 (sent in
	// upper case, as TTYPE names are case-insensitive), the GMCP Core.Hello
	// client and the MNES CLIENT_NAME. Default "Trellis".
	ClientName string
	// ClientVersion is the Core.Hello version and MNES CLIENT_VERSION.
	ClientVersion string
	// TerminalType is TTYPE cycle step 2. Default "XTERM-256COLOR".
	TerminalType string
	// Charset is the game's legacy charset, used when the game does not
	// negotiate UTF-8: "" or "utf-8" for UTF-8, or a single-byte charset name
	// known to golang.org/x/text ("latin-1", "iso-8859-1", "cp437",
	// "cp1252", "koi8-r"...). New rejects unknown and multi-byte charsets.
	Charset string
	// MNES says the game opted in to NEW-ENVIRON / MNES. Without it, DO
	// NEW-ENVIRON is answered WONT so no player data leaves Trellis.
	MNES bool
	// Env holds MNES variables (for example IPADDRESS), sent only when MNES
	// is true. CLIENT_NAME, CLIENT_VERSION, MTTS and CHARSET are filled in
	// automatically; an entry here overrides them.
	Env map[string]string
	// GMCPSupports is the Core.Supports.Set list sent after GMCP is agreed.
	// Default {"Char 1", "Char.Vitals 1", "Room 1", "Comm 1"}.
	GMCPSupports []string
	// Width and Height are the initial NAWS window size. Default 80x24.
	Width, Height int
	// MaxSubneg caps a subnegotiation, counted in bytes as received (an
	// escaped IAC IAC counts two). Larger blocks are dropped. Default 64 KiB.
	MaxSubneg int
	// NoCompression refuses MCCP2. Compression saves bandwidth to distant
	// games but costs about 40 KiB of inflater state per session; games
	// on the same network as the workers are better served without it.
	NoCompression bool
	// SliceBytes is the most telnet-stream bytes one DecodeSlice call
	// parses, counted after MCCP2 inflation: the bytes the telnet parser
	// sees, plain or inflated. It bounds the memory and time one call
	// spends, so a flood or a zip bomb is worked through in slices between
	// which the caller can deliver events and apply backpressure. An open
	// MCCP2 stream can overrun it by at most maxInflateOvershoot; see
	// DecodeSlice. Default 16 KiB.
	SliceBytes int
	// NoMSDP refuses MSDP (WILL MSDP answered DONT) and leaves GMCP
	// messages of package MSDP as plain GMCP events, for a game whose MSDP
	// is broken or whose players are better served by its GMCP.
	NoMSDP bool
	// KeepControls lets Line send C0 control characters and DEL, which it
	// otherwise drops. It is a per-game override for games that want them
	// (an ESC-driven editor, say); NUL is dropped even then.
	KeepControls bool
	// MXP accepts MXP (option 91) when the game offers it (WILL or DO
	// MXP), for a game whose registry entry opted in; otherwise it is
	// refused. The engine only negotiates it and reports EventMXP; the
	// markup is decoded by package worker/mxp.
	MXP bool
	// TLS says the connection to the game is TLS: MTTS then sets bit 2048
	// (SSL), so the game knows the link is encrypted.
	TLS bool
	// ScreenReader says the player reads the game through a screen reader
	// (the page's screen-reader mode, at the attach that started this
	// connection): MTTS then sets bit 64, so a game can drop decorative
	// output.
	ScreenReader bool
}

// DefaultGMCPSupports is the Core.Supports.Set list used when
// Options.GMCPSupports is nil.
var DefaultGMCPSupports = []string{"Char 1", "Char.Vitals 1", "Room 1", "Comm 1"}

const (
	defaultClientName   = "Trellis"
	defaultTerminalType = "XTERM-256COLOR"
	defaultMaxSubneg    = 64 << 10
	defaultSliceBytes   = 16 << 10
	maxWindowSize       = 0xFFFF
)

// withDefaults returns a copy of o with defaults filled in and caller-owned
// containers copied, so later changes by the caller cannot reach the engine.
func (o Options) withDefaults() Options {
	if o.ClientName == "" {
		o.ClientName = defaultClientName
	}
	if o.TerminalType == "" {
		o.TerminalType = defaultTerminalType
	}
	if o.GMCPSupports == nil {
		o.GMCPSupports = DefaultGMCPSupports
	}
	o.GMCPSupports = slices.Clone(o.GMCPSupports)
	if o.Env != nil {
		env := make(map[string]string, len(o.Env))
		for k, v := range o.Env {
			env[k] = v
		}
		o.Env = env
	}
	if o.Width <= 0 {
		o.Width = 80
	}
	if o.Height <= 0 {
		o.Height = 24
	}
	o.Width, o.Height = clampSize(o.Width), clampSize(o.Height)
	if o.MaxSubneg <= 0 {
		o.MaxSubneg = defaultMaxSubneg
	}
	if o.SliceBytes <= 0 {
		o.SliceBytes = defaultSliceBytes
	}
	return o
}

func clampSize(n int) int {
	return max(0, min(n, maxWindowSize))
}

// charset is a resolved character set: nil cm means UTF-8.
type charset struct {
	name string           // canonical name, announced in MNES CHARSET
	cm   *charmap.Charmap // single-byte legacy charset, nil for UTF-8
}

var utf8Charset = charset{name: "UTF-8"}

// isUTF8Name reports whether name spells UTF-8 (utf-8, UTF8, ...).
func isUTF8Name(name string) bool {
	return strings.EqualFold(name, "utf-8") || strings.EqualFold(name, "utf8")
}

// lookupCharset resolves a charset name. IANA names and aliases come first
// (so "latin1" is ISO-8859-1, not the WHATWG reading windows-1252), then the
// WHATWG names (cp1252), then the name without hyphens (latin-1).
func lookupCharset(name string) (charset, error) {
	name = strings.TrimSpace(name)
	if name == "" || isUTF8Name(name) {
		return utf8Charset, nil
	}
	enc := lookupEncoding(name)
	if enc == nil {
		enc = lookupEncoding(strings.ReplaceAll(name, "-", ""))
	}
	if enc == nil {
		return charset{}, fmt.Errorf("unknown charset %q", name)
	}
	cm, ok := enc.(*charmap.Charmap)
	if !ok {
		return charset{}, fmt.Errorf("charset %q: only single-byte charsets are supported", name)
	}
	// Line endings and IAC are found at the byte level, so the charset must
	// agree with ASCII on the low half (this rules out EBCDIC).
	for b := range 0x80 {
		if cm.DecodeByte(byte(b)) != rune(b) {
			return charset{}, fmt.Errorf("charset %q is not ASCII-compatible", name)
		}
	}
	canonical, err := ianaindex.MIME.Name(enc)
	if err != nil {
		if canonical, err = ianaindex.IANA.Name(enc); err != nil {
			canonical = cm.String()
		}
	}
	return charset{name: canonical, cm: cm}, nil
}

func lookupEncoding(name string) encoding.Encoding {
	if enc, err := ianaindex.IANA.Encoding(name); err == nil && enc != nil {
		return enc
	}
	if enc, err := htmlindex.Get(name); err == nil && enc != nil {
		return enc
	}
	return nil
}
