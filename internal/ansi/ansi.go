package ansi

import (
	"fmt"
	"html"
	"strconv"
	"strings"
)

// Strip removes every escape sequence from s.
func Strip(s string) string {
	if !strings.ContainsRune(s, 0x1b) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i += seqLen(s[i:])
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// seqLen is the length of the escape sequence at the start of s (at least 1).
func seqLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters, intermediates, one final byte 0x40-0x7e
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']': // OSC: ends with BEL or ESC \
		for i := 2; i < len(s); i++ {
			if s[i] == 7 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	return 2
}

// Style is the SGR state carried from one piece of text to the next.
type Style struct {
	FG, BG                                string // CSS colours, "" for default
	Bold, Dim, Italic, Underline, Reverse bool
}

func (st Style) css() string {
	fg, bg := st.FG, st.BG
	if st.Reverse {
		fg, bg = bg, fg
		if fg == "" {
			fg = "#000"
		}
		if bg == "" {
			bg = "#ccc"
		}
	}
	var parts []string
	if fg != "" {
		parts = append(parts, "color:"+fg)
	}
	if bg != "" {
		parts = append(parts, "background:"+bg)
	}
	if st.Bold {
		parts = append(parts, "font-weight:bold")
	}
	if st.Dim {
		parts = append(parts, "opacity:.7")
	}
	if st.Italic {
		parts = append(parts, "font-style:italic")
	}
	if st.Underline {
		parts = append(parts, "text-decoration:underline")
	}
	return strings.Join(parts, ";")
}

var basic = [16]string{
	"#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
	"#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
}

// Color256 is the CSS colour of xterm palette entry n.
func Color256(n int) string {
	switch {
	case n < 16:
		return basic[n]
	case n < 232:
		n -= 16
		level := func(v int) int {
			if v == 0 {
				return 0
			}
			return 55 + v*40
		}
		return fmt.Sprintf("#%02x%02x%02x", level(n/36), level(n/6%6), level(n%6))
	default:
		g := 8 + (n-232)*10
		return fmt.Sprintf("#%02x%02x%02x", g, g, g)
	}
}

// apply updates st with the SGR parameters params ("1;31", "38;5;208").
func (st *Style) apply(params string) {
	if params == "" {
		*st = Style{}
		return
	}
	fields := strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' })
	num := func(i int) int {
		if i >= len(fields) {
			return -1
		}
		n, err := strconv.Atoi(fields[i])
		if err != nil {
			return -1
		}
		return n
	}
	for i := 0; i < len(fields); i++ {
		n := num(i)
		switch {
		case n == 0:
			*st = Style{}
		case n == 1:
			st.Bold = true
		case n == 2:
			st.Dim = true
		case n == 3:
			st.Italic = true
		case n == 4:
			st.Underline = true
		case n == 7:
			st.Reverse = true
		case n == 22:
			st.Bold, st.Dim = false, false
		case n == 23:
			st.Italic = false
		case n == 24:
			st.Underline = false
		case n == 27:
			st.Reverse = false
		case n >= 30 && n <= 37:
			st.FG = basic[n-30]
		case n >= 90 && n <= 97:
			st.FG = basic[n-90+8]
		case n >= 40 && n <= 47:
			st.BG = basic[n-40]
		case n >= 100 && n <= 107:
			st.BG = basic[n-100+8]
		case n == 39:
			st.FG = ""
		case n == 49:
			st.BG = ""
		case n == 38 || n == 48:
			var c string
			switch num(i + 1) {
			case 5:
				if v := num(i + 2); v >= 0 && v < 256 {
					c = Color256(v)
				}
				i += 2
			case 2:
				r, g, b := num(i+2), num(i+3), num(i+4)
				if r >= 0 && g >= 0 && b >= 0 && r < 256 && g < 256 && b < 256 {
					c = fmt.Sprintf("#%02x%02x%02x", r, g, b)
				}
				i += 4
			}
			if c != "" {
				if n == 38 {
					st.FG = c
				} else {
					st.BG = c
				}
			}
		}
	}
}

// HTML renders s as HTML, starting from style st, and returns the style at
// the end so the next piece continues it.
func HTML(s string, st Style) (string, Style) {
	var b strings.Builder
	open := false
	openSpan := func() {
		if css := st.css(); css != "" {
			b.WriteString(`<span style="` + css + `">`)
			open = true
		}
	}
	closeSpan := func() {
		if open {
			b.WriteString("</span>")
			open = false
		}
	}
	openSpan()
	for i := 0; i < len(s); {
		if s[i] != 0x1b {
			j := strings.IndexByte(s[i:], 0x1b)
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(html.EscapeString(s[i : i+j]))
			i += j
			continue
		}
		n := seqLen(s[i:])
		seq := s[i : i+n]
		i += n
		if len(seq) >= 3 && seq[1] == '[' && seq[len(seq)-1] == 'm' {
			closeSpan()
			st.apply(seq[2 : len(seq)-1])
			openSpan()
		}
	}
	closeSpan()
	return b.String(), st
}
