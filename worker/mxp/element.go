package mxp

import (
	"strings"
)

// element is a custom tag from <!ELEMENT name '<tag ...>...' ATT='...'>.
type element struct {
	parts []part
	att   []attr // argument names with their defaults, in positional order
	open  bool   // usable on open lines (then its parts are all open tags)
	empty bool   // no closing tag
	size  int    // bytes counted against MaxElementTotal
}

// part is one tag of an element's definition.
type part struct {
	name  string
	attrs []attr
}

// defineElement handles the arguments of <!ELEMENT ...> (secure lines
// only). A definition is kept only if it is built of supported tags, no
// other elements, and fits the bounds; anything else is ignored whole.
func (d *Decoder) defineElement(args string) {
	attrs, ok := parseAttrs(args, d.cfg.MaxElementBytes)
	if !ok {
		return
	}
	name := strings.ToLower(named(attrs, "\x00", 0))
	if !validElementName(name) {
		return
	}
	if _, builtin := canonical[name]; builtin {
		return
	}
	if hasFlag(attrs, "delete") {
		d.deleteElement(name)
		return
	}
	e := &element{open: hasFlag(attrs, "open"), empty: hasFlag(attrs, "empty")}
	def := named(attrs, "\x00", 1, "open", "empty", "delete")
	for _, a := range attrs {
		if a.name == "element" || a.name == "el" {
			def = a.value
		}
	}
	if len(def) > d.cfg.MaxElementBytes {
		return
	}
	if e.parts, ok = parseDefinition(def, e.open, d.cfg.MaxAttr); !ok {
		return
	}
	if att := named(attrs, "att", -1); att != "" {
		if e.att, ok = parseAttrs(att, d.cfg.MaxAttr); !ok {
			return
		}
		for i := range e.att {
			if e.att[i].name == "" {
				e.att[i] = attr{name: strings.ToLower(e.att[i].value)} // a name without a default
			}
		}
	}
	e.size = len(name) + len(def) + 64
	old := d.elements[name]
	if old == nil && len(d.elements) >= d.cfg.MaxElements {
		return
	}
	total := d.elemBytes + e.size
	if old != nil {
		total -= old.size
	}
	if total > d.cfg.MaxElementTotal {
		return
	}
	if d.elements == nil {
		d.elements = make(map[string]*element)
	}
	d.elements[name] = e
	d.elemBytes = total
}

func (d *Decoder) deleteElement(name string) {
	if old := d.elements[name]; old != nil {
		d.elemBytes -= old.size
		delete(d.elements, name)
	}
}

func validElementName(name string) bool {
	if name == "" || len(name) > 32 || !isLetter(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// parseDefinition splits an element definition into its tags. It fails on
// text between them, closing tags, definitions, unsupported tags, and (for
// an open element) secure tags: an element can never do more than the
// line that uses it could do with its tags written out.
func parseDefinition(def string, open bool, maxAttr int) ([]part, bool) {
	var parts []part
	for {
		def = strings.TrimSpace(def)
		if def == "" {
			return parts, true
		}
		if def[0] != '<' {
			return nil, false
		}
		end, quote := -1, byte(0)
		for i := 1; i < len(def) && end < 0; i++ {
			switch c := def[i]; {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '>':
				end = i
			}
		}
		if end < 0 {
			return nil, false
		}
		name, rest := splitName(def[1:end])
		def = def[end+1:]
		canon, ok := canonical[name]
		if !ok || canon == "support" || canon == "version" || open && secureOnly[canon] {
			return nil, false
		}
		attrs, ok := parseAttrs(rest, maxAttr)
		if !ok {
			return nil, false
		}
		parts = append(parts, part{name: name, attrs: attrs})
	}
}

// expand opens an element: a marker frame, then its parts with the
// element's arguments substituted for &name;.
func (d *Decoder) expand(name string, e *element, args []attr) {
	vals := make(map[string]string, len(e.att))
	for _, a := range e.att {
		vals[a.name] = a.value
	}
	pos := 0
	for _, a := range args {
		switch {
		case a.name != "":
			vals[a.name] = a.value
		case pos < len(e.att):
			vals[e.att[pos].name] = a.value
			pos++
		}
	}
	if !d.push(frame{name: name, element: true}) {
		return
	}
	at := len(d.frames) - 1
	for _, p := range e.parts {
		attrs := make([]attr, len(p.attrs))
		ok := true
		for i, a := range p.attrs {
			a.value = substitute(a.value, vals)
			if len(a.value) > d.cfg.MaxAttr {
				ok = false
			}
			attrs[i] = a
		}
		if ok {
			d.openTag(p.name, attrs, true, true)
		}
	}
	if e.empty {
		d.popTo(at)
	}
}

// substitute replaces &name; for each argument of the element; &text;
// (the <send> text) and unknown names stay.
func substitute(s string, vals map[string]string) string {
	return replaceRefs(s, 0, func(name string, b *strings.Builder) bool {
		v, ok := vals[strings.ToLower(name)]
		if !ok || name == "text" {
			return false
		}
		b.WriteString(v)
		return true
	})
}

// replaceRefs rewrites the &name; references of s: repl writes the
// replacement of name and reports whether it had one; a reference it has
// none for stays as it is. maxName > 0 bounds a name: a longer one is not
// a reference, and its '&' is text.
func replaceRefs(s string, maxName int, repl func(name string, b *strings.Builder) bool) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexByte(s, ';')
		if j < 0 || (maxName > 0 && j > maxName+1) {
			b.WriteByte('&')
			s = s[1:]
			continue
		}
		if !repl(s[1:j], &b) {
			b.WriteString(s[:j+1])
		}
		s = s[j+1:]
	}
}
