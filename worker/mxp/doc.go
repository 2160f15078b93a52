// Package mxp turns the MXP (MUD eXtension Protocol, option 91) markup in a
// game's text into Trellis's inline encoding, and nothing else: it does no
// I/O, like golang.org/x/net/http2/hpack. Fed the text the telnet engine
// produced, split anywhere, it returns the same text with MXP replaced by
// escape sequences the browser renders as structured spans (see
// /work/notes/inline-spec.md, docs/PROTOCOL.md):
//
//   - formatting tags (<b> <i> <u> <s> <color>/<c> <h>/<high>) become SGR,
//     colours as 24-bit 38;2;r;g;b / 48;2;r;g;b;
//   - <a href> becomes an OSC 8 hyperlink, for http and https only;
//   - <send> becomes the Trellis-private OSC 7701 command link, whose JSON
//     payload cannot carry ESC or BEL;
//   - entities are decoded, <!ELEMENT> definitions built from the tags
//     above are expanded, <SUPPORT> and <VERSION> are answered (Replies);
//   - every other tag is stripped; nothing a game sends comes out as markup.
//
// Line modes (ESC[0z ... ESC[7z) decide what a line may carry: open lines
// only the formatting tags, secure lines everything above, locked lines no
// tags at all. A Decoder that is not Enabled (the game never agreed to MXP)
// passes text through untouched except for one thing: it drops any OSC
// 7701 the game sent itself, so a game cannot forge command links.
//
// Everything a game controls is bounded (Config): tag and attribute size,
// nesting depth, element definitions, the text a <send> may hold back.
// Malformed input is dropped, never echoed as half-parsed markup.
package mxp
