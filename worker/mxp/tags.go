package mxp

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// attr is one tag argument: name=value, a quoted or bare positional value
// (name ""), bare telling the two positional forms apart (<send prompt>).
type attr struct {
	name, value string
	bare        bool
}

// canonical maps each supported tag name (and its aliases) to the name
// its frame carries, so </bold> closes <b>.
var canonical = map[string]string{
	"b": "b", "bold": "b", "strong": "b",
	"i": "i", "italic": "i", "em": "i",
	"u": "u", "underline": "u",
	"s": "s", "strikeout": "s",
	"c": "c", "color": "c",
	"h": "h", "high": "h",
	"a": "a", "send": "send", "br": "br",
	"support": "support", "version": "version",
}

// secureOnly are the supported tags an open line may not use.
var secureOnly = map[string]bool{"a": true, "send": true, "br": true, "support": true, "version": true}

// supports is the <SUPPORTS> answer: exactly what this package handles,
// tags with the attributes it reads.
var supports = []struct {
	tag   string
	attrs []string
}{
	{"b", nil}, {"bold", nil}, {"strong", nil},
	{"i", nil}, {"italic", nil}, {"em", nil},
	{"u", nil}, {"underline", nil},
	{"s", nil}, {"strikeout", nil},
	{"c", []string{"fore", "back"}}, {"color", []string{"fore", "back"}},
	{"h", nil}, {"high", nil},
	{"a", []string{"href"}},
	{"send", []string{"href", "hint", "prompt"}},
	{"br", nil}, {"support", nil}, {"version", nil},
	{"!element", nil},
}

// handleTag acts on one complete tag (the bytes between '<' and '>').
func (d *Decoder) handleTag(body string) {
	switch {
	case strings.HasPrefix(body, "!--"):
		return // a comment
	case strings.HasPrefix(body, "/"):
		name, _ := splitName(strings.TrimSpace(body[1:])) // "</send junk>" closes send
		d.closeTag(name)
		return
	case strings.HasPrefix(body, "!"):
		kw, rest, _ := strings.Cut(body[1:], " ")
		kw = strings.ToLower(kw)
		if d.secure && (kw == "element" || kw == "el") {
			d.defineElement(rest)
		}
		return // !ENTITY, !ATTLIST, !TAG and open-mode definitions: dropped
	}
	name, rest := splitName(body)
	attrs, ok := parseAttrs(rest, d.cfg.MaxAttr)
	if !ok {
		return
	}
	d.openTag(name, attrs, d.secure, false)
}

// splitName splits a tag body into its lower-cased name and the rest.
func splitName(body string) (name, rest string) {
	i := strings.IndexAny(body, " \t")
	if i < 0 {
		i = len(body)
	}
	name = strings.ToLower(strings.TrimSuffix(body[:i], "/"))
	return name, strings.TrimSuffix(strings.TrimSpace(body[i:]), "/")
}

// parseAttrs splits a tag's arguments: name=value, name="value",
// "positional", 'positional', bare. Entities in values are decoded, except
// those a definition or <send> substitutes later (&text;, &name;). It
// fails when a value is longer than maxAttr.
func parseAttrs(s string, maxAttr int) ([]attr, bool) {
	var out []attr
	for n := 0; ; n++ {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, true
		}
		if n >= 64 {
			return nil, false // an argument list no real tag has
		}
		var a attr
		if q := s[0]; q == '"' || q == '\'' {
			v, rest, ok := quoted(s)
			if !ok {
				return nil, false
			}
			a.value, s = v, rest
		} else {
			i := strings.IndexAny(s, " \t=")
			if i < 0 {
				i = len(s)
			}
			word := s[:i]
			s = s[i:]
			if strings.HasPrefix(s, "=") {
				a.name = strings.ToLower(word)
				s = s[1:]
				if s != "" && (s[0] == '"' || s[0] == '\'') {
					v, rest, ok := quoted(s)
					if !ok {
						return nil, false
					}
					a.value, s = v, rest
				} else {
					j := strings.IndexAny(s, " \t")
					if j < 0 {
						j = len(s)
					}
					a.value, s = s[:j], s[j:]
				}
			} else {
				a.value, a.bare = word, true
			}
		}
		if len(a.value) > maxAttr {
			return nil, false
		}
		a.value = decodeEntities(a.value)
		out = append(out, a)
	}
}

// quoted reads a quoted value at the start of s.
func quoted(s string) (v, rest string, ok bool) {
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}

// named returns the value of the argument called name, else the pos-th
// positional one that is not one of the flags, else "".
func named(attrs []attr, name string, pos int, flags ...string) string {
	for _, a := range attrs {
		if a.name == name {
			return a.value
		}
	}
	i := 0
	for _, a := range attrs {
		if a.name != "" || a.bare && isFlag(a.value, flags) {
			continue
		}
		if i == pos {
			return a.value
		}
		i++
	}
	return ""
}

func isFlag(v string, flags []string) bool {
	for _, f := range flags {
		if strings.EqualFold(v, f) {
			return true
		}
	}
	return false
}

// hasFlag reports whether a bare flag (or flag=...) is among attrs.
func hasFlag(attrs []attr, flag string) bool {
	for _, a := range attrs {
		if a.name == flag || a.bare && strings.EqualFold(a.value, flag) {
			return true
		}
	}
	return false
}

// openTag acts on an opening tag. secure says whether the line (or an
// element built only of allowed tags) may use secure tags; fromElement
// stops an element's parts from expanding other elements.
func (d *Decoder) openTag(name string, attrs []attr, secure, fromElement bool) {
	canon, builtin := canonical[name]
	if !builtin {
		if e := d.elements[name]; e != nil && !fromElement && (secure || e.open) {
			d.expand(name, e, attrs)
		}
		return // unknown tags are stripped
	}
	if secureOnly[canon] && !secure {
		return // a secure tag on an open line is ignored, as the spec says
	}
	switch canon {
	case "b", "i", "u", "s", "h":
		d.push(frame{name: canon, set: styleBit(canon)})
	case "c":
		f := frame{name: canon}
		f.fg, f.hasFg = parseColor(named(attrs, "fore", 0))
		f.bg, f.hasBg = parseColor(named(attrs, "back", 1))
		d.push(f)
	case "a":
		u, ok := safeURL(named(attrs, "href", 0))
		if !d.push(frame{name: canon}) || !ok || d.linkOpen {
			return
		}
		if osc := "\x1b]8;;" + u + "\x1b\\"; d.spend(len(osc)) {
			d.frames[len(d.frames)-1].link = linkOSC8
			d.linkOpen = true
			d.emit([]byte(osc))
		}
	case "send":
		d.send(attrs)
	case "br":
		d.emitText([]byte{'\n'})
	case "support":
		d.support(attrs)
	case "version":
		d.reply("<VERSION MXP=1.0 CLIENT=" + token(d.cfg.ClientName) + versionArg(d.cfg.ClientVersion) + ">")
	}
}

func versionArg(v string) string {
	if v = token(v); v == "" {
		return ""
	}
	return " VERSION=" + v
}

// token keeps the characters of s that are safe in an unquoted MXP value.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (isLetter(byte(r)) || isDigit(byte(r)) || r == '.' || r == '-' || r == '_') {
			return r
		}
		return -1
	}, s)
}

// send opens a command link. A link inside a link is not a link: its text
// shows plainly, as nested <a> in HTML.
func (d *Decoder) send(attrs []attr) {
	href := named(attrs, "href", 0, "prompt")
	hint := named(attrs, "hint", 1, "prompt")
	prompt := hasFlag(attrs, "prompt")
	f := frame{name: "send"}
	if d.linkOpen {
		d.push(f)
		return
	}
	if href == "" || strings.Contains(href, "&text;") || strings.Contains(hint, "&text;") {
		// The command is (or contains) the link's text: hold the text
		// back until </send> says what it is.
		f.link = linkCapture
		if d.push(f) {
			d.capture = &capture{href: href, hint: hint, prompt: prompt}
			d.linkOpen = true
		}
		return
	}
	if !d.push(f) {
		return
	}
	if osc, ok := commandOSC(href, hint, prompt, ""); ok && d.spend(len(osc)) {
		d.frames[len(d.frames)-1].link = linkSend
		d.linkOpen = true
		d.emit(osc)
	}
}

// commandOSC builds the OSC 7701 opening for a <send>: href and hint split
// at '|' (a menu), &text; replaced by text. It fails when nothing sendable
// remains or a bound of the inline spec is passed.
func commandOSC(href, hint string, prompt bool, text string) ([]byte, bool) {
	if href == "" {
		href = "&text;"
	}
	cmds := strings.Split(strings.ReplaceAll(href, "&text;", text), "|")
	for i, c := range cmds {
		c = stripControls(c)
		if strings.TrimSpace(c) == "" || len(c) > maxCmdBytes || isScriptURI(c) {
			return nil, false
		}
		cmds[i] = c
	}
	var hints []string
	if hint != "" {
		hs := strings.Split(strings.ReplaceAll(hint, "&text;", text), "|")
		if len(hs) == len(cmds)+1 {
			hs = hs[1:] // the first is the link's tooltip, the rest label the menu
		}
		switch {
		case len(hs) == len(cmds):
			hints = hs
		case len(cmds) == 1:
			hints = []string{hint}
		}
		for i, h := range hints {
			hints[i] = truncate(stripControls(h), maxCmdBytes)
		}
	}
	if len(cmds) > maxCmds {
		cmds = cmds[:maxCmds]
		if hints != nil {
			hints = hints[:maxCmds]
		}
	}
	payload, err := json.Marshal(struct {
		Cmds   []string `json:"cmds"`
		Hints  []string `json:"hints,omitempty"`
		Prompt bool     `json:"prompt"`
	}{cmds, hints, prompt})
	if err != nil || len("7701;")+len(payload) > maxOSCBytes {
		return nil, false
	}
	osc := make([]byte, 0, len(payload)+9)
	osc = append(osc, "\x1b]7701;"...)
	osc = append(osc, payload...)
	return append(osc, esc, '\\'), true
}

// isScriptURI reports whether a command is a URI a browser could run or
// open (javascript:, vbscript:, data:, file:). A command is only ever sent
// to the game as typed text, but such a link has no business in a game and
// would turn dangerous in a client that treated it as a URL.
func isScriptURI(c string) bool {
	c = strings.ToLower(strings.TrimSpace(c))
	for _, s := range []string{"javascript:", "vbscript:", "data:", "file:"} {
		if strings.HasPrefix(c, s) {
			return true
		}
	}
	return false
}

// stripControls drops C0, DEL and C1 characters and mends invalid UTF-8.
func stripControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// safeURL accepts an absolute http or https URL with a host and no
// credentials, and returns it in canonical form; anything else (javascript:,
// data:, relative, controls, spaces, non-ASCII: IDNs travel as punycode)
// is refused.
func safeURL(href string) (string, bool) {
	href = strings.TrimSpace(href)
	if href == "" || len(href) > maxURL {
		return "", false
	}
	for i := 0; i < len(href); i++ {
		if c := href[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	u, err := url.Parse(href)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	s := u.String()
	if len(s) > maxURL || strings.ContainsAny(s, "\x1b\x07") {
		return "", false
	}
	return s, true
}

// support answers <SUPPORT [tag tag.attr tag.* ...]>: everything
// supported when asked nothing, else +name or -name for each name asked.
func (d *Decoder) support(attrs []attr) {
	var parts []string
	if len(attrs) == 0 {
		for _, s := range supports {
			parts = append(parts, "+"+s.tag)
			for _, a := range s.attrs {
				parts = append(parts, "+"+s.tag+"."+a)
			}
		}
	}
	for i, a := range attrs {
		if i >= 64 {
			break
		}
		q := strings.ToLower(token(a.value))
		if a.value != "" && a.value[0] == '!' {
			q = "!" + q
		}
		tag, sub, hasSub := strings.Cut(q, ".")
		var known []string
		found := false
		for _, s := range supports {
			if s.tag == tag {
				known, found = s.attrs, true
			}
		}
		if strings.HasSuffix(a.value, ".*") {
			sub, hasSub = "*", true
		}
		switch {
		case q == "":
		case !found:
			parts = append(parts, "-"+q)
		case !hasSub:
			parts = append(parts, "+"+tag)
		case sub == "*":
			for _, k := range known {
				parts = append(parts, "+"+tag+"."+k)
			}
		case contains(known, sub):
			parts = append(parts, "+"+q)
		default:
			parts = append(parts, "-"+q)
		}
	}
	d.reply("<SUPPORTS " + strings.Join(parts, " ") + ">")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// reply queues an answer to the game, sent on a secure line as the spec
// asks of client responses.
func (d *Decoder) reply(s string) {
	if len(d.replies)+len(s) > maxReplies {
		return // a game asking thousands of times gets its first answers
	}
	d.replies = append(d.replies, "\x1b[1z"...)
	d.replies = append(d.replies, s...)
	d.replies = append(d.replies, '\r', '\n')
}

// entity emits the character an entity in text stands for; an unknown one
// stays as it was written.
func (d *Decoder) entity(name string) {
	if r, ok := entityRune(name); ok {
		if r >= 0 {
			d.emitText(utf8.AppendRune(nil, r))
		}
		return
	}
	d.emitText([]byte("&" + name + ";"))
}

// entityRune resolves a standard or numeric entity; r < 0 means a valid
// numeric entity for a character that is dropped (a control character:
// &#27; must not become an escape).
func entityRune(name string) (r rune, ok bool) {
	switch name {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "quot":
		return '"', true
	case "apos":
		return '\'', true
	case "nbsp":
		return '\u00a0', true
	}
	if !strings.HasPrefix(name, "#") || len(name) < 2 {
		return 0, false
	}
	var v uint64
	var err error
	if name[1] == 'x' || name[1] == 'X' {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil {
		return 0, false
	}
	r = rune(v)
	if v > utf8.MaxRune || r < 0x20 || r >= 0x7f && r <= 0x9f || !utf8.ValidRune(r) {
		return -1, true
	}
	return r, true
}

// decodeEntities decodes the standard and numeric entities in an argument
// value, leaving the rest (&text;, an element's &name;) for substitution.
func decodeEntities(s string) string {
	return replaceRefs(s, maxEntity, func(name string, b *strings.Builder) bool {
		r, ok := entityRune(name)
		if ok && r >= 0 {
			b.WriteRune(r)
		}
		return ok
	})
}
