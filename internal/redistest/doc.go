// Package redistest runs a real redis-server for tests: one per test
// package, on a free loopback port, with no persistence unless a test asks
// for AOF. Tests get clients on their own logical database, and can stop,
// kill and restart the server mid-test to exercise failure handling.
//
// Typical use:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		rdb := redistest.Client(t) // a fresh, empty database
//		...
//	}
//
// The server is killed with the test process even if the process dies
// (Linux parent-death signal), so a crashed test leaves no redis behind.
package redistest
