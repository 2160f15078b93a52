package edge

import (
	"io/fs"
	"net/http"
)

// serveUnknownGame answers a play page for a game the registry does not
// hold: a page of its own with a link to the list, not a bare 404 line.
func (s *Server) serveUnknownGame(w http.ResponseWriter, _ *http.Request) {
	b, err := fs.ReadFile(s.static, "unknown.html")
	if err != nil {
		http.Error(w, "no such game", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(b)
}
