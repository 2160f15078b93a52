package wire_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/trellis-mud/trellis/internal/wire"
)

// The web client is plain JavaScript with no build step, so it restates the
// protocol's names and numbers in tables of its own. These tests hold those
// tables to this package: a close code, error code or frame type added on
// one side and not the other fails here, not in a player's tab.

const staticDir = "../../edge/web/static"

func readJS(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(staticDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsTable returns the body of `const name = new Set([...])` or
// `new Map([...])` in src.
func jsTable(t *testing.T, src, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?s)const ` + name + ` = new (?:Set|Map)\(\[(.*?)\]\);`)
	m := re.FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("protocol.js: no table %s (const %s = new Set([...]) or new Map([...])); if it was renamed, rename it here", name, name)
	}
	return m[1]
}

var (
	jsString  = regexp.MustCompile(`'([^']*)'`)
	jsMapKey  = regexp.MustCompile(`(?m)^\s*\[(\d+),`)
	jsCodeIs  = regexp.MustCompile(`code === (\d+)`)
	jsTypeKey = regexp.MustCompile(`type: '([a-z_]+)'`)
)

func strings(body string) []string {
	var out []string
	for _, m := range jsString.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

func ints(re *regexp.Regexp, body string) []int {
	var out []int
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func sorted[T ~string | ~int](s []T) []T {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestJSCloseCodes(t *testing.T) {
	src := readJS(t, "protocol.js")
	if got, want := ints(jsMapKey, jsTable(t, src, "FATAL_CLOSE_CODES")), sorted(wire.FinalCloseCodes); !slices.Equal(got, want) {
		t.Errorf("protocol.js FATAL_CLOSE_CODES has %v, wire.FinalCloseCodes %v", got, want)
	}
	// Every code closeMessage names is one the edge sends.
	for _, code := range ints(jsCodeIs, src) {
		if !slices.Contains(wire.CloseCodes, code) {
			t.Errorf("protocol.js compares a close code with %d, which the edge never sends", code)
		}
	}
}

func TestJSErrorCodes(t *testing.T) {
	src := readJS(t, "protocol.js")
	var fatal []string
	for code, close := range wire.ErrorClose {
		if wire.Final(close) {
			fatal = append(fatal, code)
		}
	}
	if got, want := strings(jsTable(t, src, "FATAL_ERRORS")), sorted(fatal); !slices.Equal(got, want) {
		t.Errorf("protocol.js FATAL_ERRORS has %v; the error codes the edge follows with a final close are %v", got, want)
	}
	if got, want := strings(jsTable(t, src, "KEEP_LINE_ERRORS")), sorted(wire.LineRefused); !slices.Equal(got, want) {
		t.Errorf("protocol.js KEEP_LINE_ERRORS has %v, wire.LineRefused %v", got, want)
	}
	for _, code := range strings(jsTable(t, src, "OUTPUT_ERRORS")) {
		if !slices.Contains(wire.ErrorCodes, code) {
			t.Errorf("protocol.js OUTPUT_ERRORS has %q, which is no error code of the edge", code)
		}
	}
}

func TestJSFrameTypes(t *testing.T) {
	src := readJS(t, "protocol.js")
	// pong is left out on purpose: parseServerFrame drops it, and
	// connection.js takes any frame as the answer to its probe.
	want := slices.DeleteFunc(slices.Clone(wire.ServerTypes), func(s string) bool { return s == wire.TypePong })
	if got := strings(jsTable(t, src, "SERVER_TYPES")); !slices.Equal(got, sorted(want)) {
		t.Errorf("protocol.js SERVER_TYPES has %v; the edge sends %v (and pong)", got, sorted(want))
	}
	// The client's own messages: built in protocol.js, the ping in
	// connection.js.
	var sent []string
	for _, name := range []string{"protocol.js", "connection.js"} {
		for _, m := range jsTypeKey.FindAllStringSubmatch(readJS(t, name), -1) {
			sent = append(sent, m[1])
		}
	}
	slices.Sort(sent)
	if got := slices.Compact(sent); !slices.Equal(got, sorted(wire.ClientTypes)) {
		t.Errorf("the web client sends message types %v; wire.ClientTypes is %v", got, sorted(wire.ClientTypes))
	}
}

// TestJSBehaviour runs protocol.js in node and asks it, for every code of
// this package, what it does: the tables above could agree with the Go side
// while the functions consulting them do not.
func TestJSBehaviour(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (make test-node needs it too)")
	}
	abs, err := filepath.Abs(filepath.Join(staticDir, "protocol.js"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{
		"close":  append(slices.Clone(wire.CloseCodes), 1000, 1005, 1006),
		"errors": wire.ErrorCodes,
	})
	script := `import * as p from ` + strconv.Quote("file://"+abs) + `;
const q = JSON.parse(process.argv[1]);
const out = { reconnect: {}, fatal: {}, keep: {} };
for (const c of q.close) out.reconnect[c] = p.shouldReconnect(c);
for (const e of q.errors) { out.fatal[e] = p.errorIsFatal(e); out.keep[e] = p.errorKeepsLine(e); }
console.log(JSON.stringify(out));`
	cmd := exec.Command(node, "--input-type=module", "-e", script, string(in))
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got struct {
		Reconnect map[string]bool
		Fatal     map[string]bool
		Keep      map[string]bool
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("node said %q: %v", b, err)
	}
	for code, again := range got.Reconnect {
		n, _ := strconv.Atoi(code)
		if again == wire.Final(n) {
			t.Errorf("shouldReconnect(%d) = %v; wire.Final is %v", n, again, wire.Final(n))
		}
	}
	for _, code := range wire.ErrorCodes {
		close, closes := wire.ErrorClose[code]
		if want := closes && wire.Final(close); got.Fatal[code] != want {
			t.Errorf("errorIsFatal(%q) = %v, want %v", code, got.Fatal[code], want)
		}
		if want := slices.Contains(wire.LineRefused, code); got.Keep[code] != want {
			t.Errorf("errorKeepsLine(%q) = %v, want %v", code, got.Keep[code], want)
		}
	}
}
