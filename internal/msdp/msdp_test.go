package msdp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        []byte
	}{
		{"REPORT", `["HEALTH","MANA"]`, []byte("\x01REPORT\x02HEALTH\x02MANA")},
		{"ROOM", `{"EXITS":{"n":"6001"}}`, []byte("\x01ROOM\x02\x03\x01EXITS\x02\x03\x01n\x026001\x04\x04")},
		{"LIST", `"COMMANDS"`, []byte("\x01LIST\x02COMMANDS")},
		{"X", `[1,"a"]`, []byte("\x01X\x02\x05\x021\x02a\x06")}, // each element after a VAL
	} {
		got, err := Body(tc.name, json.RawMessage(tc.value))
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("Body(%s, %s) = %q, %v; want %q", tc.name, tc.value, got, err, tc.want)
		}
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for _, tc := range []struct{ name, value string }{
		{"", `"x"`}, {"A\x01B", `"x"`}, {"X", `"a\u0002b"`}, {"X", `true`}, {"X", `null`},
		{"X", `{"a":`}, {"X", `"a" "b"`}, {"X", deep}, {"X", ``},
	} {
		if _, err := Body(tc.name, json.RawMessage(tc.value)); !errors.Is(err, ErrValue) {
			t.Errorf("Body(%q, %q) = %v, want ErrValue", tc.name, tc.value, err)
		} else if strings.Contains(err.Error(), "a\x02b") {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}
