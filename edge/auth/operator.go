package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OperatorAudience is the "aud" claim of an operator token.
const OperatorAudience = "trellis-console"

// ErrNotOperator is returned by VerifyOperator for a token that is valid
// but not an operator's (a player token, say).
var ErrNotOperator = errors.New("not an operator token")

// operatorKey is what operator tokens are signed with: a key derived from
// the secret, so that the two kinds of token cannot stand in for each
// other whatever their claims say. A player token fails the console's
// signature check, and an operator token fails the edge's, so an
// operator named alice is not the player alice.
func operatorKey(secret []byte) []byte { return mac(secret, "trellis operator token v1") }

// MintOperator signs a token for the operator name, valid for ttl, for the
// web console. It is what `trellis token -operator NAME` prints. Operator
// names use the user id alphabet (they end up in logs and events).
func MintOperator(secret []byte, name string, ttl time.Duration) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("mint operator token: secret has %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if !ValidUser(name) {
		return "", fmt.Errorf("mint operator token: name %q: want 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit", name)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint operator token: ttl %s must be positive", ttl)
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   name,
		Audience:  jwt.ClaimStrings{OperatorAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(operatorKey(secret))
	if err != nil {
		return "", fmt.Errorf("mint operator token for %s: %w", name, err)
	}
	return s, nil
}

// VerifyOperator checks an operator token and returns the operator's
// name and when the token expires. A player token is refused with
// ErrNotOperator (its signature is the player key's).
func (v *Verifier) VerifyOperator(token string) (string, time.Time, error) {
	if token == "" {
		return "", time.Time{}, ErrNoToken
	}
	if len(token) > 4096 {
		return "", time.Time{}, fmt.Errorf("%w: %d bytes", ErrInvalid, len(token))
	}
	key := operatorKey(v.secret)
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("alg %v not allowed", t.Header["alg"])
		}
		return key, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", time.Time{}, ErrExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Say so when it is a player token, for the log.
		if _, perr := v.Verify(token); perr == nil {
			return "", time.Time{}, ErrNotOperator
		}
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	case err != nil:
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	aud, _ := claims.GetAudience()
	if len(aud) != 1 || aud[0] != OperatorAudience {
		return "", time.Time{}, fmt.Errorf("%w: audience %q", ErrNotOperator, aud)
	}
	if !ValidUser(claims.Subject) {
		return "", time.Time{}, fmt.Errorf("%w: sub %.70q", ErrInvalidUser, claims.Subject)
	}
	return claims.Subject, claims.ExpiresAt.Time, nil
}
