package telnet

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// mxpStates decodes input whole, split at every byte and one byte at a
// time, and returns the MXP states its events report (with "text" where
// text came between them) and the replies, failing unless all agree.
func mxpStates(t *testing.T, opts Options, input []byte) ([]string, []byte) {
	t.Helper()
	run := func(chunks [][]byte) ([]string, []byte) {
		e, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		var evs []Event
		var replies []byte
		for _, c := range chunks {
			if evs, err = e.Decode(c, evs); err != nil {
				t.Fatal(err)
			}
			replies = e.Replies(replies)
		}
		var got []string
		for _, ev := range evs {
			switch ev.Kind {
			case EventMXP:
				got = append(got, fmt.Sprintf("mxp %v", ev.MXP))
			case EventText:
				if n := len(got); n == 0 || got[n-1] != "text" {
					got = append(got, "text")
				}
			}
		}
		if len(got) > 0 && got[len(got)-1] != "text" && e.MXP() != (got[len(got)-1] == "mxp true") {
			t.Fatalf("MXP() = %v after %q", e.MXP(), got)
		}
		return got, replies
	}
	want, wantReplies := run([][]byte{input})
	for i := 1; i < len(input); i++ {
		got, r := run([][]byte{input[:i], input[i:]})
		if !slices.Equal(got, want) || !bytes.Equal(r, wantReplies) {
			t.Fatalf("split at %d: %q %v, whole %q %v", i, got, r, want, wantReplies)
		}
	}
	var bytewise [][]byte
	for i := range input {
		bytewise = append(bytewise, input[i:i+1])
	}
	if got, r := run(bytewise); !slices.Equal(got, want) || !bytes.Equal(r, wantReplies) {
		t.Fatalf("one byte at a time: %q %v, whole %q %v", got, r, want, wantReplies)
	}
	return want, wantReplies
}

// TestMXPNegotiation: MXP is agreed only for a game that opted in, in
// either direction (servers send WILL or DO), and EventMXP marks where in
// the text it starts and ends, once however both sides move.
func TestMXPNegotiation(t *testing.T) {
	on := Options{MXP: true}
	cases := []struct {
		name    string
		opts    Options
		input   []byte
		events  []string
		replies []byte
	}{
		{"refused by default: WILL", Options{}, b("a", IAC, WILL, OptMXP, "b"), []string{"text"}, b(IAC, DONT, OptMXP)},
		{"refused by default: DO", Options{}, b(IAC, DO, OptMXP), nil, b(IAC, WONT, OptMXP)},
		{"WILL", on, b("a", IAC, WILL, OptMXP, IAC, SB, OptMXP, IAC, SE, "b"),
			[]string{"text", "mxp true", "text"}, b(IAC, DO, OptMXP)},
		{"DO", on, b(IAC, DO, OptMXP, "b"), []string{"mxp true", "text"}, b(IAC, WILL, OptMXP)},
		{"both sides, then both off", on, b(IAC, WILL, OptMXP, IAC, DO, OptMXP, "x", IAC, WONT, OptMXP, "y", IAC, DONT, OptMXP, "z"),
			[]string{"mxp true", "text", "mxp false", "text"},
			b(IAC, DO, OptMXP, IAC, WILL, OptMXP, IAC, DONT, OptMXP, IAC, WONT, OptMXP)},
		{"repeat is not answered", on, b(IAC, WILL, OptMXP, IAC, WILL, OptMXP), []string{"mxp true"}, b(IAC, DO, OptMXP)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, replies := mxpStates(t, c.opts, c.input)
			if !slices.Equal(got, c.events) || !bytes.Equal(replies, c.replies) {
				t.Errorf("events %q replies %v, want %q %v", got, replies, c.events, c.replies)
			}
		})
	}
}
