package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/trellis-mud/trellis/internal/ansi"
	"github.com/trellis-mud/trellis/internal/backoff"
	"github.com/trellis-mud/trellis/store"
)

func runReplay(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: transcript, events or redrive")
	}
	if isHelp(args[0]) {
		fmt.Println(`Usage: trellis replay <transcript|events|redrive> [flags]

  transcript  the session as the player saw it, their input included, passwords absent
  events      the lifecycle event log (who started what, where, why)
  redrive     re-publish control events into another Redis (e.g. staging)

Run 'trellis replay <sub> --help' for flags.`)
		return nil
	}
	switch args[0] {
	case "transcript":
		return replayTranscript(ctx, args[1:])
	case "events":
		return replayEvents(ctx, args[1:])
	case "redrive":
		return replayRedrive(ctx, args[1:])
	}
	return usageErrorf("unknown subcommand %q: want transcript, events or redrive", args[0])
}

// parseSince turns "", a duration ("2h": that long ago), an RFC 3339 time,
// a stream id, or "-"/"+" (the stream's ends) into a stream id to range
// from or to. "0" is the stream id 0, the stream's start, not "0 ago".
func parseSince(s, def string) (string, error) {
	switch s {
	case "":
		return def, nil
	case "-", "+":
		return s, nil
	case "0", "0-0":
		return "-", nil
	}
	if looksLikeStreamID(s) {
		return s, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return "", usageErrorf("%q: want a duration ago without a sign (2h)", s)
		}
		return store.TimeID(time.Now().Add(-d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return store.TimeID(t), nil
	}
	return "", usageErrorf("%q is not a duration ago (2h), an RFC 3339 time, a stream id, or 0 or - (the start)", s)
}

// flagSince is parseSince for flag -name, whose name an error gives.
func flagSince(name, s, def string) (string, error) {
	id, err := parseSince(s, def)
	if err != nil {
		return "", usageErrorf("-%s %s", name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
	}
	return id, nil
}

func looksLikeStreamID(s string) bool {
	ms, seq, _ := strings.Cut(s, "-")
	if ms == "" {
		return false
	}
	for _, c := range ms + seq {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func replayTranscript(ctx context.Context, args []string) error {
	fs := newFlags("replay transcript", "replay transcript -user U -game G [-since T] [-format text|ansi|html|jsonl]", redisSection(&store.Config{}))
	user := fs.String("user", "", "the player's user id")
	game := fs.String("game", "", "the game id")
	since := fs.String("since", "", "start at this age (2h), time (RFC 3339) or stream id; default: the whole kept transcript")
	format := fs.String("format", "text", "text (plain), ansi (colours kept), html (a page), or jsonl (one entry per line, GMCP included)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" || *game == "" {
		return fmt.Errorf("%w: -user and -game are required", errUsage)
	}
	switch *format {
	case "text", "ansi", "html", "jsonl":
	default:
		return fmt.Errorf("%w: -format %q: want text, ansi, html or jsonl", errUsage, *format)
	}
	from, err := flagSince("since", *since, "-")
	if err != nil {
		return err
	}
	st, _, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	key := store.SessionKey{User: *user, Game: *game}
	w := &transcriptWriter{w: os.Stdout, format: *format}
	for n := 0; ; {
		page, err := st.OutputRange(ctx, key, from, "+", 1000)
		if err != nil {
			return err
		}
		if n == 0 {
			if len(page) == 0 {
				if *since != "" {
					return fmt.Errorf("no transcript for %s since %s", key, *since)
				}
				return fmt.Errorf("no transcript for %s (none was recorded, or it expired: transcripts are kept TRELLIS_WORKER_TRANSCRIPT_TTL after the session ends)", key)
			}
			w.begin(key)
		}
		for _, o := range page {
			w.entry(o)
		}
		n += len(page)
		if len(page) < 1000 {
			break
		}
		from = "(" + page[len(page)-1].ID
	}
	w.end()
	return w.err
}

// transcriptWriter renders output entries the way the player saw them.
type transcriptWriter struct {
	w      io.Writer
	format string
	style  ansi.Style
	err    error
	// line is the game's text since the last line end (colours stripped,
	// the last few bytes): the prompt any input was typed at.
	line string
}

// track remembers the end of the current line of game text.
func (t *transcriptWriter) track(text string) {
	text = ansi.Strip(text)
	if i := strings.LastIndexAny(text, "\r\n"); i >= 0 {
		t.line = text[i+1:]
	} else {
		t.line += text
	}
	if len(t.line) > 64 {
		t.line = t.line[len(t.line)-64:]
	}
}

// inputMark is what goes before a line of input: "> ", unless the game's
// prompt already ends in '>' (the player saw "> look", not "> > look").
func (t *transcriptWriter) inputMark() string {
	p := strings.TrimRight(t.line, " \t")
	switch {
	case strings.HasSuffix(p, ">") && p != t.line:
		return ""
	case strings.HasSuffix(p, ">"):
		return " "
	}
	return "> "
}

func (t *transcriptWriter) printf(format string, a ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, a...)
	}
}

func (t *transcriptWriter) begin(key store.SessionKey) {
	if t.format == "html" {
		t.printf(`<!doctype html><meta charset="utf-8"><title>Transcript %s</title>`+
			`<style>body{background:#111;color:#ddd;font:14px/1.35 monospace}pre{white-space:pre-wrap}`+
			`.in{color:#8ab4f8}.st{color:#e0b050;font-style:italic}</style><pre>`, htmlEscape(key.String()))
	}
}

func (t *transcriptWriter) end() {
	if t.format == "html" {
		t.printf("</pre>\n")
	}
}

func (t *transcriptWriter) entry(o store.Output) {
	if t.format == "jsonl" {
		t.printf("%s", jsonLine(toOutputJSON(o)))
		return
	}
	switch o.Kind {
	case store.OutText:
		t.track(o.Text)
		switch t.format {
		case "text":
			t.printf("%s", ansi.Strip(o.Text))
		case "ansi":
			t.printf("%s", o.Text)
		case "html":
			var h string
			h, t.style = ansi.HTML(o.Text, t.style)
			t.printf("%s", h)
		}
	case store.OutInput:
		line := o.Text
		if o.Redacted {
			line = "(hidden: typed while the game echoed)"
		}
		mark := t.inputMark()
		if t.format == "html" {
			t.printf(`<span class="in">%s%s</span>`+"\n", htmlEscape(mark), htmlEscape(line))
		} else {
			t.printf("%s%s\n", mark, line)
		}
		t.line = ""
	case store.OutStatus, store.OutGap:
		msg := fmt.Sprintf("[%s %s %s]", stamp(o.Time), o.Kind, strings.TrimSpace(o.State+" "+o.Text))
		if t.format == "html" {
			t.printf(`<span class="st">%s</span>`+"\n", htmlEscape(msg))
		} else {
			// On a line of its own, after any unfinished game line.
			if t.line != "" {
				t.printf("\n")
			}
			t.printf("%s\n", msg)
		}
		t.line = ""
	}
}

func stamp(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}

func htmlEscape(s string) string { return html.EscapeString(ansi.Strip(s)) }

func replayEvents(ctx context.Context, args []string) error {
	fs := newFlags("replay events", "replay events [-since T] [-until T] [-type X] [-user U] [-follow] [-o json]", redisSection(&store.Config{}))
	since := fs.String("since", "1h", "start at this age (2h), time (RFC 3339) or stream id")
	until := fs.String("until", "", "stop at this age, time or stream id (default: now)")
	typ := fs.String("type", "", "only events of these types, comma-separated: a type (session.started, or trellis.session.started) or a family (session, lease, worker...)")
	user := fs.String("user", "", "only events about this user")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	out := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	from, err := flagSince("since", *since, "-")
	if err != nil {
		return err
	}
	to, err := flagSince("until", *until, "+")
	if err != nil {
		return err
	}
	if *follow && *until != "" {
		return usageErrorf("-follow and -until exclude each other")
	}
	types, err := parseEventTypes(*typ)
	if err != nil {
		return err
	}
	st, _, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	match := func(e store.Event) bool {
		if !types.match(e.Type) {
			return false
		}
		if *user == "" {
			return true
		}
		// The subject is user/game; a user id may hold '/', a game id not.
		i := strings.LastIndexByte(e.Subject, '/')
		return i >= 0 && e.Subject[:i] == *user
	}
	print := func(e store.Event) {
		if *out == "json" {
			os.Stdout.Write(jsonLine(toEventJSON(e)))
			return
		}
		data := ""
		if len(e.Data) > 0 && string(e.Data) != "null" {
			data = " " + string(e.Data)
		}
		fmt.Printf("%s  %-30s %-22s %s%s%s\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"),
			e.Type, e.Source, orDash(e.Subject), correlation(e.Correlation), data)
	}
	last := ""
	for {
		page, err := st.ReadEvents(ctx, from, to, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			if match(e) {
				print(e)
			}
			last = e.ID
		}
		if len(page) < 1000 {
			break
		}
		from = "(" + last
	}
	if !*follow {
		return nil
	}
	if last == "" {
		last = "$"
	}
	retry := backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		page, err := st.FollowEvents(ctx, last, 100, 5*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := retry.Next()
			fmt.Fprintf(os.Stderr, "follow: %v (retrying in %s)\n", err, d.Round(10*time.Millisecond))
			_ = backoff.Sleep(ctx, d)
			continue
		}
		retry.Reset()
		for _, e := range page {
			if match(e) {
				print(e)
			}
			last = e.ID
		}
	}
	return nil
}

func correlation(c string) string {
	if c == "" {
		return ""
	}
	if len(c) > 8 {
		c = c[:8]
	}
	return " corr=" + c
}

func replayRedrive(ctx context.Context, args []string) error {
	fs := newFlags("replay redrive", "replay redrive -from ID -to ID -target-url redis://... [-target-namespace NS] [-rate N]", redisSection(&store.Config{}))
	from := fs.String("from", "", "first control entry: a stream id (inclusive), a duration ago (2h), an RFC 3339 time, or 0 or - (the stream's start)")
	to := fs.String("to", "+", "last control entry id (inclusive), or a duration/time")
	target := fs.String("target-url", "", "redis:// URL of the Redis to publish into (never the source)")
	targetNS := fs.String("target-namespace", "", "namespace to publish into (default: the source's, TRELLIS_REDIS_NAMESPACE); with it the target may be the source Redis, as on one managed cluster")
	perSec := fs.Float64("rate", 100, "entries per second at most")
	dry := fs.Bool("dry-run", false, "print what would be published, publish nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || (*target == "" && !*dry) {
		return usageErrorf("-from and -target-url are required")
	}
	if *perSec <= 0 {
		return usageErrorf("-rate must be positive")
	}
	start, err := flagSince("from", *from, "-")
	if err != nil {
		return err
	}
	end, err := flagSince("to", *to, "+")
	if err != nil {
		return err
	}
	src, _, err := openStore()
	if err != nil {
		return err
	}
	defer src.Close()

	var dst *store.Store
	if !*dry {
		var srcCfg store.Config
		_ = loadEnv(redisSection(&srcCfg))
		ns := srcCfg.Namespace
		if *targetNS != "" {
			if err := store.ValidNamespace(*targetNS); err != nil {
				return usageErrorf("-target-namespace %q: %v", *targetNS, err)
			}
			ns = *targetNS
		}
		if strings.TrimRight(*target, "/") == strings.TrimRight(srcCfg.URL, "/") && ns == srcCfg.Namespace {
			return errors.New("the target is the source Redis and namespace: redrive into another Redis (e.g. staging) or another -target-namespace")
		}
		cfg := srcCfg
		cfg.URL, cfg.Password, cfg.Namespace = *target, "", ns
		if dst, err = store.Open(cfg); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer dst.Close()
		if err := dst.Ping(ctx); err != nil {
			return fmt.Errorf("target: %w", err)
		}
	}
	// Count first so the progress bar knows its end.
	// Every shard's entries, merged in time order; the control streams are
	// trimmed at TRELLIS_REDIS_CONTROL_MAXLEN each, which bounds this.
	all, err := src.ControlEntriesAll(ctx, start, end, 10_000_000)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return fmt.Errorf("no control entries in %s..%s", start, end)
	}
	lim := rate.NewLimiter(rate.Limit(*perSec), 1)
	bar := newProgress(os.Stderr, len(all), isTerminal(os.Stderr))
	skipped := 0
	for i, m := range all {
		if err := lim.Wait(ctx); err != nil {
			bar.done()
			return fmt.Errorf("interrupted after %d of %d entries", i, len(all))
		}
		if m.Err != nil {
			skipped++
			bar.step()
			continue
		}
		if *dry {
			b, _ := json.Marshal(m.Command)
			fmt.Printf("%s %s\n", m.ID, b)
		} else if _, err := dst.PublishControl(ctx, redriven(m.Command)); err != nil {
			bar.done()
			return fmt.Errorf("entry %s (%d of %d): %w", m.ID, i+1, len(all), err)
		}
		bar.step()
	}
	bar.done()
	fmt.Fprintf(os.Stderr, "Redrove %d entries (%d undecodable skipped).\n", len(all)-skipped, skipped)
	return nil
}

// progress draws a one-line progress bar on a terminal; on anything else
// (a pipe, a file, a CI log) it draws nothing, as its \r frames would be
// noise there.
type progress struct {
	w         io.Writer
	live      bool
	total, n  int
	lastDrawn time.Time
}

func newProgress(w io.Writer, total int, live bool) *progress {
	return &progress{w: w, live: live, total: total}
}

// isTerminal reports whether f is a terminal (a character device; so is
// /dev/null, where drawing is harmless).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) step() {
	p.n++
	if time.Since(p.lastDrawn) > 100*time.Millisecond || p.n == p.total {
		p.draw()
	}
}

func (p *progress) draw() {
	if !p.live {
		return
	}
	p.lastDrawn = time.Now()
	const width = 30
	filled := width * p.n / max(p.total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.n, p.total)
}

func (p *progress) done() {
	if p.live {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// redriven is a control command as it is published again: stamped now, as
// workers drop commands older than a few minutes (they acted on a world
// that moved on), and a redrive replays them on purpose.
func redriven(c store.Command) store.Command {
	c.Time = time.Time{}
	return c
}
