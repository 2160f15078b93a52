package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// debianChromium is where Debian's chromium package (`make deps`) puts the
// browser; it is tried before PATH. A variable for this package's tests.
var debianChromium = "/usr/bin/chromium"

// pathNames are tried on PATH, in order, when debianChromium is absent.
var pathNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Options shape the browser. The zero value is a 1280×900 window and a
// 90 s budget.
type Options struct {
	// Width and Height are the window's size in CSS pixels.
	Width, Height int
	// Timeout bounds everything done in the returned context (and the tabs
	// opened from it), so a page that never gets where the test waits for
	// fails the test instead of hanging it.
	Timeout time.Duration
	// AllowPageErrors logs uncaught exceptions and console.error calls
	// instead of failing the test on them.
	AllowPageErrors bool
}

const (
	defaultWidth   = 1280
	defaultHeight  = 900
	defaultTimeout = 90 * time.Second
)

// Start starts a headless chromium with a fresh profile in t.TempDir() and
// returns the context of its first tab, already open. The browser is
// stopped, and waited for, when the test ends; see the package doc for a
// machine without chromium and for page errors.
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := findChromium(t)
	if o.Width == 0 {
		o.Width = defaultWidth
	}
	if o.Height == 0 {
		o.Height = defaultHeight
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	// chromedp's defaults (Puppeteer's: headless, no first run, no
	// background networking or throttling of background tabs, which a test
	// with two tabs needs), then: no sandbox (containers and CI runners
	// seldom allow it), no GPU, and nothing that talks to the Internet on
	// its own (QUIC probes, component updates, sync) — tests are loopback
	// only.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	rec := &recorder{}
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(rec.listen))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for chromium to exit
		rec.report(t, o.AllowPageErrors)
	})
	// Starting it here makes a chromium that cannot start fail with its
	// path, not as the first step of the test; and the first Run must have
	// no deadline, which would stop the whole browser.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(browserCtx, o.Timeout)
	t.Cleanup(cancelTimeout)
	ctx = context.WithValue(ctx, recorderKey{}, rec)
	return ctx
}

// NewTab opens another tab in ctx's browser (ctx from Start, or a tab of
// it), with the same page-error check, and closes it when the test ends.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	rec, ok := ctx.Value(recorderKey{}).(*recorder)
	if !ok {
		t.Fatal("browsertest.NewTab: the context is not from browsertest.Start")
	}
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithListener(rec.listen))
	t.Cleanup(cancel) // closes the tab; the browser's cleanup runs later
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return tab
}

func findChromium(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath(debianChromium); err == nil {
		return debianChromium
	}
	for _, name := range pathNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no chromium at %s or on PATH, and CI is set: the browser tests must run", debianChromium)
	}
	t.Skipf("no chromium at %s or on PATH (install Debian's chromium: `make deps`); skipping outside CI", debianChromium)
	return ""
}

type recorderKey struct{}

// recorder collects the page errors of every tab of one browser.
type recorder struct {
	mu       sync.Mutex
	problems []string
}

// listen runs on a tab's reader goroutine: it only records.
func (r *recorder) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		p = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 { // a primitive, as JSON
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		p = "console.error: " + strings.Join(parts, " ")
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, p)
}

func (r *recorder) report(t testing.TB, allow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		if allow {
			t.Logf("page %s (allowed)", p)
		} else {
			t.Errorf("page %s", p)
		}
	}
}

// Screenshot saves a PNG of the whole page in ctx's tab as name in
// $TRELLIS_ARTIFACTS, and does nothing when that is not set. A screenshot
// that cannot be taken (the tab is gone) is logged, not a failure: it is
// evidence for a person, not a check.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("TRELLIS_ARTIFACTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// ScreenshotIfFailed is Screenshot when the test has failed; defer it right
// after Start, so the page is caught as it was when the test gave up
// (before the servers behind it are stopped by their cleanups).
func ScreenshotIfFailed(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if t.Failed() {
		Screenshot(t, ctx, name)
	}
}
