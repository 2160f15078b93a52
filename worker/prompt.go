package worker

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/trellis-mud/trellis/store"
)

// promptPattern is a game's password prompt pattern, with a test that
// rejects most lines without running it.
//
// Type-ahead judges every line a game completes while a typed line waits
// for its prompt, and a flood answering a command is all such lines: the
// pattern's backtracking was 43% of the CPU of `trellis bench --only
// flood` (the whole in-process stack). A pattern that ends in a character
// class, optional whitespace and $ (the default: `[:?>]\s*$`) can only
// match a line whose last character that is not white space is in that
// class, which one look at the line's end decides.
type promptPattern struct {
	re *regexp.Regexp
	// last holds the ranges (lo, hi pairs) of the character a match must
	// end with, white space aside; nil: no such bound is known.
	last []rune
	// endLine: the pattern ends in (?m)$, which a newline inside the text
	// also satisfies; the bound then holds for text without one only.
	endLine bool
}

// MatchString reports whether s matches the pattern.
func (p *promptPattern) MatchString(s string) bool {
	if p.last != nil && !(p.endLine && strings.Contains(s, "\n")) {
		t := strings.TrimRight(s, asciiSpace)
		if t == "" {
			return p.re.MatchString(s)
		}
		r, _ := utf8.DecodeLastRuneInString(t)
		if !inRanges(p.last, r) {
			return false
		}
	}
	return p.re.MatchString(s)
}

const asciiSpace = "\t\n\v\f\r "

func inRanges(ranges []rune, r rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

// newPromptPattern compiles expr and works out its last-character bound.
func newPromptPattern(expr string) (*promptPattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	last, endLine := lastClass(expr)
	return &promptPattern{re: re, last: last, endLine: endLine}, nil
}

// lastClass returns the ranges of the last character every match of expr
// ends with, trailing white space aside, when expr has the shape
// `... C W* $` (C a character class or literal with no white space in it,
// W* a repetition of white space only); nil otherwise. Trimming all ASCII
// white space from a line's end before looking can only let more lines
// through to the pattern, never fewer: C holds none of it. endLine: the $
// is a multi-line one.
func lastClass(expr string) (ranges []rune, endLine bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return nil, false
	}
	subs := re.Sub
	switch subs[len(subs)-1].Op {
	case syntax.OpEndText:
	case syntax.OpEndLine:
		endLine = true
	default:
		return nil, false
	}
	subs = subs[:len(subs)-1]
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpStar && len(subs[n-1].Sub) == 1 {
		if !onlySpace(subs[n-1].Sub[0]) {
			return nil, false
		}
		subs = subs[:n-1]
	}
	if len(subs) == 0 {
		return nil, false
	}
	switch c := subs[len(subs)-1]; c.Op {
	case syntax.OpCharClass:
		ranges = append([]rune(nil), c.Rune...)
	case syntax.OpLiteral:
		if len(c.Rune) == 0 {
			return nil, false
		}
		r := c.Rune[len(c.Rune)-1]
		ranges = []rune{r, r}
		if c.Flags&syntax.FoldCase != 0 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				ranges = append(ranges, f, f)
			}
		}
	default:
		return nil, false
	}
	for _, sp := range asciiSpace {
		if inRanges(ranges, sp) {
			return nil, false
		}
	}
	return ranges, endLine
}

// onlySpace reports whether re matches one character, always ASCII white
// space.
func onlySpace(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if !strings.ContainsRune(asciiSpace, r) {
					return false
				}
			}
		}
		return true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if !strings.ContainsRune(asciiSpace, r) {
				return false
			}
		}
		return len(re.Rune) == 1
	}
	return false
}

// passwordPrompt compiles the game's password prompt pattern (the
// registry validates it; a bad one is still refused here, not trusted).
// Compiled patterns are shared by every session of the worker: a *Regexp
// is safe for concurrent use, and one compiled per session cost about
// 6 KiB of each session's memory (trellis bench's heap profile).
func passwordPrompt(g store.Game) (*promptPattern, error) {
	p := g.PasswordPrompt
	if p == "" {
		p = store.DefaultPasswordPrompt
	}
	if pp, ok := promptCache.Load(p); ok {
		return pp.(*promptPattern), nil
	}
	pp, err := newPromptPattern(p)
	if err != nil {
		return nil, fmt.Errorf("password_prompt %q: %w", p, err)
	}
	// The patterns come from the registry, so there are few; a registry
	// that keeps changing them could still grow the cache, so it starts
	// again past a bound rather than growing for ever.
	if promptCached.Add(1) > maxPromptCache {
		promptCache.Clear()
		promptCached.Store(1)
	}
	promptCache.Store(p, pp)
	return pp, nil
}

const maxPromptCache = 256

var (
	promptCache  sync.Map // pattern -> *promptPattern
	promptCached atomic.Int64
)
