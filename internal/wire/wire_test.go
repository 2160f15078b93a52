package wire_test

import (
	"slices"
	"testing"

	"github.com/trellis-mud/trellis/internal/wire"
)

func TestTablesAgree(t *testing.T) {
	for _, c := range wire.FinalCloseCodes {
		if !slices.Contains(wire.CloseCodes, c) {
			t.Errorf("final close code %d is not in CloseCodes", c)
		}
	}
	for e, c := range wire.ErrorClose {
		if !slices.Contains(wire.ErrorCodes, e) || !slices.Contains(wire.CloseCodes, c) {
			t.Errorf("ErrorClose %q -> %d: unknown error or close code", e, c)
		}
	}
	for c, e := range wire.CloseError {
		if !slices.Contains(wire.ErrorCodes, e) || !slices.Contains(wire.CloseCodes, c) {
			t.Errorf("CloseError %d -> %q: unknown error or close code", c, e)
		}
	}
	for e, c := range wire.ErrorClose {
		if wire.CloseError[c] != e {
			t.Errorf("ErrorClose says %q closes with %d, CloseError says %d comes with %q", e, c, c, wire.CloseError[c])
		}
	}
	for _, e := range wire.LineRefused {
		if !slices.Contains(wire.ErrorCodes, e) {
			t.Errorf("LineRefused %q is not in ErrorCodes", e)
		}
	}
	for _, code := range []int{1000, 1006, wire.CloseTooSlow, wire.CloseGoingAway, wire.CloseInternal} {
		if wire.Final(code) {
			t.Errorf("Final(%d) = true", code)
		}
	}
}
