package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-mud/trellis/internal/ops"
	"github.com/trellis-mud/trellis/store"
)

// event appends an operator action to the event log. The action already
// happened: a failure to record it is logged, not reported to the page.
func (s *Server) event(r *http.Request, typ string, key store.SessionKey, correlation string, data map[string]any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if _, err := s.st.AppendEvent(ctx, store.NewEvent(typ, s.source, key, correlation, data)); err != nil {
		s.log.Warn("append operator event failed", "type", typ, "err", err)
	}
}

// storeError answers a store failure: the page shows the message, the log
// keeps the detail.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("console request failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "Redis did not answer: "+err.Error())
}

// decodeBody reads a JSON body into v, refusing unknown fields (a typo
// must not silently drop a setting).
func decodeBody(r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON body: %v", err)
	}
	return nil
}

func sessionKey(r *http.Request) (store.SessionKey, bool) {
	k := store.SessionKey{User: r.URL.Query().Get("user"), Game: r.URL.Query().Get("game")}
	return k, k.User != "" && k.Game != ""
}

func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := s.st.ListSessions(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Key.User != list[j].Key.User {
			return list[i].Key.User < list[j].Key.User
		}
		return list[i].Key.Game < list[j].Key.Game
	})
	out := make([]ops.Session, 0, len(list))
	for _, si := range list {
		out = append(out, ops.FromSession(si))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, _ string) {
	key, ok := sessionKey(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "want ?user=USER&game=GAME")
		return
	}
	si, found, err := s.st.GetSession(r.Context(), key)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	lease, leased, err := s.st.GetLease(r.Context(), key)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !found && !leased {
		writeError(w, http.StatusNotFound, "no session for "+key.String())
		return
	}
	out := ops.SessionShow{User: key.User, Game: key.Game, Running: leased}
	if found {
		sj := ops.FromSession(si)
		out.Session = &sj
	}
	if leased {
		lj := ops.FromLease(lease)
		out.Lease = &lj
	}
	writeJSON(w, http.StatusOK, out)
}

// defaultKillReason is what the player is told, as with `sessions kill`.
const defaultKillReason = "stopped by an operator"

func (s *Server) serveKill(w http.ResponseWriter, r *http.Request, op string) {
	var body struct {
		User   string `json:"user"`
		Game   string `json:"game"`
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, maxBody, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := store.SessionKey{User: body.User, Game: body.Game}
	if key.User == "" || key.Game == "" {
		writeError(w, http.StatusBadRequest, "want user and game")
		return
	}
	reason := strings.TrimSpace(body.Reason)
	if reason == "" {
		reason = defaultKillReason
	}
	if len(reason) > 200 {
		writeError(w, http.StatusBadRequest, "reason: at most 200 bytes")
		return
	}
	correlation := uuid.NewString()
	id, running, err := ops.StopSession(r.Context(), s.st, key, reason, correlation)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !running {
		writeError(w, http.StatusNotFound, "no running session for "+key.String())
		return
	}
	s.log.Info("operator killed a session", "operator", op, "session", key.String(), "reason", reason,
		"control_id", id, "correlation", correlation)
	s.event(r, store.EvOperatorSessionKilled, key, correlation,
		map[string]any{"operator": op, "reason": reason, "control_id": id})
	writeJSON(w, http.StatusOK, map[string]string{"control_id": id, "correlation": correlation})
}

// transcriptPage bounds one transcript read; the page asks for the next.
const transcriptPage = 1000

// transcriptJSON is one page of a transcript, oldest first. next is the
// id to pass as after for the following page.
type transcriptJSON struct {
	User    string       `json:"user"`
	Game    string       `json:"game"`
	Entries []ops.Output `json:"entries"`
	Next    string       `json:"next"`
	More    bool         `json:"more"`
}

func (s *Server) serveTranscript(w http.ResponseWriter, r *http.Request, _ string) {
	key, ok := sessionKey(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "want ?user=USER&game=GAME")
		return
	}
	from, after := "-", r.URL.Query().Get("after")
	if after != "" {
		if !store.ValidStreamID(after) {
			writeError(w, http.StatusBadRequest, "after: not a stream id")
			return
		}
		from = "(" + after
	}
	page, err := s.st.OutputRange(r.Context(), key, from, "+", transcriptPage+1)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := transcriptJSON{User: key.User, Game: key.Game, Entries: []ops.Output{}, Next: after}
	if len(page) > transcriptPage {
		page, out.More = page[:transcriptPage], true
	}
	for _, o := range page {
		// GMCP and MSDP are the game's data for the client, not the
		// transcript an operator reads; they stay in the stream for `replay`.
		if o.Kind != store.OutGMCP && o.Kind != store.OutMSDP {
			out.Entries = append(out.Entries, ops.FromOutput(o))
		}
		out.Next = o.ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, _ string) {
	dead := int64(50)
	if v := r.URL.Query().Get("dead"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1000 {
			writeError(w, http.StatusBadRequest, "dead: want 0 to 1000")
			return
		}
		dead = n
	}
	status, err := s.st.ControlStatus(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	letters, err := s.st.DeadLetters(r.Context(), dead)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ops.FromLag(status, letters))
}

// Health judgements of the cluster view. An edge beats every 5s and its
// heartbeat lives 15s: a beat older than staleBeat means it is late. A
// worker reads the control stream at least every 500ms: idle longer than
// staleWorker means it has stopped reading.
const (
	staleBeat   = 10 * time.Second
	staleWorker = 10 * time.Second
)

type edgeJSON struct {
	ID         string    `json:"id"`
	LastBeat   time.Time `json:"last_beat,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	Healthy    bool      `json:"healthy"`
}

// workerJSON is one worker. A worker has two names: its consumer name
// in the control group (TRELLIS_WORKER_NAME, stable across restarts) and
// the id of this run, which owns its sessions and leases; the event log's
// worker.started joins them.
type workerJSON struct {
	ID   string `json:"id,omitempty"`   // this run's id ("" when no recent event names it)
	Name string `json:"name,omitempty"` // its consumer name
	// State is its last lifecycle event (started, draining, stopped,
	// self_fenced), "" when none is in the log's recent tail.
	State      string    `json:"state,omitempty"`
	StateSince time.Time `json:"state_since,omitzero"`
	// Consumer is false for a worker not in the control stream's group.
	Consumer    bool    `json:"consumer"`
	Pending     int64   `json:"pending"`
	IdleSeconds float64 `json:"idle_seconds"`
	Sessions    int     `json:"sessions"`
	Healthy     bool    `json:"healthy"`
}

type clusterJSON struct {
	Edges   []edgeJSON   `json:"edges"`
	Workers []workerJSON `json:"workers"`
}

// workerScan bounds how much of the log's tail the cluster view reads
// for workers' lifecycle events.
const workerScan = 4

func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request, _ string) {
	ctx := r.Context()
	edges, err := s.st.Edges(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	status, err := s.st.ControlStatus(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	sessions, err := s.st.ListSessions(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	now := time.Now()
	out := clusterJSON{Edges: []edgeJSON{}, Workers: []workerJSON{}}
	for _, e := range edges {
		age := now.Sub(e.Last)
		out.Edges = append(out.Edges, edgeJSON{ID: e.ID, LastBeat: e.Last, AgeSeconds: max(age, 0).Seconds(),
			Healthy: !e.Last.IsZero() && age < staleBeat})
	}

	// Runs by id: from the newest lifecycle event of each, and the
	// sessions they own.
	runs := map[string]*workerJSON{}
	run := func(id string) *workerJSON {
		if runs[id] == nil {
			runs[id] = &workerJSON{ID: id}
		}
		return runs[id]
	}
	before := "+"
	for range workerScan {
		page, err := s.st.RecentEvents(ctx, before, eventsPage)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		for _, e := range page {
			before = "(" + e.ID
			id, ok := strings.CutPrefix(e.Source, "worker/")
			if !ok || !strings.HasPrefix(e.Type, "trellis.worker.") {
				continue
			}
			wj := run(id)
			if wj.State == "" {
				wj.State, wj.StateSince = strings.TrimPrefix(e.Type, "trellis.worker."), e.Time
			}
			if e.Type == store.EvWorkerStarted && wj.Name == "" {
				var d struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(e.Data, &d) == nil {
					wj.Name = d.Name
				}
			}
		}
		if len(page) < eventsPage {
			break
		}
	}
	for _, si := range sessions {
		if si.Worker != "" {
			run(si.Worker).Sessions++
		}
	}
	// The newest run of each consumer name gets the consumer's figures.
	consumers := map[string]store.ConsumerStatus{}
	for _, c := range status.Consumers {
		consumers[c.Name] = c
	}
	claimed := map[string]bool{}
	ids := make([]string, 0, len(runs))
	for id := range runs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return runs[ids[i]].StateSince.After(runs[ids[j]].StateSince) })
	for _, id := range ids {
		wj := runs[id]
		gone := wj.State == "stopped" || wj.State == "self_fenced"
		if c, ok := consumers[wj.Name]; ok && wj.Name != "" && !claimed[wj.Name] && !gone {
			claimed[wj.Name] = true
			wj.Consumer, wj.Pending, wj.IdleSeconds = true, c.Pending, c.Idle.Seconds()
			wj.Healthy = c.Idle < staleWorker
		}
		if gone && wj.Sessions == 0 {
			continue // a past run: the log has it
		}
		out.Workers = append(out.Workers, *wj)
	}
	for _, c := range status.Consumers {
		if !claimed[c.Name] {
			out.Workers = append(out.Workers, workerJSON{Name: c.Name, Consumer: true, Pending: c.Pending,
				IdleSeconds: c.Idle.Seconds(), Healthy: c.Idle < staleWorker})
		}
	}
	sort.Slice(out.Workers, func(i, j int) bool {
		a, b := out.Workers[i], out.Workers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	writeJSON(w, http.StatusOK, out)
}

// Games.

func (s *Server) serveGames(w http.ResponseWriter, r *http.Request, _ string) {
	games, err := s.st.ListGames(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := make([]ops.Game, 0, len(games))
	for _, g := range games {
		out = append(out, ops.FromGame(g))
	}
	writeJSON(w, http.StatusOK, out)
}

// gamesChanged logs and records a registry change.
func (s *Server) gamesChanged(r *http.Request, op, action string, ids []string, stopped int) {
	s.log.Info("operator changed the game registry", "operator", op, "action", action, "games", ids, "stopped", stopped)
	s.event(r, store.EvOperatorGamesChanged, store.SessionKey{}, "",
		map[string]any{"operator": op, "action": action, "ids": ids, "stopped": stopped})
}

// registryError answers a refused registry write: unknown (404), existing
// (409), or Redis (503). Invalid entries were refused before (400).
func (s *Server) registryError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrUnknownGame):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrGameExists):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.storeError(w, r, err)
	}
}

func (s *Server) serveAddGame(w http.ResponseWriter, r *http.Request, op string) {
	var g ops.Game
	if err := decodeBody(r, maxBody, &g); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sg := g.Store()
	if err := sg.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	warnings, err := ops.CheckGames(r.Context(), s.st, sg)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.AddGame(r.Context(), sg); err != nil {
		s.registryError(w, r, err)
		return
	}
	s.gamesChanged(r, op, "add", []string{sg.ID}, 0)
	writeJSON(w, http.StatusCreated, changeJSON{Games: []string{sg.ID}, Warnings: nonNil(warnings)})
}

// changeJSON answers a registry change: how many sessions it stopped
// (those at an old address, or of a removed game).
type changeJSON struct {
	Games   []string `json:"games"`
	Stopped int      `json:"stopped"`
	// Warnings name hosts the workers refuse by default (they may be
	// allowed by TRELLIS_WORKER_ALLOW_NETWORKS, which the console cannot
	// see).
	Warnings []string `json:"warnings"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) serveUpdateGame(w http.ResponseWriter, r *http.Request, op string) {
	var g ops.Game
	if err := decodeBody(r, maxBody, &g); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if g.ID != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, "the body's id must be the URL's (a game's id cannot change)")
		return
	}
	sg := g.Store()
	if err := sg.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	old, err := s.st.GetGame(r.Context(), sg.ID)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	warnings, err := ops.CheckGames(r.Context(), s.st, sg)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateGame(r.Context(), sg); err != nil {
		s.registryError(w, r, err)
		return
	}
	n := 0
	if ops.AddrChanged(old, sg) {
		// As `games update`: sessions at the old address must not go on.
		if n, err = ops.StopGameSessions(r.Context(), s.st, sg.ID, ops.ReasonAddrChanged); err != nil {
			s.gamesChanged(r, op, "update", []string{sg.ID}, n)
			s.storeError(w, r, fmt.Errorf("updated, but some sessions at the old address still run: %w", err))
			return
		}
	}
	s.gamesChanged(r, op, "update", []string{sg.ID}, n)
	writeJSON(w, http.StatusOK, changeJSON{Games: []string{sg.ID}, Stopped: n, Warnings: nonNil(warnings)})
}

func (s *Server) serveRemoveGame(w http.ResponseWriter, r *http.Request, op string) {
	id := r.PathValue("id")
	// Remove first, so the stopped sessions cannot be started again; an
	// unregistered id may still have sessions (as `games rm`).
	rmErr := s.st.RemoveGame(r.Context(), id)
	if rmErr != nil && !errors.Is(rmErr, store.ErrUnknownGame) {
		s.storeError(w, r, rmErr)
		return
	}
	n, err := ops.StopGameSessions(r.Context(), s.st, id, ops.ReasonGameRemoved)
	if rmErr == nil || n > 0 {
		s.gamesChanged(r, op, "remove", []string{id}, n)
	}
	switch {
	case err != nil:
		s.storeError(w, r, fmt.Errorf("some sessions of %s still run: %w", id, err))
	case rmErr != nil && n == 0:
		s.registryError(w, r, rmErr)
	default:
		writeJSON(w, http.StatusOK, changeJSON{Games: []string{id}, Stopped: n, Warnings: []string{}})
	}
}

// maxGamesFile is store.ParseGames's limit on a games file.
const maxGamesFile = 4 << 20

func (s *Server) serveImportGames(w http.ResponseWriter, r *http.Request, op string) {
	// The file travels as a JSON string, so an import is as much a JSON
	// request as the rest (see stateChange); it may hold JSON or YAML.
	var body struct {
		File string `json:"file"`
	}
	if err := decodeBody(r, 2*maxGamesFile, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	data := []byte(body.File)
	parsed, err := store.ParseGames(bytes.NewReader(data))
	if err != nil {
		writeError(w, http.StatusBadRequest, "nothing was imported: "+err.Error())
		return
	}
	warnings, err := ops.CheckGames(r.Context(), s.st, parsed...)
	if err != nil {
		writeError(w, http.StatusBadRequest, "nothing was imported: "+err.Error())
		return
	}
	before, err := s.st.ListGames(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	games, err := s.st.ImportGames(r.Context(), bytes.NewReader(data))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	old := make(map[string]store.Game, len(before))
	for _, g := range before {
		old[g.ID] = g
	}
	out := changeJSON{Games: []string{}, Warnings: nonNil(warnings)}
	var errs []error
	for _, g := range games {
		out.Games = append(out.Games, g.ID)
		if o, ok := old[g.ID]; ok && ops.AddrChanged(o, g) {
			n, err := ops.StopGameSessions(r.Context(), s.st, g.ID, ops.ReasonAddrChanged)
			out.Stopped += n
			errs = append(errs, err)
		}
	}
	s.gamesChanged(r, op, "import", out.Games, out.Stopped)
	if err := errors.Join(errs...); err != nil {
		s.storeError(w, r, fmt.Errorf("imported, but some sessions at old addresses still run: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
