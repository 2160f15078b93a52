package telnet

import (
	"bytes"

	"github.com/trellis-mud/trellis/internal/msdp"
)

// Telnet command bytes (RFC 854, RFC 885). Each follows an IAC.
const (
	EOR  byte = 239 // end of record (RFC 885): marks the end of a prompt
	SE   byte = 240 // end of subnegotiation
	NOP  byte = 241 // no operation
	DM   byte = 242 // data mark
	BRK  byte = 243 // break
	IP   byte = 244 // interrupt process
	AO   byte = 245 // abort output
	AYT  byte = 246 // are you there
	EC   byte = 247 // erase character
	EL   byte = 248 // erase line
	GA   byte = 249 // go ahead: MUDs use it to mark the end of a prompt
	SB   byte = 250 // start of subnegotiation
	WILL byte = 251
	WONT byte = 252
	DO   byte = 253
	DONT byte = 254
	IAC  byte = 255 // interpret as command; a data byte 255 travels as IAC IAC
)

// Option codes the engine knows, either to support or to refuse by name.
const (
	OptEcho       byte = 1   // RFC 857
	OptSGA        byte = 3   // suppress go ahead, RFC 858
	OptTTYPE      byte = 24  // terminal type, RFC 1091 (and the MTTS convention)
	OptEOR        byte = 25  // end of record, RFC 885
	OptNAWS       byte = 31  // window size, RFC 1073
	OptLinemode   byte = 34  // RFC 1184, refused
	OptNewEnviron byte = 39  // RFC 1572 (and the MNES convention)
	OptCharset    byte = 42  // RFC 2066
	OptMSDP       byte = 69  // MUD server data protocol
	OptMSSP       byte = 70  // MUD server status protocol
	OptMCCP1      byte = 85  // refused: its start sequence is malformed
	OptMCCP2      byte = 86  // MUD client compression v2
	OptMSP        byte = 90  // refused
	OptMXP        byte = 91  // MUD extension protocol, only when Options.MXP
	OptATCP       byte = 200 // refused
	OptGMCP       byte = 201 // generic MUD communication protocol
)

// Subnegotiation verbs used inside SB blocks.
const (
	ttypeIS   = 0
	ttypeSEND = 1

	envIS      = 0
	envSEND    = 1
	envVAR     = 0
	envVALUE   = 1
	envESC     = 2
	envUSERVAR = 3

	charsetREQUEST        = 1
	charsetACCEPTED       = 2
	charsetREJECTED       = 3
	charsetTTABLEIS       = 4
	charsetTTABLEREJECTED = 5

	msspVAR = 1
	msspVAL = 2

	msdpVAR        = msdp.Var
	msdpVAL        = msdp.Val
	msdpTableOpen  = msdp.TableOpen
	msdpTableClose = msdp.TableClose
	msdpArrayOpen  = msdp.ArrayOpen
	msdpArrayClose = msdp.ArrayClose
)

// AppendCommand appends the two-byte command IAC cmd (for example GA or EOR).
func AppendCommand(dst []byte, cmd byte) []byte {
	return append(dst, IAC, cmd)
}

// AppendNegotiation appends IAC verb opt, where verb is WILL, WONT, DO or DONT.
func AppendNegotiation(dst []byte, verb, opt byte) []byte {
	return append(dst, IAC, verb, opt)
}

// AppendEscaped appends p with every 255 byte doubled, as telnet requires for
// data and for subnegotiation payloads.
func AppendEscaped(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, IAC)
		if i < 0 {
			return append(dst, p...)
		}
		dst = append(dst, p[:i+1]...)
		dst = append(dst, IAC)
		p = p[i+1:]
	}
}

// AppendSubnegotiation appends IAC SB opt payload... IAC SE, escaping IAC
// bytes inside the payload parts (which are concatenated).
func AppendSubnegotiation(dst []byte, opt byte, payload ...[]byte) []byte {
	dst = append(dst, IAC, SB, opt)
	for _, p := range payload {
		dst = AppendEscaped(dst, p)
	}
	return append(dst, IAC, SE)
}

// appendSubnegString is AppendSubnegotiation for a verb byte and a string,
// without the variadic allocation.
func appendSubnegString(dst []byte, opt, verb byte, s string) []byte {
	dst = append(dst, IAC, SB, opt, verb)
	for i := 0; i < len(s); i++ {
		dst = append(dst, s[i])
		if s[i] == IAC {
			dst = append(dst, IAC)
		}
	}
	return append(dst, IAC, SE)
}
