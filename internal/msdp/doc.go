// Package msdp encodes a player's MSDP message (a variable name and a JSON
// value) as the bytes of an MSDP subnegotiation body, refusing what has no
// MSDP form. It does no I/O and knows nothing of telnet framing: the
// worker's telnet engine frames and sends it, the edge uses it to tell a
// player at once why a message cannot be sent, so both agree on what is
// sendable without the edge importing the worker.
package msdp
