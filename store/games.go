package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/encoding/ianaindex"
)

// Game is one entry of the registry: where a game lives and how to talk to
// it. Browsers name a game by ID only; host and port never come from them.
type Game struct {
	ID          string `json:"id" yaml:"id"`
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	Host        string `json:"host" yaml:"host"`
	Port        int    `json:"port" yaml:"port"`

	// TLS and PROXY: how the worker's connection to the game is made.
	//
	// TLS dials the game over TLS. Its certificate is checked against the
	// system roots and Host, unless one of the three below says otherwise
	// (at most one may be set, and only with TLS).
	TLS bool `json:"tls,omitempty" yaml:"tls,omitempty"`
	// TLSInsecure skips certificate verification (self-signed games that
	// publish no pin): the link is encrypted but not authenticated.
	TLSInsecure bool `json:"tls_insecure,omitempty" yaml:"tls_insecure,omitempty"`
	// TLSCAFile is a PEM file of CA certificates, on the worker's host,
	// that replaces the system roots for this game; Host is still checked.
	TLSCAFile string `json:"tls_ca_file,omitempty" yaml:"tls_ca_file,omitempty"`
	// TLSPinSHA256 pins the game's certificate by the SHA-256 of its
	// SubjectPublicKeyInfo (base64 or hex), as Grapevine pins self-signed
	// game certificates. The pin replaces chain verification: the
	// certificate's issuer, names and dates are not checked, only its key.
	TLSPinSHA256 string `json:"tls_pin_sha256,omitempty" yaml:"tls_pin_sha256,omitempty"`
	// ProxyProtocol sends a PROXY protocol header ("v1" text, "v2" binary)
	// with the player's IP as the first bytes of the connection, for a
	// game behind which NEW-ENVIRON is not implemented. Empty: none. Only
	// a game that expects it may have it: to any other game the header is
	// garbage at its login prompt.
	ProxyProtocol string `json:"proxy_protocol,omitempty" yaml:"proxy_protocol,omitempty"`

	// Charset is the game's legacy encoding when it does not speak UTF-8
	// (an IANA name or alias: "latin1", "cp437", "windows-1252").
	Charset string `json:"charset,omitempty" yaml:"charset,omitempty"`
	// MNES opts in to sending the player's IP and client name by
	// NEW-ENVIRON, so the game's bans keep working.
	MNES bool `json:"mnes,omitempty" yaml:"mnes,omitempty"`
	// PasswordPrompt is a regular expression (RE2) matched against the
	// last, unfinished line the game printed; input typed at a prompt it
	// matches is recorded redacted even if the game never turns echo off.
	// Empty: DefaultPasswordPrompt.
	PasswordPrompt string `json:"password_prompt,omitempty" yaml:"password_prompt,omitempty"`
	// KeepControls sends C0 control characters typed in the browser to the
	// game; by default every one but TAB is dropped from input.
	KeepControls bool `json:"keep_controls,omitempty" yaml:"keep_controls,omitempty"`

	// MXP opts in to MXP (telnet option 91): the worker agrees to it when
	// the game offers it and turns the game's MXP safe subset into links
	// and colours (package worker/mxp). Off, MXP is refused.
	MXP bool `json:"mxp,omitempty" yaml:"mxp,omitempty"`
	// The player's client (see gameclient.go). Echo overrides the guess
	// of what the game's WILL ECHO means: "password" (every line typed
	// while it echoes is a secret), "character" (a character-mode server
	// that echoes for the whole session: only lines at a password prompt
	// are secrets) or "auto"/empty (guess). Vitals maps the game's GMCP or
	// MSDP values to the page's gauges when the page cannot guess them.
	Echo   string      `json:"echo,omitempty" yaml:"echo,omitempty"`
	Vitals []VitalSpec `json:"vitals,omitempty" yaml:"vitals,omitempty"`
}

// DefaultPasswordPrompt recognises the prompts games print before a
// password or passphrase ("Password:", "Enter your passphrase?",
// "password for alice: ").
const DefaultPasswordPrompt = `(?i)\b(pass(word|phrase|wd)?|pin)\b[^\n]{0,40}[:?>]\s*$`

// maxPasswordPrompt bounds Game.PasswordPrompt: the pattern runs against
// every prompt the game prints.
const maxPasswordPrompt = 256

// Addr is the game's host:port.
func (g Game) Addr() string { return net.JoinHostPort(g.Host, fmt.Sprint(g.Port)) }

var (
	gameIDPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// ErrUnknownGame is returned for a game id the registry does not hold.
var ErrUnknownGame = errors.New("unknown game")

// ErrGameExists is returned by AddGame for an id already registered.
var ErrGameExists = errors.New("game already registered")

// Validate checks every field and reports all problems at once.
func (g Game) Validate() error {
	var errs []error
	if !gameIDPattern.MatchString(g.ID) {
		errs = append(errs, fmt.Errorf("id %q: want 1-32 of a-z 0-9 _ -, starting with a letter or digit", g.ID))
	}
	if strings.TrimSpace(g.Name) == "" || len(g.Name) > 80 {
		errs = append(errs, fmt.Errorf("name %q: want 1-80 characters", g.Name))
	}
	if len(g.Description) > 2000 {
		errs = append(errs, fmt.Errorf("description: %d characters, want at most 2000", len(g.Description)))
	}
	if net.ParseIP(g.Host) == nil && (len(g.Host) > 253 || !hostnamePattern.MatchString(g.Host)) {
		errs = append(errs, fmt.Errorf("host %q: not a hostname or IP address", g.Host))
	}
	if g.Port < 1 || g.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1-65535", g.Port))
	}
	errs = append(errs, g.validateLink()...)
	if g.Charset != "" {
		if enc, err := ianaindex.IANA.Encoding(g.Charset); err != nil || enc == nil {
			errs = append(errs, fmt.Errorf("charset %q: not a known IANA charset name", g.Charset))
		}
	}
	if len(g.PasswordPrompt) > maxPasswordPrompt {
		errs = append(errs, fmt.Errorf("password_prompt: %d bytes, want at most %d", len(g.PasswordPrompt), maxPasswordPrompt))
	} else if g.PasswordPrompt != "" {
		if _, err := regexp.Compile(g.PasswordPrompt); err != nil {
			errs = append(errs, fmt.Errorf("password_prompt %q: not an RE2 regular expression: %w", g.PasswordPrompt, err))
		}
	}
	errs = append(errs, g.validateClient()...)
	if len(errs) > 0 {
		return fmt.Errorf("game %q: %w", g.ID, errors.Join(errs...))
	}
	return nil
}

// Bounds of the TLS fields: a path is read by the worker, not stored
// content; a pin is 32 bytes in whichever spelling.
const (
	maxCAFilePath = 1024
	maxPinText    = 128
)

// validateLink checks the TLS and PROXY fields and how they combine.
func (g Game) validateLink() []error {
	var errs []error
	set := 0
	for _, f := range []struct {
		on   bool
		name string
	}{{g.TLSInsecure, "tls_insecure"}, {g.TLSCAFile != "", "tls_ca_file"}, {g.TLSPinSHA256 != "", "tls_pin_sha256"}} {
		if !f.on {
			continue
		}
		set++
		if !g.TLS {
			errs = append(errs, fmt.Errorf("%s without tls", f.name))
		}
	}
	if set > 1 {
		errs = append(errs, errors.New("tls_insecure, tls_ca_file and tls_pin_sha256 exclude each other: set at most one "+
			"(a pin or a CA file verifies the certificate; insecure verifies nothing)"))
	}
	if f := g.TLSCAFile; f != "" {
		switch {
		case len(f) > maxCAFilePath:
			errs = append(errs, fmt.Errorf("tls_ca_file: %d bytes, want at most %d", len(f), maxCAFilePath))
		case !strings.HasPrefix(f, "/") || strings.ContainsAny(f, "\x00\n\r"):
			errs = append(errs, fmt.Errorf("tls_ca_file %q: want an absolute path to a PEM file on the workers' hosts", f))
		}
	}
	if g.TLSPinSHA256 != "" {
		if _, err := ParsePin(g.TLSPinSHA256); err != nil {
			errs = append(errs, fmt.Errorf("tls_pin_sha256: %w", err))
		}
	}
	switch g.ProxyProtocol {
	case "", "v1", "v2":
	default:
		errs = append(errs, fmt.Errorf("proxy_protocol %.20q: want v1, v2 or empty (off)", g.ProxyProtocol))
	}
	return errs
}

// ParsePin decodes a TLS pin: the SHA-256 of a certificate's
// SubjectPublicKeyInfo, in base64 (standard or URL alphabet, padded or
// not) or hex (colons allowed, as openssl prints fingerprints), with an
// optional "sha256/" prefix.
func ParsePin(s string) ([]byte, error) {
	if len(s) > maxPinText {
		return nil, fmt.Errorf("%d characters, want a SHA-256 in base64 (44) or hex (64)", len(s))
	}
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "sha256//"), "sha256/")
	if h := strings.ReplaceAll(t, ":", ""); len(h) == 2*sha256.Size {
		if b, err := hex.DecodeString(h); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil && len(b) == sha256.Size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%.80q is not a SHA-256 (32 bytes) in base64 or hex", s)
}

// PutGame adds or replaces a game.
func (s *Store) PutGame(ctx context.Context, g Game) error {
	if err := g.Validate(); err != nil {
		return err
	}
	b, _ := json.Marshal(g)
	if err := s.rdb.HSet(ctx, s.ks.games(), g.ID, b).Err(); err != nil {
		return fmt.Errorf("put game %s: %w", g.ID, err)
	}
	return nil
}

// AddGame registers a new game; it fails with ErrGameExists for a known id.
func (s *Store) AddGame(ctx context.Context, g Game) error {
	if err := g.Validate(); err != nil {
		return err
	}
	b, _ := json.Marshal(g)
	ok, err := s.rdb.HSetNX(ctx, s.ks.games(), g.ID, b).Result()
	if err != nil {
		return fmt.Errorf("add game %s: %w", g.ID, err)
	}
	if !ok {
		return fmt.Errorf("add game %s: %w", g.ID, ErrGameExists)
	}
	return nil
}

// UpdateGame replaces a registered game; it fails with ErrUnknownGame if
// the id is not registered.
func (s *Store) UpdateGame(ctx context.Context, g Game) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if _, err := s.GetGame(ctx, g.ID); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return s.PutGame(ctx, g)
}

// RemoveGame deletes a game from the registry. Sessions already running
// keep their connection.
func (s *Store) RemoveGame(ctx context.Context, id string) error {
	n, err := s.rdb.HDel(ctx, s.ks.games(), id).Result()
	if err != nil {
		return fmt.Errorf("remove game %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("remove game %s: %w", id, ErrUnknownGame)
	}
	return nil
}

// GetGame looks a game up by id.
func (s *Store) GetGame(ctx context.Context, id string) (Game, error) {
	if !gameIDPattern.MatchString(id) {
		return Game{}, fmt.Errorf("game %.40q: %w", id, ErrUnknownGame)
	}
	b, err := s.rdb.HGet(ctx, s.ks.games(), id).Bytes()
	if err != nil {
		if isNil(err) {
			return Game{}, fmt.Errorf("game %s: %w", id, ErrUnknownGame)
		}
		return Game{}, fmt.Errorf("get game %s: %w", id, err)
	}
	var g Game
	if err := json.Unmarshal(b, &g); err != nil {
		return Game{}, fmt.Errorf("game %s: corrupt registry entry: %w", id, err)
	}
	return g, nil
}

// ListGames returns every registered game, ordered by id.
func (s *Store) ListGames(ctx context.Context) ([]Game, error) {
	m, err := s.rdb.HGetAll(ctx, s.ks.games()).Result()
	if err != nil {
		return nil, fmt.Errorf("list games: %w", err)
	}
	games := make([]Game, 0, len(m))
	for id, v := range m {
		var g Game
		if err := json.Unmarshal([]byte(v), &g); err != nil {
			return nil, fmt.Errorf("game %s: corrupt registry entry: %w", id, err)
		}
		games = append(games, g)
	}
	sort.Slice(games, func(i, j int) bool { return games[i].ID < games[j].ID })
	return games, nil
}

// ParseGames reads a list of games from JSON (an array, or an object with
// a "games" array) or YAML (the same shapes), and validates every entry.
// It reports every invalid entry, not just the first.
func ParseGames(r io.Reader) ([]Game, error) {
	const maxFile = 4 << 20
	data, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read games: %w", err)
	}
	if len(data) > maxFile {
		return nil, errors.New("games file is larger than 4 MiB")
	}
	// Unknown fields are errors, not silence: a typo such as "tls-insecure"
	// or "charSet" must not import a game without that setting.
	var games []Game
	var wrapped struct {
		Games []Game `json:"games" yaml:"games"`
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("games file is empty")
	case trimmed[0] == '[' || trimmed[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if trimmed[0] == '[' {
			err = dec.Decode(&games)
		} else {
			err = dec.Decode(&wrapped)
			games = wrapped.Games
		}
	default:
		var node yaml.Node
		if err = yaml.Unmarshal(trimmed, &node); err == nil {
			dec := yaml.NewDecoder(bytes.NewReader(trimmed))
			dec.KnownFields(true)
			if len(node.Content) > 0 && node.Content[0].Kind == yaml.MappingNode {
				err = dec.Decode(&wrapped)
				games = wrapped.Games
			} else {
				err = dec.Decode(&games)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parse games: %w", err)
	}
	if len(games) == 0 {
		return nil, errors.New("games file lists no games")
	}
	var errs []error
	seen := make(map[string]bool, len(games))
	for i, g := range games {
		if err := g.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i+1, err))
		}
		if seen[g.ID] {
			errs = append(errs, fmt.Errorf("entry %d: game %q listed twice", i+1, g.ID))
		}
		seen[g.ID] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return games, nil
}

// ImportGames validates every game first and then writes them all, so a bad
// file changes nothing.
func (s *Store) ImportGames(ctx context.Context, r io.Reader) ([]Game, error) {
	games, err := ParseGames(r)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, 2*len(games))
	for _, g := range games {
		b, _ := json.Marshal(g)
		args = append(args, g.ID, b)
	}
	if err := s.rdb.HSet(ctx, s.ks.games(), args...).Err(); err != nil {
		return nil, fmt.Errorf("import %d games: %w", len(games), err)
	}
	return games, nil
}

// SetGameMSSP stores a game's latest MSSP report for ttl (the edge shows
// player counts from it).
func (s *Store) SetGameMSSP(ctx context.Context, game string, mssp map[string][]string, ttl time.Duration) error {
	b, err := json.Marshal(mssp)
	if err != nil {
		return fmt.Errorf("encode mssp of %s: %w", game, err)
	}
	if err := s.rdb.Set(ctx, s.ks.mssp(game), b, ttl).Err(); err != nil {
		return fmt.Errorf("set mssp of %s: %w", game, err)
	}
	return nil
}

// GameMSSP returns a game's latest MSSP report, or nil if none is known.
func (s *Store) GameMSSP(ctx context.Context, game string) (map[string][]string, error) {
	b, err := s.rdb.Get(ctx, s.ks.mssp(game)).Bytes()
	if err != nil {
		if isNil(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get mssp of %s: %w", game, err)
	}
	var m map[string][]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("mssp of %s: %w", game, err)
	}
	return m, nil
}
