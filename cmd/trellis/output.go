package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellis-mud/trellis/store"
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

// The JSON the commands print (-o json, -format jsonl) is built here, not
// from store's types, so that it has one style whatever store's Go names
// are: snake_case keys, times as RFC 3339 strings, durations as numbers
// of seconds in keys ending in _seconds, absent values as null.

func seconds(d time.Duration) float64 { return d.Seconds() }

type sessionJSON struct {
	User      string    `json:"user"`
	Game      string    `json:"game"`
	State     string    `json:"state"`
	Viewers   int       `json:"viewers"`
	Worker    string    `json:"worker"`
	SessionID string    `json:"session_id"`
	Fence     int64     `json:"fence"`
	Started   time.Time `json:"started,omitzero"`
	Updated   time.Time `json:"updated,omitzero"`
}

func toSessionJSON(s store.SessionInfo) sessionJSON {
	return sessionJSON{User: s.Key.User, Game: s.Key.Game, State: s.State, Viewers: s.Viewers,
		Worker: s.Worker, SessionID: s.Session, Fence: s.Fence, Started: s.Started, Updated: s.Updated}
}

type leaseJSON struct {
	Owner     string    `json:"owner"`
	SessionID string    `json:"session_id"`
	Fence     int64     `json:"fence"`
	Acquired  time.Time `json:"acquired,omitzero"`
	Renewed   time.Time `json:"renewed,omitzero"`
}

// sessionShowJSON is `sessions show -o json`: the session record (null
// when there is none) and the lease (null when no worker holds one, that
// is when the session is not running).
type sessionShowJSON struct {
	User    string       `json:"user"`
	Game    string       `json:"game"`
	Running bool         `json:"running"`
	Session *sessionJSON `json:"session"`
	Lease   *leaseJSON   `json:"lease"`
}

type consumerJSON struct {
	Name        string  `json:"name"`
	Pending     int64   `json:"pending"`
	IdleSeconds float64 `json:"idle_seconds"`
}

type deadLetterJSON struct {
	ID         string         `json:"id"`
	ControlID  string         `json:"control_id"`
	Reason     string         `json:"reason"`
	Deliveries int64          `json:"deliveries"`
	Command    *store.Command `json:"command"` // null when the entry could not be decoded (see raw)
	Raw        string         `json:"raw"`
}

// lagJSON is `ops lag -o json`. lag is null when Redis cannot tell.
type lagJSON struct {
	Length            int64            `json:"length"`
	Lag               *int64           `json:"lag"`
	Pending           int64            `json:"pending"`
	DeadLetters       int64            `json:"dead_letters"`
	Consumers         []consumerJSON   `json:"consumers"`
	DeadLetterEntries []deadLetterJSON `json:"dead_letter_entries"`
}

func toLagJSON(st store.GroupStatus, letters []store.DeadLetterEntry) lagJSON {
	out := lagJSON{Length: st.Length, Pending: st.Pending, DeadLetters: st.DeadLetters,
		Consumers: []consumerJSON{}, DeadLetterEntries: []deadLetterJSON{}}
	if st.Lag >= 0 {
		lag := st.Lag
		out.Lag = &lag
	}
	for _, c := range st.Consumers {
		out.Consumers = append(out.Consumers, consumerJSON{Name: c.Name, Pending: c.Pending, IdleSeconds: seconds(c.Idle)})
	}
	for _, l := range letters {
		d := deadLetterJSON{ID: l.ID, ControlID: l.ControlID, Reason: l.Reason, Raw: l.Raw}
		d.Deliveries, _ = strconv.ParseInt(l.Deliveries, 10, 64)
		if l.Command.Type != "" {
			c := l.Command
			d.Command = &c
		}
		out.DeadLetterEntries = append(out.DeadLetterEntries, d)
	}
	return out
}

// gameJSON is a registry entry with every field, under the names a games
// file uses: `games ls -o json` imports back as it is.
type gameJSON struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Description    string `json:"description"`
	Host           string `json:"host"`
	Port           int    `json:"port"`
	TLS            bool   `json:"tls"`
	TLSInsecure    bool   `json:"tls_insecure"`
	Charset        string `json:"charset"`
	MNES           bool   `json:"mnes"`
	PasswordPrompt string `json:"password_prompt"`
	KeepControls   bool   `json:"keep_controls"`
}

func toGameJSON(g store.Game) gameJSON {
	return gameJSON{ID: g.ID, Name: g.Name, Description: g.Description, Host: g.Host, Port: g.Port,
		TLS: g.TLS, TLSInsecure: g.TLSInsecure, Charset: g.Charset, MNES: g.MNES,
		PasswordPrompt: g.PasswordPrompt, KeepControls: g.KeepControls}
}

type eventJSON struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	Time        time.Time       `json:"time"`
	Subject     string          `json:"subject,omitempty"`
	Correlation string          `json:"correlation,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Version     int             `json:"version"`
}

func toEventJSON(e store.Event) eventJSON {
	return eventJSON{ID: e.ID, Type: e.Type, Source: e.Source, Time: e.Time, Subject: e.Subject,
		Correlation: e.Correlation, Data: e.Data, Version: e.Version}
}

// outputJSON is one transcript entry of `replay transcript -format jsonl`,
// under readable names (the stream itself stores one-letter keys).
type outputJSON struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Time     time.Time       `json:"time,omitzero"`
	Fence    int64           `json:"fence,omitempty"`
	Seq      uint64          `json:"seq,omitempty"`
	Text     string          `json:"text,omitempty"`
	Prompt   bool            `json:"prompt,omitempty"`
	Redacted bool            `json:"redacted,omitempty"`
	Echo     bool            `json:"echo,omitempty"`
	State    string          `json:"state,omitempty"`
	Worker   string          `json:"worker,omitempty"`
	Package  string          `json:"package,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Viewer   string          `json:"viewer,omitempty"`
	InputSeq uint64          `json:"input_seq,omitempty"`
}

func toOutputJSON(o store.Output) outputJSON {
	j := outputJSON{ID: o.ID, Kind: string(o.Kind), Fence: o.Fence, Seq: o.Seq, Text: o.Text, Prompt: o.Prompt,
		Redacted: o.Redacted, Echo: o.Echo, State: o.State, Worker: o.Worker, Package: o.Package,
		Data: o.Data, Viewer: o.Viewer, InputSeq: o.InputSeq}
	if o.Time != 0 {
		j.Time = time.UnixMilli(o.Time).UTC()
	}
	return j
}
