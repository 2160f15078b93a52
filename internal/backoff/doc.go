// Package backoff is the one retry delay of Trellis's loops that wait out
// a failing Redis or a failing accept: exponential from Min to Max, with
// equal jitter, reset after a success, and a wait that ends with its
// context.
//
// # Equal jitter
//
// Each delay is uniform in [d/2, d], where d doubles from Min up to Max.
// Full jitter (uniform in [0, d]) spreads retries a little better, but it
// can draw a delay near zero after any number of failures: a loop then
// retries a Redis that is still down at once, and logs the failure again.
// Equal jitter keeps half of the delay as a floor, so a failing loop
// always slows down, and still spreads a fleet of workers reconnecting to
// a Redis that came back over half the window. worker/supervisor's restart
// policy uses the same jitter, so a redial and a Redis retry read alike.
//
// # Why not a library
//
// github.com/cenkalti/backoff/v5 is well kept and available, but it fits
// less well than the forty lines here: its jitter is a ±RandomizationFactor
// band around the interval (neither full nor equal jitter), it draws from
// math/rand's global source with no way to inject one, and its Retry wraps
// one operation in a closure, while these loops share one backoff across
// several failure points (the controller's group creation, claims and
// reads) and log the delay before waiting. A dependency for that would
// need wrapping anyway.
//
// Tests inject the random source (Rand) and run waits under testing/synctest,
// so nothing sleeps for real.
package backoff
