//go:build !race

package telnet

// bombBytes is how much text each zip bomb in the tests inflates to.
const bombBytes = 16 << 20
