package demogame

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait in these tests. It is a safety net against a
// hung test, never a performance assertion.
const waitTimeout = 10 * time.Second

var optNames = map[byte]string{
	optECHO: "ECHO", optSGA: "SGA", optTTYPE: "TTYPE", optEOR: "EOR", optNAWS: "NAWS",
	optNEWENVIRON: "NEW-ENVIRON", optCHARSET: "CHARSET", optMSSP: "MSSP", optMCCP2: "MCCP2",
	optGMCP: "GMCP", optMSDP: "MSDP",
}

func optName(opt byte) string {
	if n, ok := optNames[opt]; ok {
		return n
	}
	return fmt.Sprint(opt)
}

var verbNames = map[byte]string{cmdWILL: "WILL", cmdWONT: "WONT", cmdDO: "DO", cmdDONT: "DONT"}

// clientOptions is how the test client answers the server.
type clientOptions struct {
	accept  map[byte]bool // options agreed to, on either side
	ttypes  []string      // answers to successive TTYPE SENDs (last one repeats)
	cols    int           // NAWS width; 0 sends no NAWS
	rows    int
	ip      string // NEW-ENVIRON IPADDRESS
	charset string // CHARSET answer; "" rejects
}

func acceptAll() clientOptions {
	return clientOptions{
		accept: map[byte]bool{
			optECHO: true, optSGA: true, optTTYPE: true, optEOR: true, optNAWS: true,
			optNEWENVIRON: true, optCHARSET: true, optMSSP: true, optMCCP2: true, optGMCP: true,
			optMSDP: true,
		},
		ttypes:  []string{"TESTCLIENT", "XTERM-256COLOR", "MTTS 2825"},
		cols:    100,
		rows:    30,
		charset: "UTF-8",
	}
}

// testClient is a minimal telnet client written only for these tests, so
// they do not depend on worker/telnet. A goroutine reads the connection,
// answers negotiation, inflates MCCP2, and appends everything to a
// transcript: text as is, telnet commands as tokens such as "<WILL ECHO>",
// "<EOR>", "<GMCP Char.Vitals {...}>", "<MCCP2 start>", "<EOF>".
type testClient struct {
	t    *testing.T
	conn net.Conn
	opts clientOptions

	wmu    sync.Mutex // serialises writes from the test and the reader
	closed bool       // guarded by wmu: writes after close are not errors

	mu         sync.Mutex
	transcript strings.Builder
	changed    chan struct{} // closed and replaced on every append
	ttypeIndex int
	state      map[[2]byte]bool // (verb class, opt) -> on, to answer only changes

	done chan struct{}
}

func dialClient(t *testing.T, addr string, opts clientOptions) *testClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &testClient{
		t: t, conn: conn, opts: opts,
		changed: make(chan struct{}),
		state:   make(map[[2]byte]bool),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

func (c *testClient) close() {
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	c.conn.Close()
	<-c.done
}

// send writes p. A write the server refuses is not a test failure by
// itself: tests that expect a hang-up check for it in the transcript.
func (c *testClient) send(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return
	}
	if _, err := c.conn.Write(p); err != nil {
		c.t.Logf("write: %v", err)
	}
}

func (c *testClient) sendLine(s string) {
	c.send(append(appendEscaped(nil, []byte(s)), '\r', '\n'))
}

func (c *testClient) record(s string) {
	c.mu.Lock()
	c.transcript.WriteString(s)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// text returns the transcript so far.
func (c *testClient) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transcript.String()
}

// waitFor waits until the transcript contains want and returns it.
func (c *testClient) waitFor(want string) string {
	c.t.Helper()
	return c.waitUntil(want, func(s string) bool { return strings.Contains(s, want) })
}

// waitCount waits until want occurs at least n times.
func (c *testClient) waitCount(want string, n int) string {
	c.t.Helper()
	return c.waitUntil(fmt.Sprintf("%d x %q", n, want), func(s string) bool { return strings.Count(s, want) >= n })
}

func (c *testClient) waitUntil(what string, ok func(string) bool) string {
	c.t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		s, ch := c.transcript.String(), c.changed
		c.mu.Unlock()
		if ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-timer.C:
			c.t.Fatalf("timed out waiting for %s; transcript:\n%q", what, s)
		}
	}
}

// do sends a command and returns the output that followed it, once that
// output contains want.
func (c *testClient) do(cmd, want string) string {
	c.t.Helper()
	before := len(c.text())
	c.sendLine(cmd)
	return c.waitUntil(want, func(s string) bool { return strings.Contains(s[before:], want) })[before:]
}

// ask sends DO opt (or WILL opt for a client-side option) after the
// negotiation phase, and from then on agrees to it.
func (c *testClient) ask(verb, opt byte) {
	side := byte('h')
	if verb == cmdWILL {
		side = 'u'
	}
	c.mu.Lock()
	accept := make(map[byte]bool, len(c.opts.accept)+1)
	for k, v := range c.opts.accept {
		accept[k] = v
	}
	accept[opt] = true
	c.opts.accept = accept
	c.state[[2]byte{side, opt}] = true
	c.mu.Unlock()
	c.send([]byte{cmdIAC, verb, opt})
}

// login runs the login dialogue and waits for the first game prompt.
func (c *testClient) login(name, password string) {
	c.t.Helper()
	c.waitFor("What is your name? ")
	c.sendLine(name)
	c.waitFor("Password: ")
	c.sendLine(password)
	c.waitFor("Welcome")
	c.waitFor("> ")
}

// readLoop decodes the server's stream. MCCP2 switches the byte source to
// a zlib reader over the same bufio.Reader; bufio.Reader is an
// io.ByteReader, so flate reads no byte past the end of its stream and the
// plain bytes after a stream end are still there for us.
func (c *testClient) readLoop() {
	defer close(c.done)
	raw := bufio.NewReader(c.conn)
	var src io.ByteReader = raw
	var z io.ReadCloser
	var zbuf *bufio.Reader
	var text []byte
	flushText := func() {
		if len(text) > 0 {
			c.record(string(text))
			text = text[:0]
		}
	}
	for {
		b, err := src.ReadByte()
		if err != nil {
			if z != nil && errors.Is(err, io.EOF) {
				// A clean end of the zlib stream: back to plain telnet.
				flushText()
				z.Close()
				z, zbuf, src = nil, nil, raw
				c.record("<MCCP2 end>")
				continue
			}
			flushText()
			c.conn.Close() // as a real client does when the game hangs up
			if errors.Is(err, io.EOF) {
				c.record("<EOF>")
			} else {
				c.record("<ERR " + err.Error() + ">")
			}
			return
		}
		if b != cmdIAC {
			text = append(text, b)
			// Deliver text when no more is buffered, so prompts that
			// lack a newline still reach the transcript at once.
			if (zbuf == nil && raw.Buffered() == 0) || (zbuf != nil && zbuf.Buffered() == 0) {
				flushText()
			}
			continue
		}
		cmd, err := src.ReadByte()
		if err != nil {
			continue
		}
		switch cmd {
		case cmdIAC:
			text = append(text, cmdIAC)
			continue
		case cmdWILL, cmdWONT, cmdDO, cmdDONT:
			opt, err := src.ReadByte()
			if err != nil {
				continue
			}
			flushText()
			c.record("<" + verbNames[cmd] + " " + optName(opt) + ">")
			c.answer(cmd, opt)
		case cmdSB:
			opt, body := c.readSB(src)
			flushText()
			c.onSubneg(opt, body)
			if opt == optMCCP2 {
				zr, err := zlib.NewReader(raw)
				if err != nil {
					c.record("<ERR zlib: " + err.Error() + ">")
					return
				}
				z = zr
				zbuf = bufio.NewReader(zr)
				src = zbuf
			}
		case cmdEOR:
			flushText()
			c.record("<EOR>")
		case cmdGA:
			flushText()
			c.record("<GA>")
		default:
			flushText()
			c.record(fmt.Sprintf("<IAC %d>", cmd))
		}
	}
}

func (c *testClient) readSB(src io.ByteReader) (byte, []byte) {
	opt, _ := src.ReadByte()
	var body []byte
	for {
		b, err := src.ReadByte()
		if err != nil {
			return opt, body
		}
		if b != cmdIAC {
			body = append(body, b)
			continue
		}
		b, err = src.ReadByte()
		if err != nil || b == cmdSE {
			return opt, body
		}
		body = append(body, b) // IAC IAC
	}
}

// answer agrees to or refuses one negotiation, answering only changes.
func (c *testClient) answer(verb, opt byte) {
	var side byte = 'h' // the server's side: WILL/WONT
	if verb == cmdDO || verb == cmdDONT {
		side = 'u' // our side: DO/DONT
	}
	want := verb == cmdWILL || verb == cmdDO
	key := [2]byte{side, opt}
	c.mu.Lock()
	cur, accept := c.state[key], c.opts.accept[opt]
	c.mu.Unlock()
	if want == cur {
		return
	}
	if want && !accept {
		if side == 'h' {
			c.send([]byte{cmdIAC, cmdDONT, opt})
		} else {
			c.send([]byte{cmdIAC, cmdWONT, opt})
		}
		return
	}
	c.mu.Lock()
	c.state[key] = want
	c.mu.Unlock()
	var reply byte
	switch {
	case side == 'h' && want:
		reply = cmdDO
	case side == 'h':
		reply = cmdDONT
	case want:
		reply = cmdWILL
	default:
		reply = cmdWONT
	}
	c.send([]byte{cmdIAC, reply, opt})
	if side == 'u' && want && opt == optNAWS && c.opts.cols > 0 {
		c.send(appendSubneg(nil, optNAWS, []byte{byte(c.opts.cols >> 8), byte(c.opts.cols), byte(c.opts.rows >> 8), byte(c.opts.rows)}))
	}
}

func (c *testClient) onSubneg(opt byte, body []byte) {
	switch opt {
	case optGMCP:
		c.record("<GMCP " + string(body) + ">")
	case optMSDP:
		r := strings.NewReplacer(string(rune(msdpVAR)), ";", string(rune(msdpVAL)), "=",
			string(rune(msdpARRAYOPEN)), "[", string(rune(msdpARRAYCLOSE)), "]")
		c.record("<MSDP " + r.Replace(string(body)) + ">")
	case optMSSP:
		r := strings.NewReplacer(string(rune(msspVAR)), ";", string(rune(msspVAL)), "=")
		c.record("<MSSP " + r.Replace(string(body)) + ">")
	case optMCCP2:
		c.record("<MCCP2 start>")
	default:
		c.record(sbToken(opt, body))
	}
	switch {
	case opt == optTTYPE && bytes.Equal(body, []byte{ttypeSEND}):
		c.mu.Lock()
		i := min(c.ttypeIndex, len(c.opts.ttypes)-1)
		c.ttypeIndex++
		c.mu.Unlock()
		if i >= 0 {
			c.send(appendSubneg(nil, optTTYPE, []byte{ttypeIS}, []byte(c.opts.ttypes[i])))
		}
	case opt == optCHARSET && len(body) > 0 && body[0] == charsetREQUEST:
		if c.opts.charset == "" {
			c.send(appendSubneg(nil, optCHARSET, []byte{charsetREJECTED}))
		} else {
			c.send(appendSubneg(nil, optCHARSET, []byte{charsetACCEPTED}, []byte(c.opts.charset)))
		}
	case opt == optNEWENVIRON && len(body) > 0 && body[0] == envSEND:
		reply := []byte{envIS}
		if c.opts.ip != "" {
			reply = append(reply, envVAR)
			reply = append(reply, "IPADDRESS"...)
			reply = append(reply, envVALUE)
			reply = append(reply, c.opts.ip...)
		}
		c.send(appendSubneg(nil, optNEWENVIRON, reply))
	}
}

// sbToken renders a subnegotiation the way the transcript shows it.
func sbToken(opt byte, body []byte) string {
	return fmt.Sprintf("<SB %s %q>", optName(opt), body)
}
