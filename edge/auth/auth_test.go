package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func verifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMintThenVerify(t *testing.T) {
	tok, err := Mint(secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	user, err := verifier(t).Verify(tok)
	if err != nil || user != "alice" {
		t.Fatalf("Verify = %q, %v; want alice", user, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	other := []byte("another-secret-another-secret-!!")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	sign := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var expired string
	{
		// Mint refuses negative ttls, so build an expired one by hand,
		// beyond the verifier's leeway.
		expired = sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{
			Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
		})
	}
	forged, _ := Mint(other, "alice", time.Hour)
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})
	rs256 := sign(jwt.SigningMethodRS256, rsaKey, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})
	hs512 := sign(jwt.SigningMethodHS512, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})
	noExp := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice"})
	badSub := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "al}ice:x", ExpiresAt: exp})
	emptySub := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{ExpiresAt: exp})
	longSub := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: strings.Repeat("a", 65), ExpiresAt: exp})
	// A none token with the header rewritten to claim HS256 but no signature.
	parts := strings.Split(none, ".")
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	unsigned := hdr + "." + parts[1] + "."

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrNoToken},
		{"garbage", "not.a.token", ErrInvalid},
		{"expired", expired, ErrExpired},
		{"forged", forged, ErrInvalid},
		{"alg none", none, ErrInvalid},
		{"alg RS256", rs256, ErrInvalid},
		{"alg HS512", hs512, ErrInvalid},
		{"no exp", noExp, ErrInvalid},
		{"unsigned HS256", unsigned, ErrInvalid},
		{"bad sub charset", badSub, ErrInvalidUser},
		{"empty sub", emptySub, ErrInvalidUser},
		{"sub too long", longSub, ErrInvalidUser},
		{"huge", strings.Repeat("a", 5000), ErrInvalid},
	}
	v := verifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user, err := v.Verify(c.token)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %q, %v; want %v", user, err, c.want)
			}
			if user != "" {
				t.Fatalf("refused token still yielded user %q", user)
			}
		})
	}
}

func TestMintValidates(t *testing.T) {
	if _, err := Mint(secret[:10], "alice", time.Hour); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := Mint(secret, "bad user", time.Hour); err == nil {
		t.Error("user with a space accepted")
	}
	if _, err := Mint(secret, "alice", 0); err == nil {
		t.Error("zero ttl accepted")
	}
	if _, err := NewVerifier(secret[:31]); err == nil {
		t.Error("31-byte secret accepted by NewVerifier")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Secret: "short-and-secret"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "TRELLIS_AUTH_SECRET") {
		t.Fatalf("Validate = %v; want an error naming TRELLIS_AUTH_SECRET", err)
	}
	if strings.Contains(err.Error(), "short-and-secret") {
		t.Fatalf("Validate leaks the secret: %v", err)
	}
	if err := (Config{Secret: string(secret)}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidUser(t *testing.T) {
	for _, ok := range []string{"alice", "a", "Bob_2", "x.y@z-w", strings.Repeat("a", 64)} {
		if !ValidUser(ok) {
			t.Errorf("ValidUser(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "-lead", "a b", "a:b", "a{b}", "é", "a\n", strings.Repeat("a", 65)} {
		if ValidUser(bad) {
			t.Errorf("ValidUser(%q) = true", bad)
		}
	}
}

func TestGuestCookie(t *testing.T) {
	v := verifier(t)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/play/demo", nil)
	id := v.EnsureGuest(rec, req)
	if !strings.HasPrefix(id, "guest-") || !ValidUser(id) {
		t.Fatalf("guest id %q", id)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("%d cookies set, want 1", len(cookies))
	}
	c := cookies[0]
	if c.Name != GuestCookie || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP", c)
	}

	// A reload with the cookie keeps the identity and sets nothing new.
	rec2 := httptest.NewRecorder()
	req2 := httptest.NewRequest("GET", "/play/demo", nil)
	req2.AddCookie(c)
	if got := v.EnsureGuest(rec2, req2); got != id {
		t.Fatalf("reload gave guest %q, want %q", got, id)
	}
	if n := len(rec2.Result().Cookies()); n != 0 {
		t.Fatalf("reload set %d cookies, want 0", n)
	}

	// Tampering and foreign secrets are refused.
	other, _ := NewVerifier([]byte("another-secret-another-secret-!!"))
	for _, bad := range []string{
		"", "guest-1", c.Value + "x", strings.Replace(c.Value, "guest-", "guest-f", 1),
		"alice." + strings.SplitN(c.Value, ".", 2)[1], other.SignGuest(id),
	} {
		if got, ok := v.VerifyGuest(bad); ok {
			t.Errorf("VerifyGuest(%q) = %q, true", bad, got)
		}
	}

	// Secure over TLS or behind a TLS-terminating proxy.
	for _, r := range []*http.Request{
		func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}(),
		func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			return r
		}(),
	} {
		rec := httptest.NewRecorder()
		v.EnsureGuest(rec, r)
		if c := rec.Result().Cookies(); len(c) != 1 || !c[0].Secure {
			t.Errorf("cookie over TLS not Secure: %+v", c)
		}
	}
}

// The "guest-" namespace belongs to guest cookies: a token naming a guest id
// would hand its holder that guest's game session.
func TestTokenCannotClaimAGuestID(t *testing.T) {
	v := verifier(t)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   "guest-0123456789abcdef",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if user, err := v.Verify(tok); !errors.Is(err, ErrInvalidUser) {
		t.Errorf("Verify(token for a guest id) = %q, %v; want ErrInvalidUser", user, err)
	}
	if _, err := Mint(secret, "guest-0123456789abcdef", time.Hour); err == nil {
		t.Error("Mint for a guest id succeeded")
	}
}
