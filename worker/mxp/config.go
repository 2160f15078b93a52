package mxp

// Config bounds what one game can make a Decoder hold. The zero value is
// usable: every zero field takes the default below, stated once here.
type Config struct {
	// MaxTag is the most bytes between '<' and '>' of one tag. A longer
	// tag is dropped whole (up to its '>' or the end of the line). 4 KiB.
	MaxTag int
	// MaxAttr is the most bytes of one attribute value; a tag with a longer
	// one is dropped. 1 KiB.
	MaxAttr int
	// MaxDepth is the most tags open at once (an expanded element counts
	// one plus its parts); tags past it are dropped. 32.
	MaxDepth int
	// MaxElements is the most <!ELEMENT> definitions kept; later ones are
	// ignored. 64.
	MaxElements int
	// MaxElementBytes is the most bytes of one element definition. 1 KiB.
	MaxElementBytes int
	// MaxElementTotal is the most bytes of all definitions together. 16 KiB.
	MaxElementTotal int
	// MaxCapture is the most output a <send> whose command is its own text
	// (no href, or href with &text;) holds back until </send>; past it the
	// text is released without a link. 1 KiB.
	MaxCapture int
	// MaxEscape is the most bytes of one escape sequence held while it is
	// incomplete (an OSC 8 from the game, say); past it the sequence is
	// dropped. 8 KiB.
	MaxEscape int
	// ClientName and ClientVersion answer <VERSION>. "Trellis", "".
	ClientName, ClientVersion string
}

const (
	defaultMaxTag          = 4 << 10
	defaultMaxAttr         = 1 << 10
	defaultMaxDepth        = 32
	defaultMaxElements     = 64
	defaultMaxElementBytes = 1 << 10
	defaultMaxElementTotal = 16 << 10
	defaultMaxCapture      = 1 << 10
	defaultMaxEscape       = 8 << 10
	defaultClientName      = "Trellis"

	// Limits of the OSC 7701 payload, fixed by the inline spec.
	maxCmds     = 8
	maxCmdBytes = 256
	maxOSCBytes = 4 << 10
	// maxURL bounds an <a href>.
	maxURL = 2 << 10
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxTag, defaultMaxTag)
	def(&c.MaxAttr, defaultMaxAttr)
	def(&c.MaxDepth, defaultMaxDepth)
	def(&c.MaxElements, defaultMaxElements)
	def(&c.MaxElementBytes, defaultMaxElementBytes)
	def(&c.MaxElementTotal, defaultMaxElementTotal)
	def(&c.MaxCapture, defaultMaxCapture)
	def(&c.MaxEscape, defaultMaxEscape)
	if c.ClientName == "" {
		c.ClientName = defaultClientName
	}
	return c
}
