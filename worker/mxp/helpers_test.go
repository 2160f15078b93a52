package mxp

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// run feeds chunks to a fresh decoder and returns the text and replies.
func run(cfg Config, enabled bool, chunks [][]byte) (string, string) {
	d := New(cfg)
	d.SetEnabled(enabled)
	var out, replies []byte
	for _, c := range chunks {
		out = d.Feed(out, c)
		replies = d.Replies(replies)
	}
	return string(out), string(replies)
}

// decodeAllSplits decodes input whole, split at every byte and one byte
// at a time, fails unless all agree, and returns the whole result.
func decodeAllSplits(t testing.TB, cfg Config, enabled bool, input string) (string, string) {
	t.Helper()
	in := []byte(input)
	out, replies := run(cfg, enabled, [][]byte{in})
	for i := 1; i < len(in); i++ {
		o, r := run(cfg, enabled, [][]byte{in[:i], in[i:]})
		if o != out || r != replies {
			t.Fatalf("split at %d:\n got %q %q\nwant %q %q", i, o, r, out, replies)
		}
	}
	bytewise := make([][]byte, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	if o, r := run(cfg, enabled, bytewise); o != out || r != replies {
		t.Fatalf("one byte at a time:\n got %q %q\nwant %q %q", o, r, out, replies)
	}
	checkOutput(t, out)
	return out, replies
}

// checkOutput checks the inline spec's promises on decoder output: every
// OSC 7701 the decoder emits is well formed (JSON with 1..8 commands of at
// most 256 bytes without controls, hints absent or one per command, at
// most 4 KiB), command links never nest and are closed before each
// newline, and no C1 control survives. (checkHTTP checks OSC 8.)
// It returns how many command links out opens.
func checkOutput(t testing.TB, out string) (links int) {
	t.Helper()
	if strings.ContainsAny(out, "\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f") {
		t.Fatalf("C1 control in output %q", out)
	}
	open := ""
	for i := 0; i < len(out); i++ {
		if out[i] == '\n' && open == "7701" {
			t.Fatalf("command link open at a newline in %q", out)
		}
		if out[i] != esc || i+1 >= len(out) || out[i+1] != ']' {
			continue
		}
		end := strings.Index(out[i:], "\x1b\\")
		bel := strings.IndexByte(out[i:], bel)
		if bel >= 0 && (end < 0 || bel < end) {
			end = bel
		}
		if end < 0 {
			t.Fatalf("unterminated OSC at %d in %q", i, out)
		}
		payload := out[i+2 : i+end]
		i += end
		num, rest, _ := strings.Cut(payload, ";")
		if strings.TrimLeft(num, "0") != "7701" {
			continue
		}
		if len(payload) > maxOSCBytes {
			t.Fatalf("OSC 7701 of %d bytes", len(payload))
		}
		if rest == "" {
			if open != "7701" {
				t.Fatalf("OSC 7701 close without an open link in %q", out)
			}
			open = ""
			continue
		}
		if open != "" {
			t.Fatalf("nested link in %q", out)
		}
		open = "7701"
		links++
		var p struct {
			Cmds   []string `json:"cmds"`
			Hints  []string `json:"hints"`
			Prompt *bool    `json:"prompt"`
		}
		dec := json.NewDecoder(strings.NewReader(rest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || p.Prompt == nil {
			t.Fatalf("OSC 7701 payload %q: %v", rest, err)
		}
		if len(p.Cmds) < 1 || len(p.Cmds) > maxCmds || p.Hints != nil && len(p.Hints) != len(p.Cmds) {
			t.Fatalf("OSC 7701 payload %q: %d cmds, %d hints", rest, len(p.Cmds), len(p.Hints))
		}
		for _, c := range append(p.Cmds, p.Hints...) {
			if len(c) > maxCmdBytes || strings.IndexFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				t.Fatalf("OSC 7701 payload %q: bad string %q", rest, c)
			}
		}
	}
	// A link may be open at the end: its </send> or newline is still to come.
	return links
}

// osc8URIs lists the URIs of the OSC 8 openings in out.
func osc8URIs(out string) []string {
	var uris []string
	for _, part := range strings.Split(out, "\x1b]8;")[1:] {
		_, rest, _ := strings.Cut(part, ";")
		uri, _, _ := strings.Cut(rest, "\x1b\\")
		uri, _, _ = strings.Cut(uri, "\x07")
		if uri != "" {
			uris = append(uris, uri)
		}
	}
	return uris
}

func checkHTTP(t testing.TB, uris []string) {
	t.Helper()
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" && p.Scheme != "https" {
			t.Fatalf("OSC 8 link to %q", u)
		}
	}
}

// sendOSC is the OSC 7701 opening for one command, as the decoder writes it.
func sendOSC(cmds []string, hints []string, prompt bool) string {
	p, _ := json.Marshal(struct {
		Cmds   []string `json:"cmds"`
		Hints  []string `json:"hints,omitempty"`
		Prompt bool     `json:"prompt"`
	}{cmds, hints, prompt})
	return "\x1b]7701;" + string(p) + "\x1b\\"
}

const sendClose = "\x1b]7701;\x1b\\"
