package telnet

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

type decodeCase struct {
	name    string
	opts    Options
	input   []byte
	events  []string
	replies []byte
	err     error
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAllSplits(t, tc.opts, tc.input)
			if !slices.Equal(got.events, tc.events) {
				t.Errorf("events\n got %q\nwant %q", got.events, tc.events)
			}
			if !bytes.Equal(got.replies, tc.replies) {
				t.Errorf("replies\n got %v\nwant %v", got.replies, tc.replies)
			}
			if !errors.Is(got.err, tc.err) {
				t.Errorf("err = %v, want %v", got.err, tc.err)
			}
		})
	}
}

func TestDecodeFraming(t *testing.T) {
	latin1 := Options{Charset: "latin-1"}
	runDecodeCases(t, []decodeCase{
		{name: "plain", input: b("hello world"), events: []string{`text "hello world"`}},
		{name: "ansi kept", input: b("\x1b[1;31mred\x1b[0m \x1b[2K\x1b[6n"),
			events: []string{`text "\x1b[1;31mred\x1b[0m \x1b[2K\x1b[6n"`}},
		{name: "IAC IAC is a data byte, invalid in UTF-8", input: b("a", IAC, IAC, "b"),
			events: []string{`text "a�b"`}},
		{name: "IAC IAC in latin-1", opts: latin1, input: b("a", IAC, IAC, "b"),
			events: []string{`text "aÿb"`}},
		{name: "two-byte commands ignored", input: b("a", IAC, NOP, "b", IAC, DM, IAC, AYT, IAC, BRK, IAC, IP,
			IAC, AO, IAC, EC, IAC, EL, IAC, 17, "c"),
			events: []string{`text "abc"`}},
		{name: "GA marks a prompt", input: b("HP:10> ", IAC, GA, "more"),
			events: []string{`text "HP:10> "`, "prompt", `text "more"`}},
		{name: "EOR marks a prompt", input: b("> ", IAC, EOR),
			events: []string{`text "> "`, "prompt"}},
		{name: "SE outside SB ignored", input: b("a", IAC, SE, "b"), events: []string{`text "ab"`}},
	})
}

func TestDecodeLineEndings(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "CR LF", input: b("a\r\nb\r\n"), events: []string{`text "a\nb\n"`}},
		{name: "lone LF", input: b("a\nb\n"), events: []string{`text "a\nb\n"`}},
		{name: "LF CR invents no blank line", input: b("a\n\rb\n\r"), events: []string{`text "a\nb\n"`}},
		{name: "blank lines kept", input: b("a\r\n\r\nb\n\r\n\rc\n\n"), events: []string{`text "a\n\nb\n\nc\n\n"`}},
		{name: "CR NUL is a bare CR, kept", input: b("abc\r\x00def"), events: []string{`text "abc\rdef"`}},
		{name: "bare CR kept", input: b("50%\r60%"), events: []string{`text "50%\r60%"`}},
		{name: "NUL dropped", input: b("a\x00b"), events: []string{`text "ab"`}},
		{name: "CR LF across an IAC command", input: b("a\r", IAC, NOP, "\nb"), events: []string{`text "a\nb"`}},
		{name: "CR NUL LF is a newline", input: b("a\r\x00\nb"), events: []string{`text "a\nb"`}},
		{name: "CR runs collapse", input: b("a\r\r\x00\rb\r\r\n"), events: []string{`text "a\rb\n"`}},
		{name: "CR at column 0 moves nothing", input: b("\rx\n\r\x00\ry"), events: []string{`text "x\ny"`}},
		{name: "CR after a bare CR moves nothing", input: b("a\rb\r\nc"), events: []string{`text "a\rb\nc"`}},
		{name: "CR before an escape", input: b("[HP:6]\r\x1b[K(chat) hi\r\n"), events: []string{`text "[HP:6]\r\x1b[K(chat) hi\n"`}},
		{name: "CR across a prompt mark", input: b("> \r", IAC, GA, "x"), events: []string{`text "> "`, "prompt", `text "\rx"`}},
		{name: "trailing CR held", input: b("50%\r"), events: []string{`text "50%"`}},
		{name: "CR after multibyte", input: b("é\rx"), events: []string{`text "é\rx"`}},
		{name: "CR after invalid byte", input: b("\xfe\rx"), events: []string{`text "�\rx"`}},
		{name: "latin-1 bare CR", opts: Options{Charset: "latin-1"}, input: b("\xe9\r\x00\xe8\r\n\r-\rok\n"), events: []string{`text "é\rè\n-\rok\n"`}},
	})
}

func TestDecodeCharsets(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "utf-8 multibyte", input: b("héllo € 𝄞 日本"), events: []string{`text "héllo € 𝄞 日本"`}},
		{name: "invalid utf-8 replaced", input: b("a\xc3\x28b\x80\xfez"), events: []string{`text "a�(b��z"`}},
		{name: "truncated sequence then ascii", input: b("\xe2\x82A"), events: []string{`text "��A"`}},
		{name: "incomplete trailing sequence held back", input: b("ok\xe2\x82"), events: []string{`text "ok"`}},
		{name: "sequence around a command", input: b("\xe2\x82", IAC, NOP, "\xac!"), events: []string{`text "€!"`}},
		{name: "sequence cut by CR", input: b("\xe2\r\x82\xac"), events: []string{`text "�\r��"`}},
		{name: "latin-1", opts: Options{Charset: "ISO-8859-1"}, input: b("caf\xe9 \xa3"), events: []string{`text "café £"`}},
		{name: "cp437", opts: Options{Charset: "cp437"}, input: b("\xc9\xcd\xbb \xb0"), events: []string{`text "╔═╗ ░"`}},
		{name: "cp1252", opts: Options{Charset: "cp1252"}, input: b("\x93q\x94 \x80"), events: []string{`text "“q” €"`}},
	})
}

func TestNewRejectsBadCharsets(t *testing.T) {
	for _, name := range []string{"klingon", "gbk", "ibm037"} {
		if _, err := New(Options{Charset: name}); err == nil {
			t.Errorf("New(Charset: %q) succeeded, want error", name)
		}
	}
	for _, name := range []string{"", "UTF-8", "utf8", "latin1", "Latin-1", "iso-8859-1", "CP437", "windows-1252", "koi8-r"} {
		e, err := New(Options{Charset: name})
		if err != nil {
			t.Errorf("New(Charset: %q): %v", name, err)
			continue
		}
		e.Close()
	}
}

func TestDecodeNegotiation(t *testing.T) {
	var refusals []decodeCase
	for _, opt := range []byte{OptMXP, OptMSP, OptATCP, OptLinemode, OptMCCP1, 99, 255} {
		refusals = append(refusals, decodeCase{
			name:    "refuse option " + string(rune('0'+opt/100)) + string(rune('0'+opt/10%10)) + string(rune('0'+opt%10)),
			input:   b(IAC, WILL, opt, IAC, DO, opt, IAC, WONT, opt, IAC, DONT, opt),
			replies: b(IAC, DONT, opt, IAC, WONT, opt),
		})
	}
	runDecodeCases(t, refusals)
	runDecodeCases(t, []decodeCase{
		{name: "echo on, repeat ignored, off",
			input:   b(IAC, WILL, OptEcho, "Password: ", IAC, WILL, OptEcho, IAC, GA, IAC, WONT, OptEcho, IAC, WONT, OptEcho, "ok"),
			events:  []string{"echo true", `text "Password: "`, "prompt", "echo false", `text "ok"`},
			replies: b(IAC, DO, OptEcho, IAC, DONT, OptEcho)},
		{name: "DO ECHO refused: we never echo for the game",
			input: b(IAC, DO, OptEcho), replies: b(IAC, WONT, OptEcho)},
		{name: "SGA both ways and EOR",
			input:   b(IAC, WILL, OptSGA, IAC, DO, OptSGA, IAC, WILL, OptEOR, IAC, DO, OptEOR, IAC, WILL, OptSGA),
			replies: b(IAC, DO, OptSGA, IAC, WILL, OptSGA, IAC, DO, OptEOR, IAC, WONT, OptEOR)},
		{name: "DONT for an option that is off is not answered",
			input: b(IAC, DONT, OptNAWS, IAC, WONT, OptGMCP)},
		{name: "new-environ refused without MNES",
			input: b(IAC, DO, OptNewEnviron, IAC, SB, OptNewEnviron, envSEND, IAC, SE), replies: b(IAC, WONT, OptNewEnviron)},
		{name: "MCCP2 refused on our side",
			input: b(IAC, DO, OptMCCP2), replies: b(IAC, WONT, OptMCCP2)},
		{name: "GMCP only on the game's side",
			input: b(IAC, DO, OptGMCP), replies: b(IAC, WONT, OptGMCP)},
	})
}

func TestDecodeSubnegotiation(t *testing.T) {
	mttsSeq := b(IAC, DO, OptTTYPE, strings.Repeat(string(b(IAC, SB, OptTTYPE, ttypeSEND, IAC, SE)), 5))
	ttypeIs := func(s string) []byte { return b(IAC, SB, OptTTYPE, ttypeIS, s, IAC, SE) }
	wide := Options{Width: 255, Height: 0x1FF}
	mnes := Options{MNES: true, ClientName: "Trellis", ClientVersion: "1.2", Env: map[string]string{"IPADDRESS": "203.0.113.7"}}
	env := func(parts ...any) []byte {
		return b(IAC, SB, OptNewEnviron, envIS, b(parts...), IAC, SE)
	}
	willGMCP := b(IAC, WILL, OptGMCP)
	gmcpReplies := b(IAC, DO, OptGMCP,
		IAC, SB, OptGMCP, `Core.Hello {"client":"Trellis","version":""}`, IAC, SE,
		IAC, SB, OptGMCP, `Core.Supports.Set ["Char 1","Char.Vitals 1","Room 1","Comm 1"]`, IAC, SE)

	runDecodeCases(t, []decodeCase{
		{name: "TTYPE MTTS cycle", input: mttsSeq,
			replies: b(IAC, WILL, OptTTYPE, ttypeIs("TRELLIS"), ttypeIs("XTERM-256COLOR"), ttypeIs("MTTS 397"), ttypeIs("MTTS 397"), ttypeIs("TRELLIS"))},
		{name: "TTYPE MTTS with MNES and legacy charset", opts: Options{MNES: true, Charset: "latin-1", TerminalType: "ansi"},
			input:   b(IAC, DO, OptTTYPE, IAC, SB, OptTTYPE, ttypeSEND, IAC, SE, IAC, SB, OptTTYPE, ttypeSEND, IAC, SE, IAC, SB, OptTTYPE, ttypeSEND, IAC, SE),
			replies: b(IAC, WILL, OptTTYPE, ttypeIs("TRELLIS"), ttypeIs("ANSI"), ttypeIs("MTTS 905"))},
		{name: "TTYPE MTTS over TLS sets SSL", opts: Options{TLS: true}, input: mttsSeq,
			replies: b(IAC, WILL, OptTTYPE, ttypeIs("TRELLIS"), ttypeIs("XTERM-256COLOR"), ttypeIs("MTTS 2445"), ttypeIs("MTTS 2445"), ttypeIs("TRELLIS"))},
		{name: "TTYPE MTTS for a screen reader sets bit 64", opts: Options{ScreenReader: true}, input: mttsSeq,
			replies: b(IAC, WILL, OptTTYPE, ttypeIs("TRELLIS"), ttypeIs("XTERM-256COLOR"), ttypeIs("MTTS 461"), ttypeIs("MTTS 461"), ttypeIs("TRELLIS"))},
		{name: "TTYPE SEND before agreement ignored", input: b(IAC, SB, OptTTYPE, ttypeSEND, IAC, SE)},
		{name: "NAWS sent on agreement", input: b(IAC, DO, OptNAWS, IAC, DO, OptNAWS),
			replies: b(IAC, WILL, OptNAWS, IAC, SB, OptNAWS, 0, 80, 0, 24, IAC, SE)},
		{name: "NAWS doubles 255", opts: wide, input: b(IAC, DO, OptNAWS),
			replies: b(IAC, WILL, OptNAWS, IAC, SB, OptNAWS, 0, IAC, IAC, 1, IAC, IAC, IAC, SE)},
		{name: "CHARSET accepts UTF-8", input: b(IAC, DO, OptCharset, IAC, SB, OptCharset, charsetREQUEST, ";ISO-8859-1;utf-8", IAC, SE),
			replies: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetACCEPTED, "utf-8", IAC, SE)},
		{name: "CHARSET with TTABLE and a space separator", input: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetREQUEST, "[TTABLE]", 1, " US-ASCII UTF-8", IAC, SE),
			replies: b(IAC, DO, OptCharset, IAC, SB, OptCharset, charsetACCEPTED, "UTF-8", IAC, SE)},
		{name: "CHARSET falls back to the game's charset, then decodes with it", opts: Options{Charset: "latin1"},
			input:   b(IAC, DO, OptCharset, "\xe9", IAC, SB, OptCharset, charsetREQUEST, ";KOI8-R;ISO_8859-1", IAC, SE, "\xe9"),
			events:  []string{`text "éé"`},
			replies: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetACCEPTED, "ISO_8859-1", IAC, SE)},
		{name: "CHARSET UTF-8 switches a legacy game to UTF-8", opts: Options{Charset: "cp437"},
			input:   b(IAC, DO, OptCharset, "\xc9", IAC, SB, OptCharset, charsetREQUEST, ",CP437,UTF8", IAC, SE, "\xc3\xa9"),
			events:  []string{`text "╔é"`},
			replies: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetACCEPTED, "UTF8", IAC, SE)},
		{name: "CHARSET switch away from UTF-8 cuts a held sequence", opts: Options{Charset: "latin-1"},
			input: b(IAC, DO, OptCharset, IAC, SB, OptCharset, charsetREQUEST, ";UTF-8", IAC, SE, "\xe2",
				IAC, SB, OptCharset, charsetREQUEST, ";latin1", IAC, SE, "\xe9"),
			events: []string{`text "�é"`},
			replies: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetACCEPTED, "UTF-8", IAC, SE,
				IAC, SB, OptCharset, charsetACCEPTED, "latin1", IAC, SE)},
		{name: "CHARSET rejects what it cannot decode", input: b(IAC, DO, OptCharset, IAC, SB, OptCharset, charsetREQUEST, ";KOI8-R;BIG5", IAC, SE,
			IAC, SB, OptCharset, charsetREQUEST, IAC, SE, IAC, SB, OptCharset, charsetTTABLEIS, 1, IAC, SE),
			replies: b(IAC, WILL, OptCharset, IAC, SB, OptCharset, charsetREJECTED, IAC, SE, IAC, SB, OptCharset, charsetREJECTED, IAC, SE,
				IAC, SB, OptCharset, charsetTTABLEREJECTED, IAC, SE)},
		{name: "NEW-ENVIRON SEND all", opts: mnes, input: b(IAC, DO, OptNewEnviron, IAC, SB, OptNewEnviron, envSEND, IAC, SE),
			replies: b(IAC, WILL, OptNewEnviron, env(
				envVAR, "CHARSET", envVALUE, "UTF-8",
				envVAR, "CLIENT_NAME", envVALUE, "Trellis",
				envVAR, "CLIENT_VERSION", envVALUE, "1.2",
				envVAR, "IPADDRESS", envVALUE, "203.0.113.7",
				envVAR, "MTTS", envVALUE, "909"))},
		{name: "NEW-ENVIRON SEND named vars, unknown and escaped", opts: mnes,
			input: b(IAC, DO, OptNewEnviron, IAC, SB, OptNewEnviron, envSEND, envVAR, "IPADDRESS", envUSERVAR, "NO", envESC, envVAR, "PE", envVAR, "MTTS", IAC, SE),
			replies: b(IAC, WILL, OptNewEnviron, env(
				envVAR, "IPADDRESS", envVALUE, "203.0.113.7",
				envUSERVAR, "NO", envESC, envVAR, "PE",
				envVAR, "MTTS", envVALUE, "909"))},
		{name: "NEW-ENVIRON SEND VAR with no name means all", opts: Options{MNES: true, ClientName: "x\x01y"},
			input: b(IAC, DO, OptNewEnviron, IAC, SB, OptNewEnviron, envSEND, envUSERVAR, envVAR, IAC, SE),
			replies: b(IAC, WILL, OptNewEnviron, env(
				envVAR, "CHARSET", envVALUE, "UTF-8",
				envVAR, "CLIENT_NAME", envVALUE, "x", envESC, 1, "y",
				envVAR, "CLIENT_VERSION", envVALUE,
				envVAR, "MTTS", envVALUE, "909"))},
		{name: "GMCP hello and messages with and without body",
			input: b(willGMCP, IAC, SB, OptGMCP, `Char.Vitals {"hp":10,"name":"ÿ"}`, IAC, SE,
				IAC, SB, OptGMCP, "Core.Ping", IAC, SE,
				IAC, SB, OptGMCP, "Comm.Channel.Text  not json ", IAC, SE,
				IAC, SB, OptGMCP, "Room.Info\n[1, 2]", IAC, SE),
			events:  []string{`gmcp Char.Vitals {"hp":10,"name":"ÿ"}`, "gmcp Core.Ping", `gmcp Comm.Channel.Text "not json"`, "gmcp Room.Info [1, 2]"},
			replies: gmcpReplies},
		{name: "GMCP body with IAC IAC and invalid UTF-8",
			input:   b(willGMCP, IAC, SB, OptGMCP, `X "`, IAC, IAC, `"`, IAC, SE),
			events:  []string{`gmcp X "\"�\""`},
			replies: gmcpReplies},
		{name: "GMCP custom hello", opts: Options{ClientName: `Tr"ellis`, ClientVersion: "0.1", GMCPSupports: []string{}},
			input: willGMCP,
			replies: b(IAC, DO, OptGMCP, IAC, SB, OptGMCP, `Core.Hello {"client":"Tr\"ellis","version":"0.1"}`, IAC, SE,
				IAC, SB, OptGMCP, `Core.Supports.Set []`, IAC, SE)},
		{name: "GMCP before agreement ignored", input: b(IAC, SB, OptGMCP, "Char.Vitals {}", IAC, SE, "after"),
			events: []string{`text "after"`}},
		{name: "MSSP with multiple values",
			input: b(IAC, WILL, OptMSSP, IAC, SB, OptMSSP, "junk", msspVAR, "NAME", msspVAL, "Demo", msspVAR, "PORT", msspVAL, "4000", msspVAL, "4001",
				msspVAR, "EMPTY", msspVAL, msspVAL, "x", IAC, SE, IAC, SB, OptMSSP, IAC, SE),
			events:  []string{"mssp EMPTY=|x NAME=Demo PORT=4000|4001"},
			replies: b(IAC, DO, OptMSSP)},
		{name: "MSSP VAR without VAL",
			input:   b(IAC, WILL, OptMSSP, IAC, SB, OptMSSP, msspVAL, "orphan", msspVAR, "A", msspVAR, "A", msspVAL, "1", IAC, SE),
			events:  []string{"mssp A=1"},
			replies: b(IAC, DO, OptMSSP)},
		{name: "unknown SB ignored", input: b("a", IAC, SB, 99, 1, 2, 3, IAC, IAC, IAC, SE, "b", IAC, SB, OptNAWS, 0, 80, 0, 24, IAC, SE),
			events: []string{`text "ab"`}},
		{name: "SB overflow dropped, resync on IAC SE", opts: Options{MaxSubneg: 16},
			input: b(willGMCP, IAC, SB, OptGMCP, "Big ", strings.Repeat(string(b(IAC, IAC)), 7), "", IAC, SE, "after",
				IAC, SB, OptGMCP, "Small [1]", IAC, SE),
			events:  []string{`text "after"`, "gmcp Small [1]"},
			replies: gmcpReplies},
		{name: "command inside SB abandons it", input: b(willGMCP, IAC, SB, OptGMCP, "Lost", IAC, WILL, OptEcho, "text"),
			events:  []string{"echo true", `text "text"`},
			replies: b(gmcpReplies, IAC, DO, OptEcho)},
		{name: "SB of option 255", input: b(IAC, SB, IAC, SE, "x", IAC, SE, "y"), events: []string{`text "y"`}},
	})
}

func TestDecodeMCCP2(t *testing.T) {
	inner := b("compressed ", IAC, WILL, OptEcho, "pw: ", IAC, GA, "\r\n")
	start := b(IAC, WILL, OptMCCP2, "before ", IAC, SB, OptMCCP2, IAC, SE)
	stream := compressed(t, inner, true)
	corrupt := slices.Clone(stream)
	corrupt[2] |= 0x06 // first deflate block of the reserved type 3
	badChecksum := slices.Clone(stream)
	badChecksum[len(badChecksum)-1] ^= 1

	runDecodeCases(t, []decodeCase{
		{name: "start mid-chunk, stream end, then plain", input: b(start, stream, "plain ", IAC, GA),
			events:  []string{`text "before compressed "`, "echo true", `text "pw: "`, "prompt", `text "\nplain "`, "prompt"},
			replies: b(IAC, DO, OptMCCP2, IAC, DO, OptEcho)},
		{name: "stream still open", input: b(start, compressed(t, inner, false)),
			events:  []string{`text "before compressed "`, "echo true", `text "pw: "`, "prompt", `text "\n"`},
			replies: b(IAC, DO, OptMCCP2, IAC, DO, OptEcho)},
		{name: "restart after stream end", input: b(start, stream, IAC, SB, OptMCCP2, IAC, SE, compressed(t, []byte("again"), true), "!"),
			events:  []string{`text "before compressed "`, "echo true", `text "pw: "`, "prompt", `text "\nagain!"`},
			replies: b(IAC, DO, OptMCCP2, IAC, DO, OptEcho)},
		{name: "start without agreement ignored", input: b(IAC, SB, OptMCCP2, IAC, SE, "plain"),
			events: []string{`text "plain"`}},
		{name: "corrupt stream", input: b(start, corrupt, "lost"),
			events:  []string{`text "before "`},
			replies: b(IAC, DO, OptMCCP2, IAC, DONT, OptMCCP2), err: ErrCompression},
		{name: "corrupt header", input: b(start, "not zlib at all"),
			events:  []string{`text "before "`},
			replies: b(IAC, DO, OptMCCP2, IAC, DONT, OptMCCP2), err: ErrCompression},
		{name: "bad checksum", input: b(start, badChecksum, "lost"),
			events:  []string{`text "before compressed "`, "echo true", `text "pw: "`, "prompt", `text "\n"`},
			replies: b(IAC, DO, OptMCCP2, IAC, DO, OptEcho, IAC, DONT, OptMCCP2), err: ErrCompression},
	})
}
