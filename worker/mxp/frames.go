package mxp

import (
	"strconv"
	"strings"
)

// linkKind says what link, if any, a frame opened.
type linkKind uint8

const (
	linkNone    linkKind = iota
	linkOSC8             // <a href>: OSC 8 is open
	linkSend             // <send href>: OSC 7701 is open
	linkCapture          // <send> holding its text back until it closes
)

type styleBits uint8

const (
	bold styleBits = 1 << iota
	italic
	underline
	strike
)

func styleBit(canon string) styleBits {
	switch canon {
	case "b", "h": // <h> (highlight) is shown bold
		return bold
	case "i":
		return italic
	case "u":
		return underline
	}
	return strike
}

type rgb struct{ r, g, b uint8 }

// style is what the MXP tags open at a point ask for.
type style struct {
	bits         styleBits
	fg, bg       rgb
	hasFg, hasBg bool
}

// frame is one open tag.
type frame struct {
	name         string // canonical tag name, or the element's name
	element      bool   // the marker of an expanded element
	link         linkKind
	set          styleBits
	fg, bg       rgb
	hasFg, hasBg bool
}

// capture is a <send> whose text is held back to become its command.
type capture struct {
	href, hint string
	prompt     bool
	rendered   []byte // the output inside the link, escapes included
	plain      []byte // the text alone: what &text; stands for
}

// push opens a frame, or reports false when MaxDepth is reached and the
// tag is dropped.
func (d *Decoder) push(f frame) bool {
	if len(d.frames) >= d.cfg.MaxDepth {
		return false
	}
	d.frames = append(d.frames, f)
	d.restyle()
	return true
}

// closeTag closes the innermost open tag called name, and every tag
// opened inside it. A close that matches nothing is ignored.
func (d *Decoder) closeTag(name string) {
	if c, ok := canonical[name]; ok {
		name = c
	}
	for i := len(d.frames) - 1; i >= 0; i-- {
		f := &d.frames[i]
		if f.name != name {
			continue
		}
		if _, builtin := canonical[name]; builtin == f.element {
			continue // </b> does not close an element named b (none can be) and vice versa
		}
		d.popTo(i)
		return
	}
}

// closeAll closes every open tag.
func (d *Decoder) closeAll() { d.popTo(0) }

// popTo closes the frames from index i up, links first, then restores
// the style of what remains open.
func (d *Decoder) popTo(i int) {
	for j := len(d.frames) - 1; j >= i; j-- {
		switch d.frames[j].link {
		case linkOSC8:
			d.linkOpen = false
			d.emit([]byte("\x1b]8;;\x1b\\"))
		case linkSend:
			d.linkOpen = false
			d.emit([]byte("\x1b]7701;\x1b\\"))
		case linkCapture:
			d.linkOpen = false
			d.finishCapture()
		}
	}
	if i < len(d.frames) {
		d.frames = d.frames[:i]
		d.restyle()
	}
	if len(d.frames) == 0 && cap(d.frames) > 64 {
		d.frames = nil
	}
}

// finishCapture ends a held <send>: the link, with &text; now known,
// around the text that was held; or the text alone when no link can be
// made of it.
func (d *Decoder) finishCapture() {
	c := d.capture
	if c == nil {
		return // abandoned already
	}
	d.capture = nil
	osc, ok := commandOSC(c.href, c.hint, c.prompt, strings.TrimSpace(string(c.plain)))
	ok = ok && d.spend(len(osc))
	if ok {
		d.emit(osc)
	}
	d.emit(c.rendered)
	if ok {
		d.emit([]byte("\x1b]7701;\x1b\\"))
	}
}

// abandonCapture releases held <send> text that passed MaxCapture: it is
// shown without a link, and what follows flows straight out.
func (d *Decoder) abandonCapture() {
	c := d.capture
	d.capture = nil
	for j := range d.frames {
		if d.frames[j].link == linkCapture {
			d.frames[j].link = linkNone
		}
	}
	d.linkOpen = false
	d.out = append(d.out, c.rendered...)
}

// restyle emits the SGR that takes the browser from the style emitted so
// far to the one the open frames ask for, touching only what changed, so
// the game's own ANSI colours inside survive where MXP does not override.
func (d *Decoder) restyle() {
	var want style
	for i := range d.frames {
		f := &d.frames[i]
		want.bits |= f.set
		if f.hasFg {
			want.fg, want.hasFg = f.fg, true
		}
		if f.hasBg {
			want.bg, want.hasBg = f.bg, true
		}
	}
	have := d.cur
	if want == have {
		return
	}
	// Turning things off is free; turning them on is markup to pay for.
	// Without credit only the offs go out, and cur says what the browser
	// was really told.
	var codes, offs []string
	off := have
	for _, b := range [...]struct {
		bit     styleBits
		on, off string
	}{{bold, "1", "22"}, {italic, "3", "23"}, {underline, "4", "24"}, {strike, "9", "29"}} {
		switch w, h := want.bits&b.bit != 0, have.bits&b.bit != 0; {
		case w && !h:
			codes = append(codes, b.on)
		case !w && h:
			codes = append(codes, b.off)
			offs = append(offs, b.off)
			off.bits &^= b.bit
		}
	}
	codes, offs = colorCodes(codes, offs, want.hasFg, want.fg, have.hasFg, have.fg, "38", "39", &off.hasFg, &off.fg)
	codes, offs = colorCodes(codes, offs, want.hasBg, want.bg, have.hasBg, have.bg, "48", "49", &off.hasBg, &off.bg)
	sgr := "\x1b[" + strings.Join(codes, ";") + "m"
	if len(codes) > len(offs) && !d.spend(len(sgr)) {
		codes, want = offs, off
		sgr = "\x1b[" + strings.Join(codes, ";") + "m"
	}
	d.cur = want
	if len(codes) > 0 {
		d.emit([]byte(sgr))
	}
}

// colorCodes adds the SGR that moves one colour from have to want to
// codes, and to offs too when that is a reset, which *kept and *col (the
// colour shown when only the offs go out) then record.
func colorCodes(codes, offs []string, want bool, w rgb, have bool, h rgb, set, reset string, kept *bool, col *rgb) ([]string, []string) {
	switch {
	case want && (!have || w != h):
		codes = append(codes, set+";2;"+strconv.Itoa(int(w.r))+";"+strconv.Itoa(int(w.g))+";"+strconv.Itoa(int(w.b)))
	case !want && have:
		*kept, *col = false, rgb{}
		codes = append(codes, reset)
		offs = append(offs, reset)
	}
	return codes, offs
}
