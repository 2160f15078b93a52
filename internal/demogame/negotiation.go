package demogame

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// The telnetHandler half of session: what the client's commands,
// negotiations and subnegotiations do.

func (s *session) command(cmd byte) {
	if cmd == cmdAYT {
		// "Are You There": answer in-band, as RFC 854 suggests.
		s.text("\r\n[" + s.cfg.Name + ": yes]\r\n")
	}
	// NOP, GA, EOR, IP, BRK and the rest mean nothing to a line-mode game.
}

func (s *session) negotiate(verb, opt byte) {
	n := s.opts.receive(verb, opt, s.cfg.offersUs, s.cfg.offersHim)
	s.buf = append(s.buf, n.reply...)
	usSide := verb == cmdDO || verb == cmdDONT
	switch {
	case n.enabled && usSide:
		s.usEnabled(opt)
	case n.enabled:
		s.himEnabled(opt)
	case n.refused || n.ended:
		s.disabled(opt, usSide)
	}
	s.updatePromptMark()
}

// usEnabled reacts to the client agreeing that the server does opt.
func (s *session) usEnabled(opt byte) {
	switch opt {
	case optMSSP:
		s.sendMSSP()
	case optMCCP2:
		if s.phase == phaseNegotiating {
			// Compression starts right after the banner, so clients
			// must handle the switch in the middle of a stream.
			s.compressLater = true
			return
		}
		s.startCompression()
	case optGMCP:
		if s.player != nil {
			s.sendVitals()
		}
	case optMXP:
		s.mxpStart()
	}
}

func (s *session) startCompression() {
	if err := s.flush(); err != nil {
		return // the connection is closed; run sees it on the next read
	}
	_ = s.out.startCompression()
}

// himEnabled reacts to the client agreeing to do opt.
func (s *session) himEnabled(opt byte) {
	switch opt {
	case optTTYPE:
		s.askTTYPE()
	case optCHARSET:
		s.buf = appendSubneg(s.buf, optCHARSET, []byte{charsetREQUEST}, []byte(";UTF-8;ISO-8859-1"))
	case optNEWENVIRON:
		// An empty SEND asks for every variable the client will share.
		s.buf = appendSubneg(s.buf, optNEWENVIRON, []byte{envSEND})
	}
}

func (s *session) disabled(opt byte, usSide bool) {
	if usSide {
		switch opt {
		case optMCCP2:
			s.compressLater = false
			if err := s.flush(); err == nil {
				_ = s.out.stopCompression()
			}
		}
		return
	}
	switch opt {
	case optTTYPE:
		s.ttypeDone = true
	case optCHARSET:
		s.charsetDone = true
	case optNEWENVIRON:
		s.envDone = true
	}
}

func (s *session) askTTYPE() {
	s.ttypeAsked++
	s.buf = appendSubneg(s.buf, optTTYPE, []byte{ttypeSEND})
}

func (s *session) subnegotiation(opt byte, body []byte) {
	switch opt {
	case optTTYPE:
		if s.opts.himOn(optTTYPE) {
			s.gotTTYPE(body)
		}
	case optNAWS:
		if s.opts.himOn(optNAWS) && len(body) == 4 {
			s.cols = int(binary.BigEndian.Uint16(body[0:2]))
			s.rows = int(binary.BigEndian.Uint16(body[2:4]))
		}
	case optCHARSET:
		s.gotCharset(body)
	case optNEWENVIRON:
		if s.opts.himOn(optNEWENVIRON) {
			s.gotEnviron(body)
		}
	case optGMCP:
		if s.opts.usOn(optGMCP) {
			s.gotGMCP(body)
		}
	case optMSDP:
		if s.opts.usOn(optMSDP) {
			s.gotMSDP(body)
		}
	}
	// SB for options never agreed is ignored quietly, as real servers do.
}

// gotTTYPE follows the MTTS cycle: up to three SENDs give the client name,
// the terminal type and "MTTS <bits>"; a repeated answer ends it early.
func (s *session) gotTTYPE(body []byte) {
	if len(body) == 0 || body[0] != ttypeIS || s.ttypeDone {
		return
	}
	name := strings.ToUpper(string(body[1:]))
	if n := len(s.ttypes); n > 0 && s.ttypes[n-1] == name {
		s.ttypeDone = true
		return
	}
	s.ttypes = append(s.ttypes, name)
	if bits, ok := strings.CutPrefix(name, "MTTS "); ok {
		if v, err := strconv.Atoi(bits); err == nil {
			s.mtts = v
		}
	}
	if s.ttypeAsked >= 3 {
		s.ttypeDone = true
		return
	}
	s.askTTYPE()
}

// gotCharset handles the client's answer to our REQUEST, and refuses or
// accepts a REQUEST of its own (UTF-8 only).
func (s *session) gotCharset(body []byte) {
	if len(body) == 0 {
		return
	}
	switch body[0] {
	case charsetACCEPTED:
		if s.opts.himOn(optCHARSET) {
			s.charset = string(body[1:])
			s.charsetDone = true
		}
	case charsetREJECTED:
		s.charsetDone = true
	case charsetREQUEST:
		rest := body[1:]
		if bytes.HasPrefix(rest, []byte("[TTABLE]")) && len(rest) > 9 {
			rest = rest[9:] // skip "[TTABLE]" and its version byte
		}
		if len(rest) < 2 {
			s.buf = appendSubneg(s.buf, optCHARSET, []byte{charsetREJECTED})
			return
		}
		for name := range bytes.SplitSeq(rest[1:], rest[:1]) {
			if strings.EqualFold(string(name), "UTF-8") {
				s.charset = "UTF-8"
				s.buf = appendSubneg(s.buf, optCHARSET, []byte{charsetACCEPTED}, name)
				return
			}
		}
		s.buf = appendSubneg(s.buf, optCHARSET, []byte{charsetREJECTED})
	}
}

// gotEnviron parses IS/INFO: (VAR|USERVAR name [VALUE value])*, where ESC
// quotes the next byte. IPADDRESS is the MNES variable that carries the
// player's real address through a proxy such as Trellis.
func (s *session) gotEnviron(body []byte) {
	if len(body) == 0 || (body[0] != envIS && body[0] != envINFO) {
		return
	}
	s.envDone = true
	if s.env == nil {
		s.env = make(map[string]string)
	}
	var name, value []byte
	cur := (*[]byte)(nil)
	flush := func() {
		if cur != nil && len(name) > 0 && len(s.env) < 32 {
			s.env[strings.ToUpper(string(name))] = string(value)
		}
		name, value = nil, nil
	}
	for i := 1; i < len(body); i++ {
		switch b := body[i]; b {
		case envVAR, envUSERVAR:
			flush()
			cur = &name
		case envVALUE:
			if cur != nil {
				cur = &value
			}
		case envESC:
			if i+1 < len(body) && cur != nil {
				i++
				*cur = append(*cur, body[i])
			}
		default:
			if cur != nil && len(*cur) < 256 {
				*cur = append(*cur, b)
			}
		}
	}
	flush()
	if ip, ok := s.env["IPADDRESS"]; ok && s.player != nil {
		s.srv.world.setIP(s.player, ip)
	}
}

// gotGMCP answers Core.Ping and remembers Core.Hello; the rest is ignored.
func (s *session) gotGMCP(body []byte) {
	pkg, data, _ := bytes.Cut(body, []byte(" "))
	switch strings.ToLower(string(pkg)) {
	case "core.ping":
		s.buf = appendSubneg(s.buf, optGMCP, []byte("Core.Ping"))
	case "core.hello":
		s.gmcpClient = string(bytes.TrimSpace(data))
	}
}

// sendMSSP answers DO MSSP with the game's vital statistics.
func (s *session) sendMSSP() {
	vars := [][2]string{
		{"NAME", s.cfg.Name},
		{"PLAYERS", strconv.Itoa(s.srv.world.count())},
		{"UPTIME", strconv.FormatInt(s.srv.started.Unix(), 10)},
		{"CODEBASE", "Trellis demogame"},
		{"CHARSET", "UTF-8"},
		{"ANSI", "1"},
		{"UTF-8", "1"},
		{"XTERM 256 COLORS", "1"},
		{"XTERM TRUE COLORS", "1"},
		{"GMCP", boolFlag(!s.cfg.NoGMCP)},
		{"MCCP", boolFlag(!s.cfg.NoMCCP2)},
		{"MSDP", boolFlag(!s.cfg.NoMSDP)},
		{"CRAWL DELAY", "-1"},
	}
	body := make([]byte, 0, 256)
	for _, v := range vars {
		body = append(body, msspVAR)
		body = append(body, v[0]...)
		body = append(body, msspVAL)
		body = append(body, v[1]...)
	}
	s.buf = appendSubneg(s.buf, optMSSP, body)
}

func boolFlag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
