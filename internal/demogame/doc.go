// Package demogame is a small but real telnet MUD server. Trellis runs it in
// `trellis dev` and `trellis demo-game`, and every other package tests and
// benchmarks against it: it is the game at the far end of the pipe.
//
// It implements the server side of telnet by itself, independent of the
// client engine in worker/telnet, so that each can catch the other's
// mistakes. The byte-level rules are in shared/TELNET.md.
//
// # A connection's life
//
// On connect the server offers, each unless switched off in Config:
//
//	IAC WILL SGA, WILL EOR, WILL GMCP, WILL MSDP, WILL MSSP, WILL MCCP2,
//	IAC DO TTYPE, DO NAWS, DO CHARSET, DO NEW-ENVIRON
//
// and reads the answers for up to Config.NegotiationWait, stopping early
// once all are settled. Agreement triggers the follow-ups: TTYPE SEND up to
// three times (the MTTS cycle), CHARSET REQUEST ";UTF-8;ISO-8859-1",
// NEW-ENVIRON SEND (to learn the player's IPADDRESS, MNES), the MSSP table.
// Then the banner is sent and, if the client said DO MCCP2, compression
// starts right after it (IAC SB MCCP2 IAC SE, then a zlib stream flushed
// after every write), so clients meet the switch in mid-stream.
//
// Login asks for a name, then for a password between IAC WILL ECHO and
// IAC WONT ECHO. Any password creates a new character; a returning name
// (in the same process) must give the same one. Logging in with a name that
// is already online takes the character over and hangs up the older
// connection.
//
// Prompts ("What is your name? ", "Password: ", "> ") end in IAC EOR when the
// client agreed to EOR, else in IAC GA unless it agreed to SGA, else in
// nothing: the three kinds of game a client meets in the wild.
//
// # TLS and the PROXY protocol
//
// With Config.TLSCertFile and TLSKeyFile the listener speaks TLS only.
// With Config.ProxyProtocol every connection must begin with a PROXY
// protocol header (v1 text or v2 binary, told apart by their first bytes,
// read without reading past them, within HandshakeTimeout), before the TLS
// handshake if there is one; the header's source address is the player's,
// shown by "who" unless NEW-ENVIRON gives one. A connection without a
// valid header is closed unanswered.
//
// # Commands
//
//	look, say <text>, who, echo <text>, flood <n> [bytes], colors,
//	vitals, fight, rest, help, quit
//
// flood sends n lines "flood 000001 xxx...\r\n", each exactly bytes long
// counting the CR LF (default 80; n is capped at 1,000,000, bytes at 4096),
// built in 256 KiB batches so the game is never the bottleneck of a
// throughput test. vitals, fight and rest send GMCP Char.Vitals, as does
// logging in; a GMCP Core.Ping from the client is answered with Core.Ping.
// Over MSDP the client may LIST, REPORT, UNREPORT, SEND and RESET the
// variables HEALTH, HEALTH_MAX, MANA, MANA_MAX, MOVEMENT and MOVEMENT_MAX:
// a REPORT sends the value at once, and the same commands send the
// reported variables that changed.
//
// # Bench mode
//
// With Config.Bench the server negotiates nothing and asks for no login:
// every line is echoed back at once as its exact bytes plus CR LF, for
// round-trip measurements, and "flood <n> [bytes]" still floods.
//
// # Concurrency
//
// Each connection has one goroutine, which reads, plays, and writes its own
// output. Other players' messages (say, arrivals) go through a bounded
// per-connection mailbox and never wait for a busy connection: whoever
// holds the connection's write lock delivers them (see output). Serve owns
// every connection goroutine and waits for all of them before it returns.
package demogame
