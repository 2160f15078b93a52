// Package browsertest starts the real headless chromium that Trellis's
// browser tests drive through chromedp, so that every such test starts it
// the same way: a fresh profile, the same flags, the same rule for a
// machine without chromium, and the same page-error check. It is for
// tests only (nothing outside a _test.go file imports it) and holds no
// test of the product itself.
//
//	ctx := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 860})
//	defer browsertest.ScreenshotIfFailed(t, ctx, "thing-failure.png")
//	err := chromedp.Do(ctx, chromedp.Navigate(url), ...)
//	browsertest.Screenshot(t, ctx, "thing.png")
//	other := browsertest.NewTab(t, ctx) // a second tab in the same browser
//
// Chromium is Debian's /usr/bin/chromium, or the first chromium or Chrome
// on PATH. Without one the test is skipped, with the install hint, unless
// CI is set: there the browser tests must run, so the test fails. -short
// skips browser tests.
//
// Uncaught exceptions and console.error calls in any tab the package opened
// fail the test when it ends (a client that throws has a bug, even when the
// test's own checks pass); Options.AllowPageErrors logs them instead, for a
// test that provokes them on purpose.
//
// Screenshots are PNGs written to the directory $TRELLIS_ARTIFACTS names
// (created if need be), for a person or a CI job to look at; without it
// they are not taken.
package browsertest
