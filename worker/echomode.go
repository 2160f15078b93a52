package worker

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/store"
)

// What the game's WILL ECHO means.
//
// Most games turn echo on for a password prompt and off after it, and every
// line typed meanwhile is a secret. Character-mode servers (and games that
// offer to echo to every client) keep echo on for the whole session and
// print back what the player typed: treating their echo as a password
// prompt would redact every command in the transcript, although the game
// shows each one in plain text a moment later.
//
// The registry's Game.Echo decides: "password" (echo on: secret),
// "character" (echo means nothing: only lines at a prompt that looks like a
// password prompt are secrets) or "auto", which starts as "password" and
// switches to "character" for the rest of the connection once
//   - the game printed back a line typed while it echoed (the completed
//     line after it ends with that text), or
//   - echo stayed on while the player typed two lines at prompts that do
//     not look like password prompts (a login is one password, or two for
//     a new character, each at a password-looking prompt).
//
// The first lines are still redacted: a guess that costs a transcript line
// or two, never a password.
type echoJudge struct {
	mode     string // store.EchoAuto, EchoPassword or EchoCharacter
	charMode bool   // auto decided this is a character-mode server
	// plainUnderEcho counts the lines typed at a prompt that does not look
	// like a password prompt since echo last turned on.
	plainUnderEcho int
	// watch is the last line typed under echo, until the game completes
	// its next line: if that line ends with it, the game echoed it back.
	watch string
}

// plainLinesForCharMode is how many lines at ordinary prompts under one
// unbroken echo make auto decide the server is in character mode.
const plainLinesForCharMode = 2

// setMode sets the registry's echo mode (empty: auto).
func (t *typeAhead) setMode(mode string) {
	if mode == "" {
		mode = store.EchoAuto
	}
	t.ej.mode = mode
}

// echoHides reports whether the game's echo, when on, makes a line a
// secret.
func (t *typeAhead) echoHides() bool {
	switch t.ej.mode {
	case store.EchoCharacter:
		return false
	case store.EchoPassword:
		return true
	}
	return !t.ej.charMode
}

// echoChanged notes an echo change for the auto guess.
func (t *typeAhead) echoChanged(on bool) {
	if !on {
		t.ej.plainUnderEcho = 0
		t.ej.watch = ""
	}
}

// lineCompleted checks a line the game finished (escapes stripped) for an
// echo of the watched line.
func (t *typeAhead) lineCompleted(done string) {
	if t.ej.watch == "" {
		return
	}
	if echoedBack(done, t.ej.watch) {
		t.ej.charMode = true
	}
	t.ej.watch = ""
}

// typedUnderEcho notes a line typed (nothing held) while the game echoes,
// for the auto guess; promptSecret says whether the prompt on screen looks
// like a password prompt. Whether the line is a secret is then echoHides
// (the line is recorded at once, redacted) or, in character mode, what
// its prompt shows.
func (t *typeAhead) typedUnderEcho(text string, promptSecret bool) {
	if t.ej.mode == store.EchoAuto && !t.ej.charMode && t.ej.plainUnderEcho >= plainLinesForCharMode {
		t.ej.charMode = true
	}
	if !promptSecret {
		t.ej.plainUnderEcho++
	}
	if w := strings.TrimSpace(text); w != "" {
		t.ej.watch = clip(w)
	}
}

// promptLooksSecret reports whether the prompt on screen, not yet typed
// at, looks like a password prompt.
func (t *typeAhead) promptLooksSecret() bool {
	if t.answered {
		return false
	}
	if t.tail != "" {
		return t.looksSecret(t.tail)
	}
	return t.looksSecret(t.lastLine)
}

// echoedBack reports whether line ends with what the player typed, as a
// word of its own ("> look" after "look"; not "Welcome" after "me").
func echoedBack(line, typed string) bool {
	line = strings.TrimRight(line, " \r\t")
	if !strings.HasSuffix(line, typed) {
		return false
	}
	before := line[:len(line)-len(typed)]
	if before == "" {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(before)
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}
