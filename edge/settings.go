package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/trellis-mud/trellis/store"
)

// The player's client settings endpoint, and what the play page learns of
// a game beyond its name.
//
// GET /api/settings returns the signed-in player's settings document (an
// empty object when none is stored); PUT replaces it. The player proves
// who they are with the same signed token the WebSocket hello carries, in
// an Authorization: Bearer header: never a cookie, so another site's page
// cannot write a player's settings by riding the browser's cookies (and
// the origin check refuses other sites' pages anyway). Guests keep their
// settings in the browser: the endpoint answers them 401.

// gameClient is what the play page needs of a registry entry to draw the
// game: the echo mode, the password prompt pattern (the page masks the
// input box at a password prompt on a character-mode server) and the
// vitals mapping. It is embedded in the /api/games entries.
type gameClient struct {
	Echo           string            `json:"echo,omitempty"`
	PasswordPrompt string            `json:"password_prompt,omitempty"`
	Vitals         []store.VitalSpec `json:"vitals,omitempty"`
}

func clientOf(g store.Game) gameClient {
	c := gameClient{Vitals: g.Vitals, PasswordPrompt: g.PasswordPrompt}
	if g.Echo != "" && g.Echo != store.EchoAuto {
		c.Echo = g.Echo
	}
	return c
}

// settingsRoutes registers the settings endpoint on mux.
func (s *Server) settingsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/settings", s.serveSettings)
	mux.HandleFunc("PUT /api/settings", s.serveSettings)
}

// settingsError answers with a JSON {"error": message}: the page shows
// the message to the player as it is.
func settingsError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// bearerUser returns the user a request's bearer token names.
func (s *Server) bearerUser(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	user, err := s.auth.Verify(strings.TrimSpace(tok))
	return user, err == nil
}

func (s *Server) serveSettings(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		settingsError(w, http.StatusForbidden, "settings can only be changed from this site's pages")
		return
	}
	user, ok := s.bearerUser(r)
	if !ok {
		settingsError(w, http.StatusUnauthorized, "sign in to keep settings on the server; guests keep them in this browser")
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodGet {
		doc, err := s.st.UserSettings(ctx, user)
		if err != nil {
			s.log.Warn("read settings failed", "user", user, "err", err)
			settingsError(w, http.StatusServiceUnavailable, "your settings cannot be read right now; try again shortly")
			return
		}
		if doc == nil {
			doc = []byte("{}")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(doc)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		settingsError(w, http.StatusUnsupportedMediaType, "settings are sent as application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, store.MaxUserSettings))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		settingsError(w, http.StatusRequestEntityTooLarge, store.ErrSettingsTooLarge.Error()+": remove some aliases or triggers")
		return
	}
	if err != nil {
		settingsError(w, http.StatusBadRequest, "the settings did not arrive whole")
		return
	}
	switch err := s.st.PutUserSettings(ctx, user, body); {
	case errors.Is(err, store.ErrSettingsTooLarge):
		settingsError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, store.ErrSettingsInvalid):
		settingsError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		s.log.Warn("save settings failed", "user", user, "err", err)
		settingsError(w, http.StatusServiceUnavailable, "your settings cannot be saved right now; try again shortly")
	default:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}
