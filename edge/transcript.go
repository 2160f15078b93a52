package edge

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-mud/trellis/internal/ansi"
	"github.com/trellis-mud/trellis/store"
)

// The transcript download: the player's own session, as the output stream
// holds it (the transcript TTL's worth, within the stream's byte bound),
// as text or as HTML with the game's colours.
//
// GET /api/transcript?game=<id>&format=text|html. The player is the one
// the bearer token names or, on an edge that admits guests, the guest
// cookie's: nobody downloads another player's session. Lines typed while
// the game echoed were recorded redacted and stay out of the file.

// Bounds of one download: the stream is bounded already, these keep a
// single request from holding a large stream in memory at once.
const (
	transcriptPage     = 1000
	transcriptMaxBytes = 8 << 20
)

func (s *Server) transcriptRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/transcript", s.serveTranscript)
}

// requestUser is the player a plain HTTP request speaks for: a bearer
// token, else the guest cookie when guests are admitted.
func (s *Server) requestUser(r *http.Request) (string, bool) {
	if user, ok := s.bearerUser(r); ok {
		return user, true
	}
	if s.cfg.Guest {
		if guest, ok := s.auth.Guest(r); ok && guest != "" {
			return guest, true
		}
	}
	return "", false
}

func (s *Server) serveTranscript(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		settingsError(w, http.StatusForbidden, "transcripts can only be downloaded from this site's pages")
		return
	}
	user, ok := s.requestUser(r)
	if !ok {
		settingsError(w, http.StatusUnauthorized, "sign in to download your transcript")
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "text"
	}
	if format != "text" && format != "html" {
		settingsError(w, http.StatusBadRequest, "format is text or html")
		return
	}
	game, err := s.st.GetGame(r.Context(), q.Get("game"))
	if err != nil {
		settingsError(w, http.StatusNotFound, "no such game")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	entries, cut, err := s.readTranscript(ctx, store.SessionKey{User: user, Game: game.ID})
	if err != nil {
		s.log.Warn("read transcript failed", "user", user, "game", game.ID, "err", err)
		settingsError(w, http.StatusServiceUnavailable, "your transcript cannot be read right now; try again shortly")
		return
	}
	name := fmt.Sprintf("%s-%s", game.ID, time.Now().UTC().Format("2006-01-02-1504"))
	w.Header().Set("Cache-Control", "no-store")
	if format == "html" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.html"`)
		// The file is opened from disk later; inline nothing active.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write([]byte(transcriptHTML(game.Name, entries, cut)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.txt"`)
	_, _ = w.Write([]byte(transcriptText(entries, cut)))
}

// readTranscript reads the session's stream from its oldest kept entry, a
// page at a time, up to transcriptMaxBytes of text; cut says it stopped
// there.
func (s *Server) readTranscript(ctx context.Context, key store.SessionKey) (entries []store.Output, cut bool, err error) {
	from, size := "-", 0
	for {
		page, err := s.st.OutputRange(ctx, key, from, "+", transcriptPage)
		if err != nil {
			return nil, false, err
		}
		for _, o := range page {
			if o.Kind != store.OutText && o.Kind != store.OutInput && o.Kind != store.OutStatus && o.Kind != store.OutGap {
				continue
			}
			size += len(o.Text)
			if size > transcriptMaxBytes {
				return entries, true, nil
			}
			entries = append(entries, o)
		}
		if len(page) < transcriptPage {
			return entries, false, nil
		}
		from = "(" + page[len(page)-1].ID
	}
}

// transcriptLines walks the entries as the page draws them: game text as
// it came, typed lines after the prompt they answer, client notices on
// lines of their own. Redacted lines are left out.
func transcriptLines(entries []store.Output, text func(string), notice func(string)) {
	for _, o := range entries {
		switch o.Kind {
		case store.OutText:
			text(o.Text)
		case store.OutInput:
			if !o.Redacted {
				text(o.Text + "\n")
			}
		case store.OutStatus:
			if o.State != store.StateConnecting {
				notice(o.State + noticeSuffix(o.Text))
			}
		case store.OutGap:
			notice("some output was lost" + noticeSuffix(o.Text))
		}
	}
}

func noticeSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func transcriptText(entries []store.Output, cut bool) string {
	var b strings.Builder
	atStart := true
	transcriptLines(entries,
		func(t string) {
			t = ansi.Strip(t)
			b.WriteString(t)
			atStart = t == "" && atStart || strings.HasSuffix(t, "\n")
		},
		func(n string) {
			if !atStart {
				b.WriteString("\n")
			}
			b.WriteString("— " + n + " —\n")
			atStart = true
		})
	if cut {
		b.WriteString("\n— the transcript was cut at 8 MiB —\n")
	}
	return b.String()
}

func transcriptHTML(title string, entries []store.Output, cut bool) string {
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString(" · transcript</title>\n<style>body{background:#0f1115;color:#d4d7dd;margin:1rem}pre{font:14px/1.3 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap}.n{color:#6b7382}</style></head>\n<body><pre>")
	var st ansi.Style
	transcriptLines(entries,
		func(t string) {
			var h string
			h, st = ansi.HTML(t, st)
			b.WriteString(h)
		},
		func(n string) {
			b.WriteString("\n<span class=\"n\">— " + html.EscapeString(n) + " —</span>\n")
		})
	if cut {
		b.WriteString("\n<span class=\"n\">— the transcript was cut at 8 MiB —</span>\n")
	}
	b.WriteString("</pre></body></html>\n")
	return b.String()
}
