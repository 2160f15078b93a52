//go:build race

package telnet

// bombBytes is smaller under the race detector, which makes inflating and
// parsing about ten times slower; 4 MiB still inflates from one read far
// past every bound.
const bombBytes = 4 << 20
