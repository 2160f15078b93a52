// Package ansi turns game text with ANSI escape sequences into plain text
// or HTML, for transcripts replayed by operators. SGR colours (16, bright,
// 256 and true colour) and attributes become styled spans; every other
// escape sequence is dropped. Text is always HTML-escaped.
package ansi
