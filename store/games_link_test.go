package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// TestGameLinkValidation covers every combination of the TLS and PROXY
// fields: what is accepted, and that each refusal names the field.
func TestGameLinkValidation(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("spki"))
	b64, hx := base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:])
	colons := strings.ToUpper(hx[:2])
	for i := 2; i < len(hx); i += 2 {
		colons += ":" + strings.ToUpper(hx[i:i+2])
	}
	g := func(f func(*Game)) Game {
		x := dune()
		f(&x)
		return x
	}
	for name, x := range map[string]Game{
		"tls system roots": g(func(x *Game) { x.TLS = true }),
		"tls insecure":     g(func(x *Game) { x.TLS, x.TLSInsecure = true, true }),
		"tls ca file":      g(func(x *Game) { x.TLS, x.TLSCAFile = true, "/etc/trellis/game-ca.pem" }),
		"pin base64":       g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, b64 }),
		"pin raw base64":   g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, strings.TrimRight(b64, "=") }),
		"pin sha256/":      g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, "sha256/"+b64 }),
		"pin hex":          g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, hx }),
		"pin hex colons":   g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, colons }),
		"proxy v1":         g(func(x *Game) { x.ProxyProtocol = "v1" }),
		"proxy v2 + tls":   g(func(x *Game) { x.ProxyProtocol, x.TLS = "v2", true }),
		"proxy + mnes":     g(func(x *Game) { x.ProxyProtocol, x.MNES = "v1", true }),
	} {
		if err := x.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, c := range map[string]struct {
		g    Game
		want string
	}{
		"insecure without tls": {g(func(x *Game) { x.TLSInsecure = true }), "tls_insecure without tls"},
		"ca without tls":       {g(func(x *Game) { x.TLSCAFile = "/ca.pem" }), "tls_ca_file without tls"},
		"pin without tls":      {g(func(x *Game) { x.TLSPinSHA256 = b64 }), "tls_pin_sha256 without tls"},
		"pin and insecure": {g(func(x *Game) { x.TLS, x.TLSInsecure, x.TLSPinSHA256 = true, true, b64 }),
			"exclude each other"},
		"pin and ca": {g(func(x *Game) { x.TLS, x.TLSCAFile, x.TLSPinSHA256 = true, "/ca.pem", b64 }),
			"exclude each other"},
		"ca and insecure": {g(func(x *Game) { x.TLS, x.TLSCAFile, x.TLSInsecure = true, "/ca.pem", true }),
			"exclude each other"},
		"relative ca":    {g(func(x *Game) { x.TLS, x.TLSCAFile = true, "ca.pem" }), "absolute path"},
		"ca newline":     {g(func(x *Game) { x.TLS, x.TLSCAFile = true, "/ca.pem\nx" }), "absolute path"},
		"long ca path":   {g(func(x *Game) { x.TLS, x.TLSCAFile = true, "/"+strings.Repeat("a", 1024) }), "at most 1024"},
		"short pin":      {g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, b64[:20] }), "not a SHA-256"},
		"sha1 hex pin":   {g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, hx[:40] }), "not a SHA-256"},
		"bad hex pin":    {g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, "zz"+hx[2:] }), "not a SHA-256"},
		"huge pin":       {g(func(x *Game) { x.TLS, x.TLSPinSHA256 = true, strings.Repeat("A", 5000) }), "characters"},
		"proxy v3":       {g(func(x *Game) { x.ProxyProtocol = "v3" }), "proxy_protocol"},
		"proxy yes":      {g(func(x *Game) { x.ProxyProtocol = "true" }), "want v1, v2"},
		"proxy capitals": {g(func(x *Game) { x.ProxyProtocol = "V1" }), "proxy_protocol"},
	} {
		err := c.g.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	for _, s := range []string{b64, hx, colons, "sha256/" + b64, "sha256//" + b64, base64.RawURLEncoding.EncodeToString(sum[:])} {
		got, err := ParsePin(s)
		if err != nil || !bytes.Equal(got, sum[:]) {
			t.Errorf("ParsePin(%q) = %x, %v", s, got, err)
		}
	}
}

// TestParseGamesLinkFields: the new fields are read from JSON and YAML
// registry files, and an invalid combination fails the whole file.
func TestParseGamesLinkFields(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("k"))
	pin := base64.StdEncoding.EncodeToString(sum[:])
	yml := "games:\n  - {id: a, name: A, host: a.org, port: 23, tls: true, tls_pin_sha256: \"" + pin + "\", proxy_protocol: v2}\n" +
		"  - {id: b, name: B, host: b.org, port: 23, tls: true, tls_ca_file: /etc/ca.pem}\n"
	games, err := ParseGames(strings.NewReader(yml))
	if err != nil {
		t.Fatal(err)
	}
	if games[0].TLSPinSHA256 != pin || games[0].ProxyProtocol != "v2" || games[1].TLSCAFile != "/etc/ca.pem" {
		t.Errorf("parsed %+v", games)
	}
	js := `[{"id":"a","name":"A","host":"a.org","port":23,"tls":true,"tls_insecure":true,"tls_pin_sha256":"` + pin + `"}]`
	if _, err := ParseGames(strings.NewReader(js)); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("pin and insecure imported: %v", err)
	}
	if _, err := ParseGames(strings.NewReader(`[{"id":"a","name":"A","host":"a.org","port":23,"proxy_protocol":"v9"}]`)); err == nil {
		t.Error("proxy_protocol v9 imported")
	}
}
