package telnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The MSDP bytes, short, for building test input.
const (
	mV  = msdpVAR
	mL  = msdpVAL
	mTO = msdpTableOpen
	mTC = msdpTableClose
	mAO = msdpArrayOpen
	mAC = msdpArrayClose
)

// msdpSB wraps an (already escaped) MSDP body in IAC SB MSDP ... IAC SE.
func msdpSB(parts ...any) []byte { return b(IAC, SB, OptMSDP, b(parts...), IAC, SE) }

var willMSDP = b(IAC, WILL, OptMSDP)

func TestDecodeMSDPNegotiation(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "WILL answered DO, repeat ignored", input: b(willMSDP, willMSDP), replies: b(IAC, DO, OptMSDP)},
		{name: "DO refused: MSDP is the game's side", input: b(IAC, DO, OptMSDP), replies: b(IAC, WONT, OptMSDP)},
		{name: "NoMSDP refuses and ignores blocks", opts: Options{NoMSDP: true},
			input:   b(willMSDP, msdpSB(mV, "HEALTH", mL, "10"), "x"),
			events:  []string{`text "x"`},
			replies: b(IAC, DONT, OptMSDP)},
		{name: "block before agreement ignored", input: b(msdpSB(mV, "HEALTH", mL, "10"), "x"),
			events: []string{`text "x"`}},
		{name: "block after WONT ignored", input: b(willMSDP, msdpSB(mV, "A", mL, "1"), IAC, WONT, OptMSDP, msdpSB(mV, "B", mL, "2")),
			events:  []string{`msdp A "1"`},
			replies: b(IAC, DO, OptMSDP, IAC, DONT, OptMSDP)},
	})
}

func TestDecodeMSDP(t *testing.T) {
	do := b(IAC, DO, OptMSDP)
	cases := []decodeCase{
		{name: "one variable between text", input: b("a", msdpSB(mV, "HEALTH", mL, "100"), "b"),
			events: []string{`text "a"`, `msdp HEALTH "100"`, `text "b"`}},
		{name: "several variables in one block, in order",
			input:  msdpSB(mV, "HEALTH", mL, "100", mV, "MANA", mL, "5", mV, "HEALTH", mL, "99"),
			events: []string{`msdp HEALTH "100"`, `msdp MANA "5"`, `msdp HEALTH "99"`}},
		{name: "table", input: msdpSB(mV, "ROOM", mL, mTO, mV, "VNUM", mL, "6008", mV, "NAME", mL, "The Temple", mTC),
			events: []string{`msdp ROOM {"VNUM":"6008","NAME":"The Temple"}`}},
		{name: "array", input: msdpSB(mV, "REPORTABLE_VARIABLES", mL, mAO, mL, "HEALTH", mL, "MANA", mAC),
			events: []string{`msdp REPORTABLE_VARIABLES ["HEALTH","MANA"]`}},
		{name: "nested tables and arrays",
			input: msdpSB(mV, "ROOM", mL, mTO, mV, "EXITS", mL, mTO, mV, "n", mL, "6001", mV, "d", mL, "6010", mTC,
				mV, "TAGS", mL, mAO, mL, mTO, mV, "k", mL, "v", mTC, mL, mAO, mAC, mL, "x", mAC, mTC),
			events: []string{`msdp ROOM {"EXITS":{"n":"6001","d":"6010"},"TAGS":[{"k":"v"},[],"x"]}`}},
		{name: "several VALs are an array, at the top and in a table",
			input:  msdpSB(mV, "LIST", mL, "A", mL, mTO, mV, "t", mL, "1", mL, "2", mTC, mL, mAO, mL, "z", mAC, mV, "NEXT", mL, "n"),
			events: []string{`msdp LIST ["A",{"t":["1","2"]},["z"]]`, `msdp NEXT "n"`}},
		{name: "empty values: VAR without VAL, VAL without text, empty containers",
			input: msdpSB(mV, "A", mV, "B", mL, mV, "C", mL, mTO, mTC, mV, "D", mL, mAO, mAC,
				mV, "E", mL, mTO, mV, "x", mV, "y", mL, mTC, mV, "F", mL, mL, mV, "G", mL, mAO, mL, mL, mAC, mV, "H"),
			events: []string{`msdp A ""`, `msdp B ""`, `msdp C {}`, `msdp D []`, `msdp E {"x":"","y":""}`,
				`msdp F ["",""]`, `msdp G ["",""]`, `msdp H ""`}},
		{name: "empty block", input: msdpSB()},
		{name: "JSON escaping: quotes, backslash, controls, NUL, DEL, UTF-8",
			input:  msdpSB(mV, "S\"n", mL, "a\"b\\c\n\r\t\x00\x07\x1f\x7f é 𝄞"),
			events: []string{`msdp S"n "a\"b\\c\n\r\t\u0000\u0007\u001f\u007f é 𝄞"`}},
		{name: "IAC IAC and invalid UTF-8 become U+FFFD",
			input:  msdpSB(mV, "N\xc3", mL, "x", IAC, IAC, "\xe2\x82y", mTO),
			events: []string{`msdp-dropped N�: TABLE_OPEN without a VAL`}},
		{name: "IAC IAC in a value", input: msdpSB(mV, "N", mL, "x", IAC, IAC, "y\xe2\x82\xac"),
			events: []string{`msdp N "x�y€"`}},
		{name: "table keys may be empty", input: msdpSB(mV, "T", mL, mTO, mV, mL, "v", mTC),
			events: []string{`msdp T {"":"v"}`}},
		{name: "duplicate table keys kept in order", input: msdpSB(mV, "T", mL, mTO, mV, "k", mL, "1", mV, "k", mL, "2", mTC),
			events: []string{`msdp T {"k":"1","k":"2"}`}},
	}
	for i := range cases {
		cases[i].input = b(willMSDP, cases[i].input)
		cases[i].replies = do
	}
	runDecodeCases(t, cases)
}

// TestDecodeMSDPMalformed: every malformed shape drops the variable being
// read and the rest of its block with a reason, keeps what came before,
// and leaves the stream after the block untouched.
func TestDecodeMSDPMalformed(t *testing.T) {
	deep := func(n int, open ...any) []any {
		var out []any
		for range n {
			out = append(out, open...)
		}
		return out
	}
	cases := []struct {
		name   string
		body   []any
		events []string
	}{
		{"VAL without VAR", []any{mL, "x"}, []string{"msdp-dropped : VAL without a VAR"}},
		{"text before the first VAR", []any{"junk", mV, "A", mL, "1"}, []string{"msdp-dropped : text outside a VAL"}},
		{"VAR without a name", []any{mV, "A", mL, "1", mV, mL, "2"}, []string{`msdp A "1"`, "msdp-dropped : VAR without a name"}},
		{"stray TABLE_CLOSE at the top", []any{mV, "A", mL, "1", mTC, mV, "B", mL, "2"}, []string{"msdp-dropped A: TABLE_CLOSE outside a table"}},
		{"stray ARRAY_CLOSE at the top", []any{mV, "A", mL, "1", mV, "B", mL, "2", mAC}, []string{`msdp A "1"`, "msdp-dropped B: ARRAY_CLOSE outside an array"}},
		{"TABLE_CLOSE closes an array", []any{mV, "A", mL, mAO, mL, "1", mTC}, []string{"msdp-dropped A: TABLE_CLOSE outside a table"}},
		{"ARRAY_CLOSE closes a table", []any{mV, "A", mL, mTO, mV, "k", mL, "1", mAC}, []string{"msdp-dropped A: ARRAY_CLOSE outside an array"}},
		{"unclosed table", []any{mV, "A", mL, "1", mV, "B", mL, mTO, mV, "k", mL, "v"}, []string{`msdp A "1"`, "msdp-dropped B: TABLE_OPEN without TABLE_CLOSE"}},
		{"unclosed array", []any{mV, "A", mL, mAO, mL, "v"}, []string{"msdp-dropped A: ARRAY_OPEN without ARRAY_CLOSE"}},
		{"VAR inside an array", []any{mV, "A", mL, mAO, mV, "k", mL, "v", mAC}, []string{"msdp-dropped A: VAR inside an array"}},
		{"VAR after VAL inside an array", []any{mV, "A", mL, mAO, mL, mV, "k", mAC}, []string{"msdp-dropped A: VAR inside an array"}},
		{"VAL without VAR in a table", []any{mV, "A", mL, mTO, mL, "v", mTC}, []string{"msdp-dropped A: VAL without a VAR"}},
		{"TABLE_OPEN without VAL", []any{mV, "A", mTO, mTC}, []string{"msdp-dropped A: TABLE_OPEN without a VAL"}},
		{"ARRAY_OPEN after a string", []any{mV, "A", mL, "x", mAO, mAC}, []string{"msdp-dropped A: ARRAY_OPEN without a VAL"}},
		{"text after a table", []any{mV, "A", mL, mTO, mTC, "junk"}, []string{"msdp-dropped A: text outside a VAL"}},
		{"text inside an array outside a VAL", []any{mV, "A", mL, mAO, "junk", mAC}, []string{"msdp-dropped A: text outside a VAL"}},
		{"text in a table after a value", []any{mV, "A", mL, mTO, mV, "k", mL, mAO, mAC, "junk", mTC}, []string{"msdp-dropped A: text outside a VAL"}},
		{"33 tables deep", append(append([]any{mV, "D", mL}, deep(33, mTO, mV, "k", mL)...), "x"),
			[]string{"msdp-dropped D: nested deeper than 32"}},
		{"33 arrays deep", append([]any{mV, "D", mL}, deep(33, mAO, mL)...), []string{"msdp-dropped D: nested deeper than 32"}},
	}
	var dcs []decodeCase
	for _, tc := range cases {
		dcs = append(dcs, decodeCase{name: tc.name, input: b(willMSDP, "<", msdpSB(tc.body...), ">"),
			events: slices.Concat([]string{`text "<"`}, tc.events, []string{`text ">"`}), replies: b(IAC, DO, OptMSDP)})
	}
	runDecodeCases(t, dcs)
}

// TestMSDPDepthBounds: 32 levels decode; 10,000 levels of tables or
// arrays are dropped at the 33rd, with the parser's memory independent of
// the input's depth. The inputs are too long to split at every byte: they
// are decoded whole, one byte at a time and in slices of 7 bytes.
func TestMSDPDepthBounds(t *testing.T) {
	nest := func(n int, open, closer []byte, leaf string) []byte {
		return b(mV, "D", mL, bytes.Repeat(open, n), leaf, bytes.Repeat(closer, n))
	}
	tableOpen, tableClose := b(mTO, mV, "k", mL), b(mTC)
	arrayOpen, arrayClose := b(mAO, mL), b(mAC)
	want32 := `msdp D ` + strings.Repeat(`{"k":`, 32) + `"x"` + strings.Repeat("}", 32)
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"32 tables", nest(32, tableOpen, tableClose, "x"), want32},
		{"32 arrays", nest(32, arrayOpen, arrayClose, "x"), `msdp D ` + strings.Repeat("[", 32) + `"x"` + strings.Repeat("]", 32)},
		{"10,000 tables", nest(10000, tableOpen, tableClose, "x"), "msdp-dropped D: nested deeper than 32"},
		{"10,000 arrays", nest(10000, arrayOpen, arrayClose, "x"), "msdp-dropped D: nested deeper than 32"},
		{"10,000 openers, never closed", b(mV, "D", mL, bytes.Repeat(b(mAO, mL), 10000)), "msdp-dropped D: nested deeper than 32"},
		{"10,000 stray closers", b(mV, "D", mL, "x", bytes.Repeat(b(mTC), 10000)), "msdp-dropped D: TABLE_CLOSE outside a table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := b(willMSDP, msdpSB(tc.body), "after")
			want := []string{tc.want, `text "after"`}
			bytewise := slices.Collect(slices.Chunk(input, 1))
			for how, got := range map[string]result{
				"whole":              decodeChunks(t, Options{}, [][]byte{input}),
				"one byte at a time": decodeChunks(t, Options{}, bytewise),
				"slices of 7":        first(decodeSliced(t, Options{SliceBytes: 7}, [][]byte{input})),
			} {
				if !slices.Equal(got.events, want) {
					t.Errorf("%s: events %.200q, want %.200q", how, got.events, want)
				}
			}
			// The parser allocates its output and the event list, never per
			// level: a few allocations whatever the depth.
			if allocs := testing.AllocsPerRun(10, func() { parseMSDP(nil, tc.body) }); allocs > 12 {
				t.Errorf("parseMSDP made %v allocations", allocs)
			}
		})
	}
}

func first(r result, _ []string) result { return r }

// TestMSDPElementBound: a block past msdpMaxElements names and values
// delivers the variables before the bound and drops the rest.
func TestMSDPElementBound(t *testing.T) {
	var body []byte
	for i := range 3000 {
		body = b(body, mV, fmt.Sprint("V", i), mL, "1")
	}
	e := newEngine(t, Options{})
	got := mustDecode(t, e, b(willMSDP, msdpSB(body)))
	if len(got) != msdpMaxElements/2+1 || got[0] != `msdp V0 "1"` || got[len(got)-2] != `msdp V2047 "1"` {
		t.Fatalf("%d events, first %q, last two %q", len(got), got[0], got[len(got)-2:])
	}
	if want := "msdp-dropped V2048: more than 4096 names and values"; got[len(got)-1] != want {
		t.Errorf("last event %q, want %q", got[len(got)-1], want)
	}
	// Values count too: one variable with 5,000 VALs.
	got = mustDecode(t, e, msdpSB(mV, "L", bytes.Repeat(b(mL, "x"), 5000)))
	if want := []string{"msdp-dropped L: more than 4096 names and values"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestDecodeMSDPOverGMCP(t *testing.T) {
	gmcp := func(body string) []byte { return b(IAC, SB, OptGMCP, body, IAC, SE) }
	willGMCP := b(IAC, WILL, OptGMCP)
	hello := b(IAC, DO, OptGMCP,
		IAC, SB, OptGMCP, `Core.Hello {"client":"Trellis","version":""}`, IAC, SE,
		IAC, SB, OptGMCP, `Core.Supports.Set ["Char 1","Char.Vitals 1","Room 1","Comm 1"]`, IAC, SE)
	deepJSON := strings.Repeat(`{"k":`, 33) + `"x"` + strings.Repeat("}", 33)
	ok32 := strings.Repeat(`[`, 32) + `1` + strings.Repeat("]", 32)
	runDecodeCases(t, []decodeCase{
		{name: "members become MSDP events, compacted, in order",
			input:   b(willGMCP, gmcp(`MSDP { "HEALTH" : "100", "ROOM": {"EXITS": {"n": "6001"}, "N": [1, true, null]}, "HEALTH": 99 }`)),
			events:  []string{`msdp HEALTH "100"`, `msdp ROOM {"EXITS":{"n":"6001"},"N":[1,true,null]}`, "msdp HEALTH 99"},
			replies: hello},
		{name: "package name is case-insensitive", input: b(willGMCP, gmcp(`msdp {"A":"1"}`)),
			events: []string{`msdp A "1"`}, replies: hello},
		{name: "empty object", input: b(willGMCP, gmcp(`MSDP {}`)), replies: hello},
		{name: "not an object stays GMCP", input: b(willGMCP, gmcp(`MSDP ["A"]`), gmcp(`MSDP not json`), gmcp("MSDP")),
			events: []string{`gmcp MSDP ["A"]`, `gmcp MSDP "not json"`, "gmcp MSDP"}, replies: hello},
		{name: "NoMSDP leaves it GMCP", opts: Options{NoMSDP: true}, input: b(willGMCP, gmcp(`MSDP {"A":"1"}`)),
			events: []string{`gmcp MSDP {"A":"1"}`}, replies: hello},
		{name: "32 deep kept, 33 deep dropped with the rest",
			input:   b(willGMCP, gmcp(`MSDP {"A":`+ok32+`,"B":`+deepJSON+`,"C":"3"}`)),
			events:  []string{"msdp A " + ok32, "msdp-dropped B: nested deeper than 32"},
			replies: hello},
		{name: "empty name dropped", input: b(willGMCP, gmcp(`MSDP {"A":"1","":"2"}`)),
			events: []string{`msdp A "1"`, "msdp-dropped : VAR without a name"}, replies: hello},
	})

	// The element bound counts as the telnet form would.
	e := newEngine(t, Options{})
	mustDecode(t, e, willGMCP)
	items := strings.Repeat(`"x",`, 5000) + `"x"`
	got := mustDecode(t, e, gmcp(`MSDP {"A":"1","L":[`+items+`]}`))
	if want := []string{`msdp A "1"`, "msdp-dropped L: more than 4096 names and values"}; !slices.Equal(got, want) {
		t.Errorf("array past the bound: events %q, want %q", got, want)
	}
	got = mustDecode(t, e, gmcp(`MSDP {"L":[`+strings.Repeat(`[],`, 5000)+`[]]}`))
	if want := []string{"msdp-dropped L: more than 4096 names and values"}; !slices.Equal(got, want) {
		t.Errorf("array of arrays past the bound: events %q, want %q", got, want)
	}
	var members []string
	for i := range 2100 {
		members = append(members, fmt.Sprintf(`"V%d":"1"`, i))
	}
	got = mustDecode(t, e, gmcp(`MSDP {`+strings.Join(members, ",")+`}`))
	if len(got) != 2049 || got[2047] != `msdp V2047 "1"` || got[2048] != "msdp-dropped V2048: more than 4096 names and values" {
		t.Errorf("members past the bound: %d events, last %q", len(got), got[len(got)-2:])
	}
	// msdpFromJSON is only given valid JSON objects, but stays safe on
	// anything.
	for body, want := range map[string][]string{
		`x`:              {"msdp-dropped : GMCP MSDP body is not an object"},
		`["a"]`:          {"msdp-dropped : GMCP MSDP body is not an object"},
		`{"a":1,`:        {"msdp a 1", "msdp-dropped : GMCP MSDP body is not valid JSON"},
		`{1:2}`:          {"msdp-dropped : GMCP MSDP body is not valid JSON"},
		`{"a":[1,`:       {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":{"b"}`:     {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":1 "b"}`:    {"msdp a 1", "msdp-dropped : GMCP MSDP body is not valid JSON"},
		`{"a":[1 2]}`:    {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":{"k":1,}}`: {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":]`:         {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":,}`:        {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":"x`:        {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":["x`:       {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":{"k"`:      {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a":{1:2}}`:    {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"a" 1}`:        {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
		`{"\u00":1}`:     {"msdp-dropped : GMCP MSDP body is not valid JSON"},
		`{"a":1`:         {"msdp a 1", "msdp-dropped : GMCP MSDP body is not valid JSON"},
		`{"a":`:          {"msdp-dropped a: GMCP MSDP body is not valid JSON"},
	} {
		if got := render(msdpFromJSON(nil, []byte(body))); !slices.Equal(got, want) {
			t.Errorf("msdpFromJSON(%s) = %q, want %q", body, got, want)
		}
	}
	table := `{` + strings.Repeat(`"k":"v",`, 2100) + `"k":"v"}`
	got = mustDecode(t, e, gmcp(`MSDP {"T":`+table+`}`))
	if want := []string{"msdp-dropped T: more than 4096 names and values"}; !slices.Equal(got, want) {
		t.Errorf("table past the bound: events %q, want %q", got, want)
	}
}

func TestAppendMSDP(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []byte
	}{
		{"HEALTH", `"100"`, msdpSB(mV, "HEALTH", mL, "100")},
		{"HEALTH", ` 100 `, msdpSB(mV, "HEALTH", mL, "100")},
		{"X", `-1.5e3`, msdpSB(mV, "X", mL, "-1.5e3")},
		{"LIST", `"COMMANDS"`, msdpSB(mV, "LIST", mL, "COMMANDS")},
		{"REPORT", `["HEALTH","MANA"]`, msdpSB(mV, "REPORT", mL, "HEALTH", mL, "MANA")},
		{"UNREPORT", `["HEALTH"]`, msdpSB(mV, "UNREPORT", mL, "HEALTH")},
		{"SEND", `[]`, msdpSB(mV, "SEND")},
		{"RESET", `["REPORTABLE_VARIABLES"]`, msdpSB(mV, "RESET", mL, "REPORTABLE_VARIABLES")},
		{"ALIASES", `["a","b"]`, msdpSB(mV, "ALIASES", mL, mAO, mL, "a", mL, "b", mAC)},
		{"REPORT", `[["nested"]]`, msdpSB(mV, "REPORT", mL, mAO, mL, "nested", mAC)},
		{"CONF", `{"a":["x",{}],"":"e","b":{"c":"d"}}`,
			msdpSB(mV, "CONF", mL, mTO, mV, "a", mL, mAO, mL, "x", mL, mTO, mTC, mAC, mV, "", mL, "e", mV, "b", mL, mTO, mV, "c", mL, "d", mTC, mTC)},
		{"N\xffm", `"\u00ff\u2028"`, msdpSB(mV, "N", IAC, IAC, "m", mL, "ÿ\u2028")},
		{"D", strings.Repeat("[", 32) + strings.Repeat("]", 32), msdpSB(mV, "D", mL, bytes.Repeat(b(mAO, mL), 31), mAO, bytes.Repeat(b(mAC), 32))},
	} {
		got, err := AppendMSDP([]byte("x"), tc.name, json.RawMessage(tc.value))
		if err != nil || !bytes.Equal(got, b("x", tc.want)) {
			t.Errorf("AppendMSDP(%q, %s) = %q, %v\nwant %q", tc.name, tc.value, got, err, b("x", tc.want))
		}
	}
	for _, tc := range []struct{ name, value, why string }{
		{"", `"x"`, "empty variable name"},
		{"A\x01", `"x"`, "byte 1"},
		{"A\x00", `"x"`, "byte 0"},
		{"A", `"x\u0002"`, "byte 2"},
		{"A", `{"k\u0006":"v"}`, "byte 6"},
		{"A", `["\u0000"]`, "byte 0"},
		{"REPORT", `["\u0003"]`, "byte 3"},
		{"A", `true`, "no MSDP form"},
		{"A", `null`, "no MSDP form"},
		{"A", `{"k":false}`, "no MSDP form"},
		{"A", ``, "no value"},
		{"A", `  `, "no value"},
		{"A", `{"k":`, "invalid JSON"},
		{"A", `{"k" "v"}`, "invalid JSON"},
		{"A", `[1,`, "invalid JSON"},
		{"A", `["a"`, "invalid JSON"},
		{"A", `{"k":"v"`, "invalid JSON"},
		{"A", `{1:"v"}`, "invalid JSON"},
		{"A", `]`, "invalid JSON"},
		{"REPORT", `[`, "invalid JSON"},
		{"REPORT", `["a"`, "invalid JSON"},
		{"A", `"a" "b"`, "more than one JSON value"},
		{"A", `"a" }`, "more than one JSON value"},
		{"D", strings.Repeat("[", 33) + strings.Repeat("]", 33), "nested deeper than 32"},
		{"D", strings.Repeat(`{"k":`, 10000), "nested deeper than 32"},
		{"L", `[` + strings.Repeat(`"x",`, 4100) + `"x"]`, "more than 4096"},
		{"T", `{` + strings.Repeat(`"k":"x",`, 2100) + `"k":"x"}`, "more than 4096"},
	} {
		got, err := AppendMSDP([]byte("x"), tc.name, json.RawMessage(tc.value))
		if !errors.Is(err, ErrMSDPValue) || !strings.Contains(err.Error(), tc.why) || string(got) != "x" {
			t.Errorf("AppendMSDP(%q, %.40s) = %q, %v; want ErrMSDPValue saying %q", tc.name, tc.value, got, err, tc.why)
		}
	}
}

// TestEngineMSDP: the engine sends over MSDP once agreed, over GMCP when
// only GMCP is, and not at all otherwise.
func TestEngineMSDP(t *testing.T) {
	report := json.RawMessage(`["HEALTH", "MANA"]`)
	e := newEngine(t, Options{})
	if out, err := e.MSDP([]byte("x"), "REPORT", report); !errors.Is(err, ErrMSDPNotAgreed) || string(out) != "x" {
		t.Fatalf("before agreement: %q, %v", out, err)
	}
	mustDecode(t, e, b(IAC, WILL, OptGMCP))
	e.Replies(nil)
	out, err := e.MSDP(nil, "REPORT", report)
	if want := b(IAC, SB, OptGMCP, `MSDP {"REPORT":["HEALTH","MANA"]}`, IAC, SE); err != nil || !bytes.Equal(out, want) {
		t.Errorf("over GMCP: %q, %v\nwant %q", out, err, want)
	}
	if _, err := e.MSDP(nil, "REPORT", json.RawMessage(`[true]`)); !errors.Is(err, ErrMSDPValue) {
		t.Errorf("over GMCP, a value MSDP cannot carry: %v", err)
	}
	mustDecode(t, e, willMSDP)
	out, err = e.MSDP(nil, "REPORT", report)
	if want := msdpSB(mV, "REPORT", mL, "HEALTH", mL, "MANA"); err != nil || !bytes.Equal(out, want) {
		t.Errorf("over MSDP: %q, %v\nwant %q", out, err, want)
	}
	if _, err := e.MSDP(nil, "", report); !errors.Is(err, ErrMSDPValue) {
		t.Errorf("empty name over MSDP: %v", err)
	}

	// Longer than MaxSubneg: refused, whichever way it would go.
	long := json.RawMessage(`"` + strings.Repeat("x", 60) + `"`)
	for _, input := range [][]byte{willMSDP, b(IAC, WILL, OptGMCP)} {
		e := newEngine(t, Options{MaxSubneg: 64})
		mustDecode(t, e, input)
		if out, err := e.MSDP([]byte("x"), "NAME", long); !errors.Is(err, ErrMSDPValue) || !strings.Contains(err.Error(), "a subnegotiation may hold") || string(out) != "x" {
			t.Errorf("too long after %v: %q, %v", input, out, err)
		}
		if _, err := e.MSDP(nil, "NAME", long[:40:40]); !errors.Is(err, ErrMSDPValue) {
			t.Errorf("truncated JSON after %v: %v", input, err)
		}
	}

	// NoMSDP: GMCP alone does not carry MSDP either.
	e = newEngine(t, Options{NoMSDP: true})
	mustDecode(t, e, b(IAC, WILL, OptGMCP, willMSDP))
	if _, err := e.MSDP(nil, "REPORT", report); !errors.Is(err, ErrMSDPNotAgreed) {
		t.Errorf("NoMSDP: %v", err)
	}
}

// TestMSDPRoundTrip: what AppendMSDP encodes, the engine decodes to the
// same JSON (compacted; numbers come back as strings, as MSDP has no
// numbers).
func TestMSDPRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"HEALTH", `"100"`, `"100"`},
		{"HEALTH", `100`, `"100"`},
		{"ROOM", `{"VNUM": "6008", "EXITS": {"n": "6001", "u": ""}, "TAGS": ["a", [], {}]}`, `{"VNUM":"6008","EXITS":{"n":"6001","u":""},"TAGS":["a",[],{}]}`},
		{"REPORT", `["HEALTH","MANA"]`, `["HEALTH","MANA"]`},
		{"Q", `"quote \" backslash \\ tab \t é 𝄞"`, `"quote \" backslash \\ tab \t é 𝄞"`},
	} {
		sb, err := AppendMSDP(nil, tc.name, json.RawMessage(tc.value))
		if err != nil {
			t.Fatal(err)
		}
		e := newEngine(t, Options{})
		got := mustDecode(t, e, b(willMSDP, sb))
		if want := []string{"msdp " + tc.name + " " + tc.want}; !slices.Equal(got, want) {
			t.Errorf("%s %s: decoded %q, want %q", tc.name, tc.value, got, want)
		}
	}
}
