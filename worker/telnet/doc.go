// Package telnet is the client side of the telnet protocol as MUDs speak it:
// a streaming engine that turns the bytes a game sends into events for the
// player (text, prompt marks, echo on/off, GMCP, MSDP, MSSP) and queues
// the replies the protocol owes the game.
//
// # Using an engine
//
// One Engine serves one game connection. The session loop reads from the
// game and works through each read in bounded slices, forwarding the events
// and writing back whatever is owed after each one:
//
//	e, err := telnet.New(telnet.Options{ClientName: "Trellis", ClientVersion: v})
//	if err != nil { ... }
//	defer e.Close()
//	var evs []telnet.Event
//	for {
//		n, err := conn.Read(buf)
//		for p := buf[:n]; len(p) > 0; {
//			var used int
//			evs, used, derr = e.DecodeSlice(p, evs[:0])
//			deliver(evs) // text, prompts, echo, GMCP, MSDP, MSSP
//			if r := e.Replies(out[:0]); len(r) > 0 {
//				conn.Write(r) // negotiation answers, TTYPE, NAWS, GMCP hello
//			}
//			if derr != nil { ... } // corrupt MCCP2: close the connection
//			waitForRoom()          // backpressure between slices
//			p = p[used:]
//		}
//		...
//	}
//
// Decode does the same loop inside for callers that trust their input.
//
// Input goes the other way through Line (one line of player input, with
// control characters other than TAB dropped unless Options.KeepControls
// says the game wants them), GMCP (a GMCP message, once the game agreed to
// GMCP), MSDP (an MSDP command or variable, over MSDP or GMCP) and Resize
// (the window size, sent when NAWS is agreed). An Engine is not safe for
// concurrent use; keep it on the session goroutine or serialise calls.
//
// # Why streaming, and what "any split" means
//
// TCP delivers bytes in chunks that have nothing to do with the protocol: a
// chunk may end inside IAC WILL ECHO, inside a subnegotiation, inside a UTF-8
// character, between CR and LF, or inside a compressed MCCP2 stream. The
// engine keeps all of that state between calls, so feeding a byte stream in
// one call or split anywhere (down to one byte per call) produces the same
// events and replies. The tests check exactly that for every case, at every
// split point and with slices of 1, 7 and 64 bytes, and the fuzz targets
// check it for arbitrary input.
//
// Text is never held waiting for a newline: a prompt without one ("HP:10> ")
// reaches the player at the end of the call that decoded it. Only an
// incomplete trailing UTF-8 sequence is held back.
//
// # Bounded slices
//
// A read from the game is small, but what it decodes to need not be: 100 KB
// of MCCP2 can inflate to 100 MB. DecodeSlice therefore parses at most
// Options.SliceBytes (16 KiB) of the telnet stream per call, counted after
// inflation, and returns how much of its input it consumed; the caller
// delivers the events, waits for room and calls again with the rest, so
// backpressure and fairness between sessions apply inside one read. Plain
// input is cut exactly; an open MCCP2 stream can overrun the slice by up to
// 37,152 bytes, because the inflater can only be paused where it asks for
// input (see DecodeSlice for why and for the bound on text per call). Every
// call consumes at least one byte, a call that consumed everything leaves
// nothing behind for a later one, and no call keeps a reference to its
// input.
//
// # The byte stream
//
// IAC (255) starts a command; IAC IAC is a data byte 255. Two-byte commands:
// GA and EOR mark the text before them as a prompt (EventPrompt), the rest
// (NOP, AYT...) are ignored. IAC WILL|WONT|DO|DONT opt negotiates an option.
// IAC SB opt ... IAC SE carries a subnegotiation; inside it IAC IAC is a
// literal 255 and a block longer than Options.MaxSubneg (counted as
// received) is dropped up to its IAC SE. A command other than IAC or SE
// inside a block means the game lost the IAC SE: the block is dropped and the
// command obeyed, which resynchronises.
//
// Line endings are normalised on bytes: NUL is dropped, LF is the newline.
// CR LF, LF CR and lone LF all become "\n" (no blank line invented). A bare
// carriage return (CR NUL, or CR before anything but LF) becomes one "\r",
// for the viewer to overwrite the line with; a CR at column 0 moves nothing
// and is dropped, so event text never holds "\r\n" nor "\n\r".
//
// Text is UTF-8 unless Options.Charset names a single-byte legacy charset
// (latin-1, CP437, CP1252, KOI8-R...), decoded with
// golang.org/x/text/encoding/charmap. Invalid UTF-8 becomes U+FFFD, so event
// text is always valid UTF-8. ANSI escape sequences pass through untouched.
//
// # Negotiation
//
// Options are negotiated with the RFC 1143 Q method (states NO, YES, WANTNO,
// WANTYES and a queue bit per option and side), which never answers a
// request for the state an option is already in, so no game can drive the
// engine into a negotiation loop. Supported:
//
//   - the game's side (WILL answered DO): ECHO (EventEcho; ServerEcho), SGA,
//     EOR, CHARSET, MSSP, GMCP, MSDP (unless Options.NoMSDP), MCCP2
//     (unless Options.NoCompression);
//   - our side (DO answered WILL): SGA, TTYPE, NAWS, CHARSET, and
//     NEW-ENVIRON only when Options.MNES says the game opted in;
//   - MXP on either side, only when Options.MXP says the game opted in
//     (EventMXP reports it; the markup is package worker/mxp's job).
//
// Everything else is refused (WILL answered DONT, DO answered WONT),
// including MXP by default, MSP, ATCP, LINEMODE and MCCP v1. Subnegotiations for
// options that are not agreed are ignored.
//
// TTYPE answers the MTTS cycle: client name, terminal type, "MTTS n", the
// same "MTTS n" again to mark the end, then from the start. The MTTS bits
// say ANSI, 256 and true colour, proxy, UTF-8 (while the charset is UTF-8)
// and MNES (when opted in). NAWS sends the window size as soon as it is
// agreed and on every Resize. CHARSET accepts UTF-8 when offered, else the
// configured legacy charset, else rejects; text after the ACCEPTED is
// decoded in the new charset. NEW-ENVIRON answers SEND with the MNES
// variables CLIENT_NAME, CLIENT_VERSION, MTTS, CHARSET and Options.Env (the
// real IPADDRESS, for instance). Once GMCP is agreed the engine sends
// Core.Hello and Core.Supports.Set. GMCP bodies are optional; Event.Data is
// nil without one and always valid JSON with one.
//
// # MSDP
//
// MSDP (option 69) blocks are decoded to JSON, one EventMSDP per variable
// with its name in Var and its value in Data: VAR name VAL value, where a
// value is text (a JSON string), TABLE_OPEN (VAR name VAL value)*
// TABLE_CLOSE (an object) or ARRAY_OPEN (VAL value)* ARRAY_CLOSE (an
// array), nested; a VAR with several VALs is an array of them and a VAR
// with none the empty string. Text is UTF-8, invalid bytes become U+FFFD,
// as for GMCP. A GMCP message of package MSDP whose body is an
// object ("MSDP over GMCP") is delivered the same way, one event per
// member, instead of as a GMCP event. Nesting is bounded at 32 levels and a
// block at 4,096 names and values, on top of MaxSubneg. Malformed MSDP
// cannot be resynchronised once the nesting is lost, so the variable being
// read and the rest of the block are dropped and one EventMSDPDropped says
// why; the variables before it are delivered. The parser writes JSON as it
// reads, with a fixed 33-level stack: input nested 10,000 deep costs what
// input nested 32 deep does.
//
// Engine.MSDP and AppendMSDP encode the other way: a name and a JSON value
// (LIST, REPORT, UNREPORT, RESET and SEND are names like any other, whose
// list of names travels as one VAL each). Values MSDP cannot carry (NUL or
// the bytes 1-6 in a string, true/false/null, nesting past 32) are refused
// with an error wrapping ErrMSDPValue.
//
// # MCCP2
//
// After IAC SB MCCP2 IAC SE the game compresses everything it sends with
// zlib; the stream starts at the very next byte, which may be in the same
// chunk. The engine inflates with compress/zlib running on a coroutine
// (iter.Pull) that is parked whenever it runs out of input or the slice is
// full: the push-style DecodeSlice feeds the pull-style zlib reader without
// a goroutine of its own or any re-reading. When the zlib stream ends, the
// bytes after it are plain telnet again, in the same call. The cost is the zlib window (about 40 KiB) for as long as a
// stream is open, which is why Close must be called when the connection
// ends.
//
// A corrupt stream cannot be resynchronised: DecodeSlice returns an error
// wrapping ErrCompression, drops the rest of the chunk, queues DONT MCCP2
// and refuses MCCP2 from then on. Closing the connection is the safe
// reaction.
//
// # Encoding helpers
//
// The constants for commands (IAC, WILL, SB, GA...) and options (OptGMCP,
// OptMCCP2...) and the Append helpers (AppendNegotiation,
// AppendSubnegotiation, AppendEscaped, AppendCommand, AppendMSDP) are exported for
// servers and tests that need to speak the game's side.
package telnet
