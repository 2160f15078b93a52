package auth

import (
	"errors"
	"testing"
	"time"
)

func TestOperatorTokens(t *testing.T) {
	v := verifier(t)
	op, err := MintOperator(secret, "olga", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	name, exp, err := v.VerifyOperator(op)
	if err != nil || name != "olga" || exp.IsZero() {
		t.Fatalf("VerifyOperator = %q, %v, %v; want olga", name, exp, err)
	}
	// Neither kind stands in for the other.
	if u, err := v.Verify(op); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(operator token) = %q, %v; want ErrInvalid", u, err)
	}
	player, _ := Mint(secret, "olga", time.Hour)
	if n, _, err := v.VerifyOperator(player); !errors.Is(err, ErrNotOperator) {
		t.Errorf("VerifyOperator(player token) = %q, %v; want ErrNotOperator", n, err)
	}
	other, _ := MintOperator([]byte("another-secret-another-secret-!!"), "olga", time.Hour)
	if n, _, err := v.VerifyOperator(other); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyOperator(other secret) = %q, %v; want ErrInvalid", n, err)
	}
	if _, _, err := v.VerifyOperator(""); !errors.Is(err, ErrNoToken) {
		t.Errorf("VerifyOperator(\"\") = %v; want ErrNoToken", err)
	}
	if _, err := MintOperator(secret, "bad name", time.Hour); err == nil {
		t.Error("MintOperator accepted a name with a space")
	}
}
