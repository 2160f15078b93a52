package supervisor

import "time"

// Backoff exposes backoff to the external tests.
func Backoff(spec Spec, n int) time.Duration {
	s := spec.withDefaults()
	return backoff(&s, n)
}
