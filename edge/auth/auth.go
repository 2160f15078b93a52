package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest secret accepted. RFC 7518 asks HS256 keys to
// be at least as long as the hash output (32 bytes).
const MinSecretLen = 32

// Config is the auth part of the environment, read with the prefix
// TRELLIS_AUTH_. The field name gives the variable's name: an envconfig tag
// would also make envconfig read a bare SECRET, some other program's.
type Config struct {
	Secret string `required:"true" desc:"HS256 secret for tokens and guest cookies (at least 32 bytes)"`
}

// Validate reports a secret that cannot work. It never prints the secret.
func (c Config) Validate() error {
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("TRELLIS_AUTH_SECRET: %d bytes, want at least %d", len(c.Secret), MinSecretLen)
	}
	return nil
}

// Errors returned by Verify. Callers tell the browser "unauthorized" for
// all of them; the distinction is for logs and metrics.
var (
	ErrNoToken     = errors.New("no token")
	ErrExpired     = errors.New("token expired")
	ErrInvalid     = errors.New("token invalid")
	ErrInvalidUser = errors.New("user id not allowed")
)

// userPattern is the alphabet of user ids: letters, digits and a few
// separators, starting with a letter or digit, at most 64 bytes. It keeps
// ids printable in logs and free of the characters Redis keys and telnet
// care about.
var userPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidUser reports whether id is an acceptable user id.
func ValidUser(id string) bool { return userPattern.MatchString(id) }

// Verifier checks tokens and guest cookies against one secret. It is safe
// for concurrent use.
type Verifier struct {
	secret   []byte
	guestKey []byte
	parser   *jwt.Parser
	now      func() time.Time
}

// NewVerifier returns a verifier for secret.
func NewVerifier(secret []byte) (*Verifier, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth secret: %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	v := &Verifier{
		secret: append([]byte(nil), secret...),
		now:    time.Now,
	}
	// Guest cookies use a key derived from the secret, so a cookie value can
	// never be replayed as a token signature or the other way round.
	v.guestKey = mac([]byte(secret), "trellis guest cookie v1")
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second), // clock skew between minter and edge
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

// Verify checks a token and returns its user id.
func (v *Verifier) Verify(token string) (string, error) {
	if token == "" {
		return "", ErrNoToken
	}
	if len(token) > 4096 {
		return "", fmt.Errorf("%w: %d bytes", ErrInvalid, len(token))
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused every other alg; this check
		// keeps the key function safe even if the parser options change.
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("alg %v not allowed", t.Header["alg"])
		}
		return v.secret, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", ErrExpired
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !ValidUser(claims.Subject) || isGuest(claims.Subject) {
		return "", fmt.Errorf("%w: sub %.70q", ErrInvalidUser, claims.Subject)
	}
	return claims.Subject, nil
}

// Mint signs a token for user valid for ttl. It is what `trellis token`
// prints.
func Mint(secret []byte, user string, ttl time.Duration) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("mint token: secret has %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if !ValidUser(user) {
		return "", fmt.Errorf("mint token: user %q: want 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit", user)
	}
	if isGuest(user) {
		return "", fmt.Errorf("mint token: user %q: the %q prefix is reserved for guest cookies", user, guestPrefix)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl %s must be positive", ttl)
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token for %s: %w", user, err)
	}
	return s, nil
}

// guestPrefix starts every guest id. Tokens may not name such an id: a
// session belongs to its (user, game), so a token for "guest-..." would
// hand its holder that guest's game connection.
const guestPrefix = "guest-"

// isGuest reports whether id is in the guests' namespace. Ids compare
// case-sensitively everywhere (Redis keys), but refusing "GUEST-" too keeps
// look-alikes out of logs and admin screens.
func isGuest(id string) bool {
	return len(id) >= len(guestPrefix) && strings.EqualFold(id[:len(guestPrefix)], guestPrefix)
}

// GuestCookie is the name of the guest identity cookie.
const GuestCookie = "trellis_guest"

// guestMaxAge keeps a guest identity for a year of reloads.
const guestMaxAge = 365 * 24 * time.Hour

// NewGuest returns a fresh random guest id ("guest-" and 16 hex digits).
func NewGuest() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return guestPrefix + hex.EncodeToString(b[:])
}

// SignGuest returns the cookie value for a guest id.
func (v *Verifier) SignGuest(id string) string {
	return id + "." + base64.RawURLEncoding.EncodeToString(mac(v.guestKey, id))
}

// VerifyGuest returns the guest id a cookie value carries, or false if it
// was not signed with this secret.
func (v *Verifier) VerifyGuest(value string) (string, bool) {
	id, sig, ok := strings.Cut(value, ".")
	if !ok || !strings.HasPrefix(id, guestPrefix) || !ValidUser(id) {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(v.guestKey, id)) {
		return "", false
	}
	return id, true
}

// Guest returns the guest id carried by r's cookie, if it is valid.
func (v *Verifier) Guest(r *http.Request) (string, bool) {
	c, err := r.Cookie(GuestCookie)
	if err != nil {
		return "", false
	}
	return v.VerifyGuest(c.Value)
}

// EnsureGuest sets a new guest cookie on w unless r already carries a valid
// one, and returns the guest id in force. Secure is set when the request
// came over TLS, directly or through a proxy that says so.
func (v *Verifier) EnsureGuest(w http.ResponseWriter, r *http.Request) string {
	if id, ok := v.Guest(r); ok {
		return id
	}
	id := NewGuest()
	http.SetCookie(w, &http.Cookie{
		Name:     GuestCookie,
		Value:    v.SignGuest(id),
		Path:     "/",
		MaxAge:   int(guestMaxAge / time.Second),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	})
	return id
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
