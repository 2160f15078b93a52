package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// fakeTB records a skip or a fatal failure and ends the goroutine as the
// real ones do.
type fakeTB struct {
	testing.TB
	skipped, failed string
	errors          []string
	logs            int
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Logf(string, ...any) { f.logs++ }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Without chromium a browser test is skipped with the install hint, except
// in CI, where it must fail: a CI job that silently runs no browser test
// would pass with a broken client.
func TestNoChromium(t *testing.T) {
	old := debianChromium
	debianChromium = filepath.Join(t.TempDir(), "no-chromium")
	t.Cleanup(func() { debianChromium = old })
	t.Setenv("PATH", t.TempDir())
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		done := make(chan string, 2)
		go func() {
			defer func() { done <- "" }()
			done <- findChromium(f)
		}()
		if path := <-done; path != "" {
			t.Fatalf("CI=%q: found %s", ci, path)
		}
		if ci == "" && (f.failed != "" || !strings.Contains(f.skipped, "make deps")) {
			t.Errorf("outside CI: skipped %q, failed %q; want a skip with the install hint", f.skipped, f.failed)
		}
		if ci != "" && (f.skipped != "" || f.failed == "") {
			t.Errorf("in CI: skipped %q, failed %q; want a failure", f.skipped, f.failed)
		}
	}
}

func page(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Exceptions and console.error calls are recorded from every tab (with
// AllowPageErrors they are then only logged, so this test can pass).
func TestRecordsPageErrors(t *testing.T) {
	ctx := Start(t, Options{AllowPageErrors: true, Width: 800, Height: 600})
	url := page(t, `<!doctype html><p>hi</p><script>console.log("fine"); console.error("boom", 42); throw new Error("bang")</script>`)
	tab := NewTab(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(url+"/tab")); err != nil {
		t.Fatal(err)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`)); err != nil || w != 800 {
		t.Errorf("window width %d, %v; want 800", w, err)
	}
	rec := ctx.Value(recorderKey{}).(*recorder)
	var got []string
	for range 200 { // the events arrive on the tabs' own goroutines
		rec.mu.Lock()
		got = slices.Clone(rec.problems)
		rec.mu.Unlock()
		if len(got) >= 4 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	var errs, exceptions int
	for _, p := range got {
		switch {
		case strings.HasPrefix(p, "console.error: ") && p == `console.error: "boom" 42`:
			errs++
		case strings.HasPrefix(p, "exception at "+url) && strings.Contains(p, "bang"):
			exceptions++
		default:
			t.Errorf("unexpected record %q", p)
		}
	}
	if errs != 2 || exceptions != 2 {
		t.Errorf("recorded %q; want a console.error and an exception from each of the two tabs", got)
	}
}

func TestScreenshot(t *testing.T) {
	ctx := Start(t, Options{})
	if err := chromedp.Do(ctx, chromedp.Navigate(page(t, `<!doctype html><p>hi</p>`))); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRELLIS_ARTIFACTS", "")
	Screenshot(t, ctx, "none.png") // not set: nothing taken

	dir := filepath.Join(t.TempDir(), "artifacts")
	t.Setenv("TRELLIS_ARTIFACTS", dir)
	Screenshot(t, ctx, "shot.png")
	b, err := os.ReadFile(filepath.Join(dir, "shot.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("shot.png is not a PNG: % x", b[:min(len(b), 8)])
	}
	ScreenshotIfFailed(t, ctx, "failed.png") // the test has not failed
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("artifacts: %v, want shot.png only", entries)
	}
}

// Recorded page errors fail the test, unless it allows them.
func TestReportFails(t *testing.T) {
	rec := &recorder{problems: []string{"console.error: \"boom\"", "exception at x:1: bang"}}
	f := &fakeTB{TB: t}
	rec.report(f, false)
	if len(f.errors) != 2 || !strings.Contains(f.errors[0], "boom") {
		t.Errorf("not allowed: errors %q, want both problems", f.errors)
	}
	f = &fakeTB{TB: t}
	rec.report(f, true)
	if len(f.errors) != 0 || f.logs != 2 {
		t.Errorf("allowed: errors %q and %d logs, want none and 2", f.errors, f.logs)
	}
}
