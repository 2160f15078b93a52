package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// outputFlag adds -o text|json to a flag set.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("o", "text", "output format: text (a table) or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("%w: -o %q: want text or json", errUsage, o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
