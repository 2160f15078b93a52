package worker

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/store"
)

func mustPrompt(expr string) *promptPattern {
	p, err := newPromptPattern(expr)
	if err != nil {
		panic(err)
	}
	return p
}

// The default pattern has a last-character bound: without one, every line
// of a flood answering a typed command runs the regexp.
func TestDefaultPromptPatternIsBounded(t *testing.T) {
	if p := mustPrompt(store.DefaultPasswordPrompt); p.last == nil {
		t.Fatal("the default password prompt pattern has no last-character bound")
	}
	bounded := []string{`word:$`, `(?i)pin\s*$`, `(?i)pass[:>]\s*$`, `(pass|pin)[?]$`, `(?m)pass:$`, `x[^ \t\n\f\r\v]$`}
	for _, e := range bounded {
		if mustPrompt(e).last == nil {
			t.Errorf("%q: no bound found", e)
		}
	}
	// No bound: the match may end anywhere, or in white space.
	unbounded := []string{`(?i)password`, `pass:$|pin`, `[: ]$`, `pass.*`, `pass\s$`, `a+$`, `(pass:)?$`, `x[^:]$`}
	for _, e := range unbounded {
		if mustPrompt(e).last != nil {
			t.Errorf("%q: a bound %v was found where none holds", e, mustPrompt(e).last)
		}
	}
}

// The bound never changes an answer: for every pattern, on lines built to
// sit at its edges (prompts, near misses, trailing white space of every
// kind, case, multi-byte text), promptPattern agrees with the bare regexp.
func TestPromptPatternAgreesWithItsRegexp(t *testing.T) {
	patterns := []string{store.DefaultPasswordPrompt, `word:$`, `(?i)pin\s*$`, `(?i)pass[:>]\s*$`,
		`(?i)contraseña:\s*$`, `(?i)PASSWORD\s*:\s*$`, `[:?]\s*$`, `(?i)passwort$`, `x[^ \t\n\f\r\v]$`, `(?m)pass:$`, `(?mi)word:\s*$`}
	lines := []string{"", " ", "Password:", "Password: ", "password:\t", "PASSWORD:\r", "Your pass? ",
		"Enter PIN>", "pin", "PIN ", "Passphrase:\v\f", "Contraseña: ", "CONTRASEÑA:", "Passwort",
		"spinning:", "bypass:", "The password is wrong.", "pass:x", "word:", "word: ", "Words:",
		"é:", "日本語?", "x\u00a0", "xy", "x ", ":", "?", ">", "Pass\u00a0:", "passwd ->", "a pin?  \t "}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"p", "a", "s", "w", "o", "r", "d", "P", "I", "N", "i", "n", ":", "?", ">", " ", "\t", "\r", "\v", "é", "ñ", "x", "\u00a0", "日"}
	for range 3000 {
		var b strings.Builder
		for range rng.IntN(20) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		lines = append(lines, b.String())
	}
	for _, e := range patterns {
		p := mustPrompt(e)
		for _, l := range append(lines, "Password:\nWelcome", "pass:\n", "x\npass:", "pass:\nfoo") {
			if got, want := p.MatchString(l), p.re.MatchString(l); got != want {
				t.Errorf("pattern %q, line %q: %v, the regexp says %v", e, l, got, want)
			}
		}
	}
}

// BenchmarkPromptMatch: one 100-byte flood line judged against the
// default password prompt pattern, by the bare regexp and with the bound.
func BenchmarkPromptMatch(b *testing.B) {
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 3)[:100]
	p := mustPrompt(store.DefaultPasswordPrompt)
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			p.re.MatchString(line)
		}
	})
	b.Run("bounded", func(b *testing.B) {
		for b.Loop() {
			p.MatchString(line)
		}
	})
}
