package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/trellis-mud/trellis/internal/ops"
)

// outputFlag adds -o text|json to a flag set.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("o", "text", "output format: text (a table) or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usageErrorf("-o %q: want text or json", o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonLine is v as one line of JSON (for jsonl and event streams).
func jsonLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.Bytes()
}

// table writes aligned columns to stdout.
type table struct{ tw *tabwriter.Writer }

func newTable(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }
func (t *table) flush()             { t.tw.Flush() }

// The JSON the commands print (-o json, -format jsonl) is built by
// internal/ops, which the web console's API uses too: one spelling of each
// key for both. The names below keep this package's call sites short.
type (
	sessionJSON     = ops.Session
	leaseJSON       = ops.Lease
	sessionShowJSON = ops.SessionShow
	gameJSON        = ops.Game
)

var (
	toSessionJSON = ops.FromSession
	toLagJSON     = ops.FromLag
	toGameJSON    = ops.FromGame
	toEventJSON   = ops.FromEvent
	toOutputJSON  = ops.FromOutput
)
