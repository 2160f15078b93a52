// Package e2e holds end-to-end tests that run the whole stack in one
// process: a real Redis (redistest), the demo game, a worker and an edge,
// driven by a real browser (Debian's chromium through chromedp). It is
// test-only; the edge itself never imports the worker, so the tests that
// need both live here.
package e2e
