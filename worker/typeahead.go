package worker

import (
	"strings"
	"time"

	"github.com/trellis-mud/trellis/internal/ansi"
	"github.com/trellis-mud/trellis/store"
)

// Passwords typed ahead of the game.
//
// A line is written to the game the moment it arrives, but whether the
// transcript may show it depends on what the game was asking. A line typed
// at a visible prompt is judged at once: secret while the game echoes
// (WILL ECHO), or when the prompt looks like a password prompt (the game's
// PasswordPrompt pattern), plain otherwise. A line typed ahead (no prompt
// the game printed since the previous line was typed: a fast typist, a
// paste, an auto-login trigger sending name and password back to back) is
// held: its record waits for the game's next prompt, and the k-th held line
// is judged by the k-th prompt, as the game itself will read them. A held
// line that sees no prompt within the hold time is recorded redacted if
// anything about it is uncertain (no output since it was typed, or the last
// thing printed looks like a password prompt): a redacted command costs a
// transcript line, a stored password costs the player's account. A held
// line the game prints back as a whole line of its own is recorded then,
// plain (echoesOldest): a game without prompts would otherwise hold every
// record for the whole hold.
//
// A prompt is a GA/EOR, or an unfinished line (no newline) that has stayed
// unchanged for promptSettle: text can arrive split ("Pass" then "word: "),
// and judging "Pass" alone would call the password plain. A partial line
// that already matches the password pattern counts at once.
//
// typeAhead does no I/O and reads no clock: the session feeds it the game's
// text and prompts and the lines typed, with the time, and writes the
// records it returns. It is not safe for concurrent use (the session's
// mutex guards it).
type typeAhead struct {
	pattern *promptPattern
	hold    time.Duration

	tail     string    // the game's unfinished last line, escapes stripped, at most maxTail bytes
	lastLine string    // the last complete non-blank line the game printed
	textAt   time.Time // when the game last printed text
	ga       bool      // a GA/EOR came after the last text
	answered bool      // a line was typed at the prompt on screen already
	// echo is the game's echo as of the last event fed, in stream order:
	// a game may turn echo on and off again within one read, and the
	// engine's state after the read would miss that.
	echo bool
	held []heldLine
	ej   echoJudge // what echo means for this game (echomode.go)
}

// heldLine is a line written to the game whose record waits.
type heldLine struct {
	text   string
	viewer string
	seq    uint64
	at     time.Time
	// secretSeen: since the line was typed the game turned echo on or
	// printed something that looks like a password prompt. Which held line
	// such a prompt answered is a guess (a name prompt and a password
	// prompt can share one finished line), so every line held then counts
	// as possibly secret.
	secretSeen bool
}

// inputRecord is what the transcript gets for one typed line.
type inputRecord struct {
	heldLine
	secret bool
}

const (
	promptSettle = 150 * time.Millisecond
	maxTail      = 256
	maxHeld      = 64
)

func newTypeAhead(pattern *promptPattern, hold time.Duration) *typeAhead {
	return &typeAhead{pattern: pattern, hold: hold, ej: echoJudge{mode: store.EchoAuto}}
}

// text takes game text (ANSI kept, "\n" newlines) and returns the records
// of held lines it settles. A password prompt can be gone from the
// unfinished line by the time anyone looks: a game that reads the held
// password at once ends the prompt's line and prints what follows in the
// same read ("Password: \nWelcome"). So every line the text completes is
// judged as it completes: one that looks like a password prompt settles
// the oldest held line as a secret.
func (t *typeAhead) text(s string, now time.Time) []inputRecord {
	if s == "" {
		return nil
	}
	s = ansi.Strip(s)
	t.textAt, t.ga, t.answered = now, false, false
	var (
		out     []inputRecord
		newLine bool
	)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		done := t.tail + s[:i]
		t.tail, s = "", s[i+1:]
		t.lineCompleted(done)
		if l := strings.TrimSpace(done); l != "" {
			t.lastLine, newLine = clip(l), true
			// The prompt pattern only matters to lines held: a flood
			// with nothing typed ahead must not pay a regexp per line
			// (it was 40% of a flood's CPU).
			if len(t.held) > 0 && t.looksSecret(done) {
				out = append(out, t.redactHeld()...)
			} else if len(t.held) > 0 && t.echoesOldest(l) {
				out = append(out, inputRecord{heldLine: t.held[0]})
				t.held, t.answered = t.held[1:], true
			}
		}
	}
	t.tail = clip(t.tail + s)
	if len(t.held) > 0 && t.looksSecret(t.tail) {
		t.markSecretSeen()
	}
	// Both are substrings of the text, whose bytes are the engine's buffer
	// for the whole read it decoded: kept as they are, a session idle
	// after a room description pinned that read (2-4 KiB) to remember a
	// prompt. Copies cost one small allocation per text event.
	t.tail = strings.Clone(t.tail)
	if newLine {
		t.lastLine = strings.Clone(t.lastLine)
	}
	return out
}

// echoesOldest reports whether the game printed line, a whole line trimmed,
// as exactly the oldest held line's text: the game read that line and
// showed it (an echo server, a game that repeats commands), so its record
// may be written now, plain, instead of waiting for a prompt the game may
// never print. Plain is safe: the transcript shows that text already, as
// the game's own line. Not when anything since it was typed hinted at a
// secret, nor while the game hides what it reads.
func (t *typeAhead) echoesOldest(line string) bool {
	h := &t.held[0]
	return !h.secretSeen && !(t.echo && t.echoHides()) && line == strings.TrimSpace(h.text)
}

// redactHeld records every held line as a secret: a password prompt was
// printed, and any of them may be what it read.
func (t *typeAhead) redactHeld() []inputRecord {
	out := make([]inputRecord, 0, len(t.held))
	for _, h := range t.held {
		out = append(out, inputRecord{heldLine: h, secret: true})
	}
	t.held = nil
	return out
}

func (t *typeAhead) markSecretSeen() {
	for i := range t.held {
		t.held[i].secretSeen = true
	}
}

// setEcho takes an echo change, in stream order. Echo on makes every held
// line a secret at once (the game hides what it reads next, and a line
// held now may be it).
func (t *typeAhead) setEcho(on bool) []inputRecord {
	t.echo = on
	t.echoChanged(on)
	if on && t.echoHides() {
		return t.redactHeld()
	}
	return nil
}

// clip keeps the end of s: prompts are judged by how they end.
func clip(s string) string {
	if len(s) > maxTail {
		return s[len(s)-maxTail:]
	}
	return s
}

// prompt records a GA or EOR.
func (t *typeAhead) prompt() { t.ga, t.answered = true, false }

func (t *typeAhead) looksSecret(s string) bool {
	return strings.TrimSpace(s) != "" && t.pattern.MatchString(s)
}

// promptShown reports whether a prompt nobody has typed at yet is on
// screen, and whether it asks for a secret.
func (t *typeAhead) promptShown(now time.Time) (shown, secret bool) {
	if t.answered {
		return false, false
	}
	prompt := t.tail
	if prompt == "" {
		// A prompt that ends in a newline (with or without a GA after it).
		prompt = t.lastLine
	}
	if t.looksSecret(prompt) {
		return true, true
	}
	if t.tail == "" && !t.ga {
		return false, false
	}
	return t.ga || (t.tail != "" && now.Sub(t.textAt) >= promptSettle), false
}

// typed takes a line the player typed (just written to the game) and
// returns the records the transcript gets now (judged with the echo state
// of the events fed so far): this line's, if it was
// typed at a prompt on screen and nothing is held before it, else none (or
// the oldest held line's, when too many are held).
func (t *typeAhead) typed(l heldLine, now time.Time) []inputRecord {
	if len(t.held) == 0 {
		if t.echo {
			t.typedUnderEcho(l.text, t.promptLooksSecret())
			if t.echoHides() {
				t.answered = true
				return []inputRecord{{heldLine: l, secret: true}}
			}
			// Character mode: echo says nothing, the prompt does, as
			// for any line (one typed ahead waits for its prompt).
		}
		if shown, secret := t.promptShown(now); shown {
			t.answered = true
			return []inputRecord{{heldLine: l, secret: secret}}
		}
	}
	t.held = append(t.held, l)
	if len(t.held) > maxHeld {
		oldest := t.held[0]
		t.held = t.held[1:]
		return []inputRecord{{heldLine: oldest, secret: true}}
	}
	return nil
}

// resolve returns the records of held lines whose prompt has now shown
// what they were, oldest first.
func (t *typeAhead) resolve(now time.Time) []inputRecord {
	var out []inputRecord
	for len(t.held) > 0 {
		h := t.held[0]
		var secret bool
		if t.echo && t.echoHides() {
			secret = true
		} else if shown, s := t.promptShown(now); shown {
			secret = s || h.secretSeen
		} else if now.Sub(h.at) >= t.hold {
			secret = h.secretSeen || !t.textAt.After(h.at) || t.looksSecret(t.lastLine) || t.looksSecret(t.tail)
		} else {
			break
		}
		t.answered = true
		t.held = t.held[1:]
		out = append(out, inputRecord{heldLine: h, secret: secret})
	}
	if len(t.held) == 0 {
		t.held = nil
	}
	return out
}

// next says when resolve may have something new to say with no new input
// from the game: when an unfinished line has settled into a prompt, or the
// oldest held line's hold runs out.
func (t *typeAhead) next() (time.Time, bool) {
	if len(t.held) == 0 {
		return time.Time{}, false
	}
	at := t.held[0].at.Add(t.hold)
	if !t.answered && !t.ga && t.tail != "" {
		if settle := t.textAt.Add(promptSettle); settle.Before(at) {
			at = settle
		}
	}
	return at, true
}

// flush returns every held line, redacted: the game connection ended, and
// no prompt will tell what they were.
func (t *typeAhead) flush() []inputRecord {
	out := make([]inputRecord, 0, len(t.held))
	for _, h := range t.held {
		out = append(out, inputRecord{heldLine: h, secret: true})
	}
	t.held = nil
	return out
}
