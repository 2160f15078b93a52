package ops

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// The JSON of the operator views is built here, not from store's types,
// so that it has one style whatever store's Go names are: snake_case keys,
// times as RFC 3339 strings, durations as numbers of seconds in keys
// ending in _seconds, absent values as null.

// Session is one entry of `sessions ls` and GET /api/sessions.
type Session struct {
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

// FromSession is the view of a session record.
func FromSession(s store.SessionInfo) Session {
	return Session{User: s.Key.User, Game: s.Key.Game, State: s.State, Viewers: s.Viewers,
		Worker: s.Worker, SessionID: s.Session, Fence: s.Fence, Started: s.Started, Updated: s.Updated}
}

// Lease is the lease a worker holds on a session.
type Lease struct {
	Owner     string    `json:"owner"`
	SessionID string    `json:"session_id"`
	Fence     int64     `json:"fence"`
	Acquired  time.Time `json:"acquired,omitzero"`
	Renewed   time.Time `json:"renewed,omitzero"`
}

// FromLease is the view of a lease.
func FromLease(l store.Lease) Lease {
	return Lease{Owner: l.Owner, SessionID: l.Session, Fence: l.Fence, Acquired: l.Acquired, Renewed: l.Renewed}
}

// SessionShow is `sessions show -o json`: the session record (null when
// there is none) and the lease (null when no worker holds one, that is
// when the session is not running).
type SessionShow struct {
	User    string   `json:"user"`
	Game    string   `json:"game"`
	Running bool     `json:"running"`
	Session *Session `json:"session"`
	Lease   *Lease   `json:"lease"`
}

// Consumer is one consumer (a worker) of the control stream's group.
type Consumer struct {
	Name        string  `json:"name"`
	Pending     int64   `json:"pending"`
	IdleSeconds float64 `json:"idle_seconds"`
}

// DeadLetter is one entry of the dead-letter stream.
type DeadLetter struct {
	ID         string         `json:"id"`
	ControlID  string         `json:"control_id"`
	Reason     string         `json:"reason"`
	Deliveries int64          `json:"deliveries"`
	Command    *store.Command `json:"command"` // null when the entry could not be decoded (see raw)
	Raw        string         `json:"raw"`
}

// Lag is `ops lag -o json` and GET /api/control. lag is null when Redis
// cannot tell.
type Lag struct {
	Length            int64        `json:"length"`
	Lag               *int64       `json:"lag"`
	Pending           int64        `json:"pending"`
	DeadLetters       int64        `json:"dead_letters"`
	Consumers         []Consumer   `json:"consumers"`
	DeadLetterEntries []DeadLetter `json:"dead_letter_entries"`
	Shards            []Shard      `json:"shards"`
}

// Shard is one control stream; Lag is null when Redis cannot tell.
type Shard struct {
	Shard       int    `json:"shard"`
	Stream      string `json:"stream"`
	Length      int64  `json:"length"`
	Lag         *int64 `json:"lag"`
	Pending     int64  `json:"pending"`
	DeadLetters int64  `json:"dead_letters"`
}

// FromLag is the view of the control stream's status and dead letters.
func FromLag(st store.GroupStatus, letters []store.DeadLetterEntry) Lag {
	out := Lag{Length: st.Length, Pending: st.Pending, DeadLetters: st.DeadLetters,
		Consumers: []Consumer{}, DeadLetterEntries: []DeadLetter{}, Shards: []Shard{}}
	for _, sh := range st.Shards {
		v := Shard{Shard: sh.Shard, Stream: sh.Stream, Length: sh.Length, Pending: sh.Pending, DeadLetters: sh.DeadLetters}
		if sh.Lag >= 0 {
			lag := sh.Lag
			v.Lag = &lag
		}
		out.Shards = append(out.Shards, v)
	}
	if st.Lag >= 0 {
		lag := st.Lag
		out.Lag = &lag
	}
	for _, c := range st.Consumers {
		out.Consumers = append(out.Consumers, Consumer{Name: c.Name, Pending: c.Pending, IdleSeconds: c.Idle.Seconds()})
	}
	for _, l := range letters {
		d := DeadLetter{ID: l.ID, ControlID: l.ControlID, Reason: l.Reason, Raw: l.Raw}
		d.Deliveries, _ = strconv.ParseInt(l.Deliveries, 10, 64)
		if l.Command.Type != "" {
			c := l.Command
			d.Command = &c
		}
		out.DeadLetterEntries = append(out.DeadLetterEntries, d)
	}
	return out
}

// Game is a registry entry with every field, under the names a games file
// uses: `games ls -o json` imports back as it is, and the console's edit
// form sends it back as it got it.
type Game struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Description    string `json:"description"`
	Host           string `json:"host"`
	Port           int    `json:"port"`
	TLS            bool   `json:"tls"`
	TLSInsecure    bool   `json:"tls_insecure"`
	TLSCAFile      string `json:"tls_ca_file"`
	TLSPinSHA256   string `json:"tls_pin_sha256"`
	ProxyProtocol  string `json:"proxy_protocol"`
	Charset        string `json:"charset"`
	MNES           bool   `json:"mnes"`
	PasswordPrompt string `json:"password_prompt"`
	KeepControls   bool   `json:"keep_controls"`
	MXP            bool   `json:"mxp"`
	// The player's client (store/gameclient.go).
	Echo   string            `json:"echo"`
	Vitals []store.VitalSpec `json:"vitals"`
}

// FromGame is the view of a registry entry.
func FromGame(g store.Game) Game {
	return Game{ID: g.ID, Name: g.Name, Description: g.Description, Host: g.Host, Port: g.Port,
		TLS: g.TLS, TLSInsecure: g.TLSInsecure, TLSCAFile: g.TLSCAFile, TLSPinSHA256: g.TLSPinSHA256,
		ProxyProtocol: g.ProxyProtocol, Charset: g.Charset, MNES: g.MNES,
		PasswordPrompt: g.PasswordPrompt, KeepControls: g.KeepControls, MXP: g.MXP,
		Echo: g.Echo, Vitals: g.Vitals}
}

// Store is the registry entry the view describes.
func (g Game) Store() store.Game {
	return store.Game{ID: g.ID, Name: g.Name, Description: g.Description, Host: g.Host, Port: g.Port,
		TLS: g.TLS, TLSInsecure: g.TLSInsecure, TLSCAFile: g.TLSCAFile, TLSPinSHA256: g.TLSPinSHA256,
		ProxyProtocol: g.ProxyProtocol, Charset: g.Charset, MNES: g.MNES,
		PasswordPrompt: g.PasswordPrompt, KeepControls: g.KeepControls, MXP: g.MXP,
		Echo: g.Echo, Vitals: g.Vitals}
}

// Event is one lifecycle event.
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	Time        time.Time       `json:"time"`
	Subject     string          `json:"subject,omitempty"`
	Correlation string          `json:"correlation,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Version     int             `json:"version"`
}

// FromEvent is the view of an event.
func FromEvent(e store.Event) Event {
	return Event{ID: e.ID, Type: e.Type, Source: e.Source, Time: e.Time, Subject: e.Subject,
		Correlation: e.Correlation, Data: e.Data, Version: e.Version}
}

// Output is one transcript entry, under readable names (the stream itself
// stores one-letter keys). A redacted input entry has no text: the worker
// never recorded it.
type Output struct {
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

// FromOutput is the view of a transcript entry.
func FromOutput(o store.Output) Output {
	j := Output{ID: o.ID, Kind: string(o.Kind), Fence: o.Fence, Seq: o.Seq, Text: o.Text, Prompt: o.Prompt,
		Redacted: o.Redacted, Echo: o.Echo, State: o.State, Worker: o.Worker, Package: o.Package,
		Data: o.Data, Viewer: o.Viewer, InputSeq: o.InputSeq}
	if o.Time != 0 {
		j.Time = time.UnixMilli(o.Time).UTC()
	}
	return j
}
