package web_test

import (
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/edge/web"
)

// The files the edge and the other pages refer to by name.
var wantFiles = []string{
	"play.html",
	"index.html",
	"index.js",
	"games.js",
	"app.js",
	"ansi.js",
	"search.js",
	"connection.js",
	"gmcp.js",
	"history.js",
	"msdp.js",
	"protocol.js",
	"settings.js",
	"terminal.js",
	"transcript.js",
	"vitals.js",
	"style.css",
	// The player's features (aliases, triggers, keys, echo modes, profiles).
	"aliases.js",
	"download.js",
	"echo.js",
	"keys.js",
	"profile.js",
	"triggers.js",
	"unknown.html",
}

func TestStaticHoldsTheClient(t *testing.T) {
	static := web.Static()
	for _, name := range wantFiles {
		b, err := fs.ReadFile(static, name)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestStaticHoldsNoTestsOrStrayFiles(t *testing.T) {
	want := make(map[string]bool, len(wantFiles))
	for _, name := range wantFiles {
		want[name] = true
	}
	err := fs.WalkDir(web.Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.Contains(path, ".test.") || !want[path] {
			t.Errorf("unexpected embedded file %q: tests and stray files must not be served", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
}

// Every module a page imports must be embedded, or the page fails to load
// in the browser with nothing but a console error.
func TestModuleImportsResolve(t *testing.T) {
	static := web.Static()
	for _, name := range wantFiles {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			_, spec, ok := strings.Cut(line, " from './")
			if !ok {
				continue
			}
			target, _, _ := strings.Cut(spec, "'")
			if _, err := fs.Stat(static, target); err != nil {
				t.Errorf("%s imports ./%s, which is not embedded", name, target)
			}
		}
	}
}

// The edge serves the tree with http.FileServerFS under /static/; the
// browser refuses JavaScript modules served with the wrong media type.
func TestServedWithTheRightNamesAndTypes(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, name := range wantFiles {
		ext := name[strings.LastIndex(name, "."):]
		resp, err := http.Get(srv.URL + "/static/" + name)
		if err != nil {
			t.Fatalf("GET %s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /static/%s: status %d", name, resp.StatusCode)
			continue
		}
		mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil {
			t.Errorf("GET /static/%s: content type %q: %v", name, resp.Header.Get("Content-Type"), err)
			continue
		}
		wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".html": "text/html"}[ext]
		if mediaType != wantType {
			t.Errorf("GET /static/%s: content type %q, want %q", name, mediaType, wantType)
		}
		want, _ := fs.ReadFile(web.Static(), name)
		if string(body) != string(want) {
			t.Errorf("GET /static/%s: body differs from the embedded file", name)
		}
	}
}

// The client's ids and classes are a contract with the edge's browser tests.
func TestPlayPageKeepsTheTestedIDs(t *testing.T) {
	b, err := fs.ReadFile(web.Static(), "play.html")
	if err != nil {
		t.Fatalf("read play.html: %v", err)
	}
	page := string(b)
	for _, want := range []string{
		`id="output"`,
		`id="input"`,
		`id="status"`,
		`class="vitals"`,
		`role="log"`,
		`aria-live="polite"`,
		`<label for="input"`,
		`src="/static/app.js"`,
		`href="/static/style.css"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("play.html lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Error("play.html has an inline script or style: it would break under a strict Content-Security-Policy")
	}
}
