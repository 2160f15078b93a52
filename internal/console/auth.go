package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/store"
)

// cookieName holds the operator's token after sign-in.
const cookieName = "trellis_operator"

// maxBody bounds every JSON body but an import's.
const maxBody = 1 << 20

// authed admits requests that carry a valid operator cookie and, when
// they change state, come from a console page (see stateChange).
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, operator string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		op, exp, err := s.auth.VerifyOperator(c.Value)
		// No leeway past the token's expiry here (the verifier allows
		// some for clock skew): the cookie and the streams end with it.
		if err == nil && !time.Now().Before(exp) {
			err = auth.ErrExpired
		}
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not signed in, or the sign-in expired")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if msg := s.stateChange(r); msg != "" {
				s.log.Warn("console request refused", "operator", op, "method", r.Method, "path", r.URL.Path, "why", msg)
				writeError(w, http.StatusForbidden, msg)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), expiryKey{}, exp)), op)
	})
}

// expiryKey holds, in a request's context, when its sign-in expires: a
// live stream ends then, and the page's reconnect meets the sign-in form.
type expiryKey struct{}

func signInExpiry(r *http.Request) (time.Time, bool) {
	t, ok := r.Context().Value(expiryKey{}).(time.Time)
	return t, ok
}

// stateChange says why a state-changing request is refused ("" if it is
// not). It must name an allowed origin in Origin, which browsers send on
// every such request and pages cannot forge, and carry JSON, which a
// cross-site form cannot send without a preflight. SameSite=Strict
// already keeps the cookie off cross-site requests; this holds even where
// a browser or a proxy gets that wrong.
func (s *Server) stateChange(r *http.Request) string {
	if !s.sameOrigin(r) {
		return "this request must come from the console's own page (Origin)"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return "want a JSON body (Content-Type: application/json)"
	}
	return ""
}

func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	if origin == "" || err != nil || u.Host == "" {
		return false
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	want := strings.ToLower(u.Scheme + "://" + u.Host)
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool {
		return strings.ToLower(strings.TrimSuffix(o, "/")) == want
	})
}

// serveLogin exchanges an operator token (in the body, never the URL) for
// the sign-in cookie.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if msg := s.stateChange(r); msg != "" {
		writeError(w, http.StatusForbidden, msg)
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "want {\"token\": \"...\"}")
		return
	}
	op, exp, err := s.auth.VerifyOperator(strings.TrimSpace(body.Token))
	if err == nil && !time.Now().Before(exp) {
		err = auth.ErrExpired
	}
	if err != nil {
		msg := "that is not a valid operator token (mint one with 'trellis token -operator NAME')"
		switch {
		case errors.Is(err, auth.ErrNotOperator):
			msg = "that is a player token; the console takes operator tokens ('trellis token -operator NAME')"
		case errors.Is(err, auth.ErrExpired):
			msg = "that token has expired"
		}
		s.log.Warn("console sign-in refused", "err", err, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	life := min(time.Until(exp), s.cfg.MaxSignIn)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    strings.TrimSpace(body.Token),
		Path:     "/",
		MaxAge:   max(int(life/time.Second), 1),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   secure(r),
	})
	s.log.Info("operator signed in", "operator", op, "remote", r.RemoteAddr)
	s.event(r, store.EvOperatorSignedIn, store.SessionKey{}, "", map[string]any{"operator": op})
	writeJSON(w, http.StatusOK, map[string]string{"operator": op})
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) {
		writeError(w, http.StatusForbidden, "this request must come from the console's own page (Origin)")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	w.WriteHeader(http.StatusNoContent)
}

// secure says whether the browser reached the console over TLS, directly
// or through a proxy that says so: the cookie is then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (s *Server) serveMe(w http.ResponseWriter, _ *http.Request, op string) {
	writeJSON(w, http.StatusOK, map[string]string{"operator": op})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
