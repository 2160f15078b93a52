package main

import (
	"strconv"

	"github.com/trellis-mud/trellis/internal/ops"
)

// What players whose session a registry change ended are told.
const (
	reasonGameRemoved = ops.ReasonGameRemoved
	reasonAddrChanged = ops.ReasonAddrChanged
)

var addrChanged = ops.AddrChanged

// stoppedText is "stopped 1 running session", "stopped 3 running
// sessions", or "no sessions were running".
func stoppedText(n int) string {
	switch n {
	case 0:
		return "no sessions were running"
	case 1:
		return "stopped 1 running session"
	}
	return "stopped " + strconv.Itoa(n) + " running sessions"
}
