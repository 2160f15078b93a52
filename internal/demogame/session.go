package demogame

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// phase is where a connection is in its life.
type phase uint8

const (
	phaseNegotiating phase = iota // offers sent, banner not shown yet
	phaseName                     // "What is your name?"
	phasePassword                 // "Password:" under WILL ECHO
	phasePlaying
	phaseBench // echo server
)

const (
	readBufferSize = 4 << 10
	maxQueuedLines = 32 // lines typed before the banner, kept for later
	maxLoginTries  = 3  // wrong passwords before the game hangs up
	lingerTimeout  = 2 * time.Second
	lingerMaxBytes = 64 << 10
)

// session is one client connection. Everything in it belongs to the
// connection's own goroutine, except out, which other players write to.
type session struct {
	srv  *Server
	cfg  *Config
	conn net.Conn
	log  *slog.Logger
	out  *output

	dec  decoder
	opts options
	buf  []byte // output produced while handling one read, flushed after it

	phase         phase
	queued        [][]byte // lines typed before the banner
	compressLater bool     // client said DO MCCP2 before the banner
	quitting      bool
	kicked        atomic.Bool // a newer login took the character over

	// What the client told us about itself.
	ttypes      []string
	ttypeAsked  int
	ttypeDone   bool
	mtts        int
	cols, rows  int
	charset     string
	charsetDone bool
	env         map[string]string
	envDone     bool
	gmcpClient  string
	proxyIP     string // the player's address by the PROXY header, if any
	// msdpReported: the MSDP variables the client asked to REPORT, each
	// with the value last sent.
	msdpReported map[string]string

	// Login and play.
	name       string
	player     *player
	loginFails int
	vitals     vitals
}

func newSession(srv *Server, conn net.Conn, log *slog.Logger) *session {
	return &session{
		srv:    srv,
		cfg:    &srv.cfg,
		conn:   conn,
		log:    log,
		out:    newOutput(conn, srv.cfg.WriteTimeout),
		vitals: fullVitals(),
	}
}

// run drives the connection until the client leaves, the server shuts
// down, or a write fails.
func (s *session) run() error {
	defer s.logout()
	readBuf := make([]byte, readBufferSize)
	if s.cfg.Bench {
		s.phase = phaseBench
	} else {
		s.sendOffers()
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.awaitAnswers(readBuf); err != nil {
			return err
		}
		if err := s.showBanner(); err != nil {
			return err
		}
	}
	for !s.quitting {
		n, err := s.conn.Read(readBuf)
		if n > 0 {
			s.dec.feed(readBuf[:n], s)
			if ferr := s.flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if s.kicked.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read from %s: %w", s.conn.RemoteAddr(), err)
		}
	}
	return s.hangUp()
}

// flush writes what handling the last read produced.
func (s *session) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.out.write(s.buf)
	s.buf = s.buf[:0]
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
	return err
}

// sendOffers opens negotiation. ECHO is not offered here: it is only used
// around the password prompt.
func (s *session) sendOffers() {
	for _, opt := range []byte{optSGA, optEOR, optGMCP, optMSDP, optMSSP, optMCCP2, optMXP} {
		if s.cfg.offersUs(opt) {
			s.buf = append(s.buf, s.opts.askUs(opt, true)...)
		}
	}
	for _, opt := range []byte{optTTYPE, optNAWS, optCHARSET, optNEWENVIRON} {
		if s.cfg.offersHim(opt) {
			s.buf = append(s.buf, s.opts.askHim(opt, true)...)
		}
	}
}

// awaitAnswers reads until every offer is settled or NegotiationWait runs
// out, whichever is first. Real servers do the same, and some wait far
// longer; a client must not depend on the banner arriving before its answers
// are read.
func (s *session) awaitAnswers(readBuf []byte) error {
	if s.cfg.NegotiationWait <= 0 {
		return nil
	}
	deadline := time.Now().Add(s.cfg.NegotiationWait)
	defer s.conn.SetReadDeadline(time.Time{})
	for s.negotiating() {
		if err := s.conn.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		n, err := s.conn.Read(readBuf)
		if n > 0 {
			s.dec.feed(readBuf[:n], s)
			if ferr := s.flush(); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read from %s during negotiation: %w", s.conn.RemoteAddr(), err)
		}
	}
	return nil
}

// negotiating reports whether an answer the banner should wait for is still
// outstanding: an offer not yet answered, or a follow-up (the TTYPE cycle,
// the window size, the charset, the environment) not yet received.
func (s *session) negotiating() bool {
	o := &s.opts
	for _, opt := range []byte{optSGA, optEOR, optGMCP, optMSDP, optMSSP, optMCCP2, optMXP} {
		if o.us[opt] == optWantYes {
			return true
		}
	}
	for _, opt := range []byte{optTTYPE, optNAWS, optCHARSET, optNEWENVIRON} {
		if o.him[opt] == optWantYes {
			return true
		}
	}
	return o.himOn(optTTYPE) && !s.ttypeDone ||
		o.himOn(optNAWS) && s.cols == 0 ||
		o.himOn(optCHARSET) && !s.charsetDone ||
		o.himOn(optNEWENVIRON) && !s.envDone
}

func (s *session) showBanner() error {
	s.text(ansiBold + "Welcome to " + s.cfg.Name + "!" + ansiReset + "\r\n" +
		"A small game that Trellis uses to test itself. Any password makes a new character.\r\n\r\n")
	if err := s.flush(); err != nil {
		return err
	}
	if s.compressLater {
		if err := s.out.startCompression(); err != nil {
			return err
		}
	}
	s.phase = phaseName
	s.prompt("What is your name? ")
	queued := s.queued
	s.queued = nil
	for _, l := range queued {
		s.line(l)
	}
	return s.flush()
}

// promptMark is what ends a prompt: IAC EOR when the client agreed to EOR,
// else IAC GA unless go-ahead is suppressed, else nothing.
func (s *session) promptMark() []byte {
	switch {
	case s.opts.usOn(optEOR):
		return []byte{cmdIAC, cmdEOR}
	case !s.opts.usOn(optSGA):
		return []byte{cmdIAC, cmdGA}
	}
	return nil
}

func (s *session) prompt(p string) {
	s.text(p)
	s.buf = append(s.buf, s.promptMark()...)
}

// updatePromptMark tells the output how to redraw the prompt after another
// player's message interrupts.
func (s *session) updatePromptMark() {
	if s.phase != phasePlaying {
		return
	}
	s.out.setPrompt(append([]byte("> "), s.promptMark()...))
}

// text queues game text, escaping IAC.
func (s *session) text(p string) {
	s.buf = appendEscaped(s.buf, []byte(p))
}

func (s *session) textf(format string, args ...any) {
	s.text(fmt.Sprintf(format, args...))
}

// line handles one line of input according to the phase.
func (s *session) line(l []byte) {
	switch s.phase {
	case phaseNegotiating:
		if len(s.queued) < maxQueuedLines {
			s.queued = append(s.queued, bytes.Clone(l))
		}
	case phaseName:
		s.enterName(strings.TrimSpace(string(l)))
	case phasePassword:
		s.enterPassword(string(l))
	case phasePlaying:
		if !s.quitting {
			s.runCommand(string(l))
		}
	case phaseBench:
		s.benchLine(l)
	}
	// A read full of short commands with long answers ("colors" x 500)
	// must not pile up megabytes before the end-of-read flush. A write
	// error sticks in out and ends the session at that flush.
	if len(s.buf) >= 64<<10 {
		_ = s.flush()
	}
}

func (s *session) enterName(name string) {
	if !validName(name) {
		s.text("Names are 2 to 20 letters, nothing else.\r\n")
		s.prompt("What is your name? ")
		return
	}
	s.name = strings.ToUpper(name[:1]) + strings.ToLower(name[1:])
	s.phase = phasePassword
	if !s.cfg.NoEcho {
		s.buf = append(s.buf, s.opts.askUs(optECHO, true)...)
	}
	s.prompt("Password: ")
}

func validName(name string) bool {
	if len(name) < 2 || len(name) > 20 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

func (s *session) enterPassword(password string) {
	if !s.cfg.NoEcho {
		s.buf = append(s.buf, s.opts.askUs(optECHO, false)...)
	}
	// The client did not echo the Enter either, so end its line for it.
	s.text("\r\n")
	ip := s.env["IPADDRESS"]
	if ip == "" {
		ip = s.proxyIP
	}
	p := &player{name: s.name, out: s.out, kick: s.kick, ip: ip}
	res, displaced := s.srv.world.login(p, password)
	if res == loginWrongPassword {
		s.loginFails++
		s.log.Info("demogame: wrong password", "name", s.name, "tries", s.loginFails)
		if s.loginFails >= maxLoginTries {
			s.text("Wrong password. Goodbye.\r\n")
			s.quitting = true
			return
		}
		s.text("Wrong password.\r\n")
		s.phase = phaseName
		s.prompt("What is your name? ")
		return
	}
	if displaced != nil {
		displaced.kick("Someone logged in as you from elsewhere. Goodbye.")
	}
	s.player = p
	s.phase = phasePlaying
	s.updatePromptMark()
	s.log.Info("demogame: login", "name", s.name, "new", res == loginNew)
	if res == loginNew {
		s.textf("Welcome, %s. Your character has been created.\r\n", s.name)
	} else {
		s.textf("Welcome back, %s.\r\n", s.name)
	}
	if !s.srv.cfg.Quiet {
		s.broadcast(s.name + " arrives.")
	}
	s.look()
	s.sendVitals()
	s.prompt("> ")
}

// kick is called from another goroutine when a newer login takes this
// character over: it tells the client why and wakes the session's reader
// with an expired deadline, so the session hangs up the same clean way as
// after "quit".
func (s *session) kick(reason string) {
	s.out.notify([]byte("\r\n" + reason + "\r\n"))
	s.kicked.Store(true)
	_ = s.conn.SetReadDeadline(time.Now())
}

// logout takes the player offline when the connection ends.
func (s *session) logout() {
	if s.player == nil {
		return
	}
	if s.srv.world.leave(s.player) && !s.srv.cfg.Quiet {
		s.broadcast(s.name + " leaves.") // not when taken over: the name is still here
	}
	s.player = nil
}

// broadcast tells everyone else in the room.
func (s *session) broadcast(msg string) {
	if s.player == nil {
		return
	}
	b := appendEscaped([]byte("\r\n"), []byte(msg))
	b = append(b, '\r', '\n')
	for _, p := range s.srv.world.others(s.player) {
		p.out.notify(b)
	}
}

// hangUp closes the connection after "quit" so that the goodbye arrives:
// end the zlib stream, half-close, and drain what the client still sends
// for a moment. Closing a socket with unread input makes the kernel send a
// reset, which can destroy the goodbye before the client reads it.
func (s *session) hangUp() error {
	s.logout()
	// Write even when the buffer is empty: that also delivers the mailbox.
	err := s.out.write(s.buf)
	s.buf = nil
	if err != nil {
		return err
	}
	if err := s.out.stopCompression(); err != nil {
		return err
	}
	if tcp, ok := s.conn.(*net.TCPConn); ok {
		if err := tcp.CloseWrite(); err != nil {
			return fmt.Errorf("half-close %s: %w", s.conn.RemoteAddr(), err)
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(s.conn, lingerMaxBytes))
	}
	return s.conn.Close()
}

// benchLine echoes the line at once; "flood" still floods.
func (s *session) benchLine(l []byte) {
	if bytes.HasPrefix(l, []byte("flood ")) {
		if args, ok := parseFlood(strings.Fields(string(l))[1:]); ok {
			s.flood(args)
			return
		}
	}
	s.buf = appendEscaped(s.buf, l)
	s.buf = append(s.buf, '\r', '\n')
}

// runCommand plays one line of input.
func (s *session) runCommand(line string) {
	verb, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(verb) {
	case "":
	case "look", "l":
		s.look()
	case "say":
		s.say(rest)
	case "who":
		s.who()
	case "echo":
		// Verbatim: everything after "echo ", spaces included.
		_, raw, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
		s.text(raw + "\r\n")
	case "flood":
		args, ok := parseFlood(strings.Fields(rest))
		if !ok {
			s.text("Usage: flood <lines> [bytes per line]\r\n")
			break
		}
		s.flood(args)
	case "colors", "colours":
		s.colors()
	case "vitals":
		s.showVitals()
	case "fight":
		s.fight()
	case "rest":
		s.rest()
	case "help":
		s.help()
	case "quit":
		s.textf("Goodbye, %s. Come back soon!\r\n", s.name)
		s.quitting = true
		return
	default:
		s.text("Huh?\r\n")
	}
	s.prompt("> ")
}
