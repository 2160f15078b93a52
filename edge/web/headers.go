package web

import "net/http"

// ContentSecurityPolicy is the client's policy: scripts, styles and
// connections from its own origin only, no plugins, no <base> rewriting,
// no framing, forms posting only home. The pages keep to it (no inline
// script or style; web_test.go checks), and so does every page served
// beside them, such as the operator console, which loads ansi.js and
// terminal.js from this package.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// SecurityHeaders serves next under the client's security headers. The CSP
// keeps game text from ever running as script (and, in the console, any
// script but the console's own files). No Referer keeps the token in a
// play URL from leaking to other sites. No framing, by the CSP and by
// X-Frame-Options for older browsers, because a page that overlays a
// framed terminal could make a player type into the game for them, or an
// operator click "kill". nosniff stops a browser from running a response
// as a type other than the one it was served as.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		next.ServeHTTP(w, r)
	})
}
