package demogame

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
)

func (s *session) look() {
	s.text("\x1b[1;36mThe Trellis Garden\x1b[0m\r\n")
	s.text("Green vines climb a white \x1b[33mtrellis\x1b[0m that arches over a gravel path. " +
		"A \x1b[35mpainted sign\x1b[0m swings from the top; a \x1b[31mtraining dummy\x1b[0m " +
		"stands patiently by the fence.\r\n")
	s.mxpLook()
	var here []string
	for _, w := range s.srv.world.who() {
		if w.name != s.name {
			here = append(here, w.name)
		}
	}
	if len(here) == 0 {
		s.text("You are alone here.\r\n")
	} else {
		s.text("Also here: \x1b[1m" + strings.Join(here, ", ") + "\x1b[0m.\r\n")
	}
	if s.cols > 0 {
		s.textf("Your window is %dx%d.\r\n", s.cols, s.rows)
	} else {
		s.text("Your window size is unknown.\r\n")
	}
	if len(s.ttypes) > 0 {
		s.text("Your client calls itself " + strings.Join(s.ttypes, " / ") + ".\r\n")
	}
	if s.gmcpClient != "" {
		s.text("Your client said hello over GMCP: " + s.gmcpClient + "\r\n")
	}
	if s.charset != "" {
		s.text("We speak " + s.charset + ".\r\n")
	}
}

func (s *session) say(msg string) {
	if msg == "" {
		s.text("Say what?\r\n")
		return
	}
	s.text("You say: " + msg + "\r\n")
	s.broadcast(s.name + " says: " + msg)
}

func (s *session) who() {
	who := s.srv.world.who()
	s.textf("Players online (%d):\r\n", len(who))
	for _, w := range who {
		ip := w.ip
		if ip == "" {
			ip = "-"
		}
		s.textf("  %-20s %s\r\n", w.name, ip)
	}
}

func (s *session) help() {
	s.text("Commands:\r\n" +
		"  look               describe the room\r\n" +
		"  say <text>         talk to everyone in the room\r\n" +
		"  who                list players and their addresses (via MNES)\r\n" +
		"  echo <text>        send <text> back verbatim\r\n" +
		"  flood <n> [bytes]  send n numbered lines of that many bytes\r\n" +
		"  colors             16, 256 and true-colour samples\r\n" +
		"  vitals             show hit points (and send GMCP Char.Vitals)\r\n" +
		"  fight / rest       lose / regain vitals\r\n" +
		"  quit               leave the game\r\n")
}

// colors prints samples of every colour depth a MUD uses, with the SGR
// codes spelled out so a client's rendering can be checked by eye.
func (s *session) colors() {
	// The samples fit the window the client reported (NAWS): a phone is
	// about 40 columns, and a chart wider than that wraps into noise.
	perRow, blocks := 16, 64
	if s.cols > 0 && s.cols < 64 {
		perRow, blocks = 8, max(8, min(64, s.cols-1))
	}
	var b strings.Builder
	b.WriteString("16 colours (SGR 30-37 on 40-47):\r\n")
	for fg := 30; fg <= 37; fg++ {
		fmt.Fprintf(&b, "\x1b[%dm %d \x1b[0m", fg, fg)
	}
	b.WriteString("\r\n")
	for bg := 40; bg <= 47; bg++ {
		fmt.Fprintf(&b, "\x1b[%d;37m %d \x1b[0m", bg, bg)
	}
	b.WriteString("\r\nBright (SGR 90-97, 1;3x):\r\n")
	for fg := 90; fg <= 97; fg++ {
		fmt.Fprintf(&b, "\x1b[%dm %d \x1b[0m", fg, fg)
	}
	b.WriteString("\r\n")
	for fg := 30; fg <= 37; fg++ {
		fmt.Fprintf(&b, "\x1b[1;%dm1;%d\x1b[0m ", fg, fg)
	}
	b.WriteString("\r\n256 colours (SGR 38;5;n):\r\n")
	for n := 0; n < 256; n++ {
		fmt.Fprintf(&b, "\x1b[38;5;%dm%4d\x1b[0m", n, n)
		if n%perRow == perRow-1 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("True colour (SGR 38;2;r;g;b):\r\n")
	for i := 0; i < blocks; i++ {
		r, g := i*256/blocks, 255-i*256/blocks
		fmt.Fprintf(&b, "\x1b[48;2;%d;%d;128m \x1b[0m", r, g)
	}
	b.WriteString("\r\n\x1b[38;2;255;128;0mThis line is 38;2;255;128;0.\x1b[0m\r\n")
	s.text(b.String())
}

// vitals is the character sheet sent as GMCP Char.Vitals.
type vitals struct {
	HP    int `json:"hp"`
	MaxHP int `json:"maxhp"`
	MP    int `json:"mp"`
	MaxMP int `json:"maxmp"`
	MV    int `json:"mv"`
	MaxMV int `json:"maxmv"`
}

func fullVitals() vitals {
	return vitals{HP: 100, MaxHP: 100, MP: 50, MaxMP: 50, MV: 80, MaxMV: 80}
}

func (s *session) showVitals() {
	v := s.vitals
	s.textf("HP %d/%d  MP %d/%d  MV %d/%d\r\n", v.HP, v.MaxHP, v.MP, v.MaxMP, v.MV, v.MaxMV)
	s.sendVitals()
}

func (s *session) fight() {
	v := &s.vitals
	if v.HP <= 10 {
		s.text("You are too weak to fight. Try to rest.\r\n")
		return
	}
	v.HP -= 7
	v.MP = max(v.MP-3, 0)
	v.MV = max(v.MV-5, 0)
	s.text("You spar with the training dummy. It hits back.\r\n")
	s.sendVitals()
}

func (s *session) rest() {
	s.vitals = fullVitals()
	s.text("You rest on the bench and feel much better.\r\n")
	s.sendVitals()
}

// sendVitals sends GMCP Char.Vitals when the client agreed to GMCP, and
// the MSDP variables it asked to REPORT that changed.
func (s *session) sendVitals() {
	s.reportMSDP()
	if !s.opts.usOn(optGMCP) {
		return
	}
	data, err := json.Marshal(s.vitals)
	if err != nil {
		panic(err) // a struct of ints always marshals
	}
	s.buf = appendSubneg(s.buf, optGMCP, []byte("Char.Vitals "), data)
}

// Flood limits, so one command cannot ask for unbounded work.
const (
	maxFloodLines   = 1_000_000
	maxFloodBytes   = 4096
	defaultFloodLen = 80
	floodBatch      = 256 << 10
)

type floodArgs struct{ lines, bytes int }

// parseFlood reads "<n> [bytes]" and clamps both to the limits.
func parseFlood(fields []string) (floodArgs, bool) {
	if len(fields) < 1 || len(fields) > 2 {
		return floodArgs{}, false
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 0 {
		return floodArgs{}, false
	}
	a := floodArgs{lines: min(n, maxFloodLines), bytes: defaultFloodLen}
	if len(fields) == 2 {
		b, err := strconv.Atoi(fields[1])
		if err != nil || b < 0 {
			return floodArgs{}, false
		}
		a.bytes = min(b, maxFloodBytes)
	}
	return a, true
}

var floodBuffers = sync.Pool{New: func() any { b := make([]byte, 0, floodBatch+maxFloodBytes+16); return &b }}

// flood writes "flood 000001 xxx...\r\n" lines, each exactly a.bytes long
// including CR LF (or as short as the number allows), in big batches
// straight to the connection. The line is built once and only its digits
// change, so the game produces output far faster than any client reads it.
func (s *session) flood(a floodArgs) {
	if err := s.flush(); err != nil {
		return
	}
	bp := floodBuffers.Get().(*[]byte)
	defer floodBuffers.Put(bp)
	buf := (*bp)[:0]
	var tmpl []byte
	for i := 1; i <= a.lines; i++ {
		if i == 1 || i == 1_000_000 {
			tmpl = floodLine(i, a.bytes)
		}
		start := len(buf)
		buf = append(buf, tmpl...)
		// Overwrite the zero-padded number in place: "flood " is 6 bytes.
		for j, n := start+6+digits(i)-1, i; j >= start+6; j-- {
			buf[j] = byte('0' + n%10)
			n /= 10
		}
		if len(buf) >= floodBatch {
			if err := s.out.write(buf); err != nil {
				return
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		_ = s.out.write(buf)
	}
}

// digits is the width of the line number: zero-padded to six, and seven
// only for the last line of the largest flood.
func digits(i int) int {
	if i >= 1_000_000 {
		return 7
	}
	return 6
}

// floodLine builds line i padded to size bytes including CR LF.
func floodLine(i, size int) []byte {
	line := fmt.Appendf(nil, "flood %06d", i)
	if pad := size - len(line) - 2; pad > 0 {
		line = append(line, ' ')
		line = append(line, strings.Repeat("x", pad-1)...)
	}
	return append(line, '\r', '\n')
}
