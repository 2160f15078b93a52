package main

import (
	"strings"
	"testing"
)

// games add takes the TLS and PROXY settings, refuses a bad combination
// with the validator's words, and show says how the certificate is checked.
func TestGamesAddTLSAndProxyFlags(t *testing.T) {
	st := gamesTestStore(t)
	pin := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	code, _, errs := captureAll(t, "games", "add", "-id", "pinned", "-name", "Pinned", "-host", "8.8.8.8", "-port", "4000",
		"-tls", "-tls-pin-sha256", pin, "-proxy-protocol", "v2")
	if code != 0 {
		t.Fatalf("add: %d %s", code, errs)
	}
	g, err := st.GetGame(t.Context(), "pinned")
	if err != nil || g.TLSPinSHA256 != pin || g.ProxyProtocol != "v2" || !g.TLS {
		t.Fatalf("stored %+v, %v", g, err)
	}
	code, out, errs := captureAll(t, "games", "show", "pinned")
	if code != 0 || !strings.Contains(out, "key pinned: sha256 "+pin) || !strings.Contains(out, "v2") {
		t.Errorf("show: %d %s %s", code, out, errs)
	}
	code, out, _ = captureAll(t, "games", "show", "pinned", "-o", "json")
	if code != 0 || !strings.Contains(out, `"tls_pin_sha256": "`+pin+`"`) || !strings.Contains(out, `"proxy_protocol": "v2"`) {
		t.Errorf("show -o json: %s", out)
	}
	code, _, errs = captureAll(t, "games", "add", "-id", "both", "-name", "Both", "-host", "8.8.8.8", "-port", "4000",
		"-tls", "-tls-insecure", "-tls-pin-sha256", pin)
	if code == 0 || !strings.Contains(errs, "exclude each other") {
		t.Errorf("pin and insecure: %d %s", code, errs)
	}
	code, _, errs = captureAll(t, "games", "add", "-id", "ca", "-name", "CA", "-host", "8.8.8.8", "-port", "4000",
		"-tls-ca-file", "/etc/ca.pem")
	if code == 0 || !strings.Contains(errs, "tls_ca_file without tls") {
		t.Errorf("ca file without tls: %d %s", code, errs)
	}
}
