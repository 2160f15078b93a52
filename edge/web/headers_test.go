package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trellis-mud/trellis/edge/web"
)

// SecurityHeaders sets every header on every response, whatever the
// handler inside writes or however it fails.
func TestSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	}
	h := web.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	for _, path := range []string{"/", "/missing"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
	if web.ContentSecurityPolicy != want["Content-Security-Policy"] {
		t.Errorf("ContentSecurityPolicy = %q", web.ContentSecurityPolicy)
	}
}
