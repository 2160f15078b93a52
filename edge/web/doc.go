// Package web is the browser client of Trellis: the pages, scripts and style
// sheet a player's browser loads, embedded in the binary so an edge serves
// them with no files on disk.
//
// The client is plain JavaScript modules with no framework and no build
// step. Static returns them rooted at the static directory; the edge serves
// that tree under /static/ and serves play.html itself for /play/<game>:
//
//	play.html        the play page: output, input line, gauges, panels
//	app.js           wires the modules below to play.html's DOM
//	protocol.js      frames, close-code policy, reconnect backoff, resume memory
//	connection.js    the WebSocket to /ws, reconnecting with backoff
//	ansi.js          streaming ANSI parser: SGR (16, 256 and true colour), bare CR,
//	                 erase in line, cursor to column, OSC 8 and OSC 7701 links
//	terminal.js      scrollback rendering: line editing of the open line, links,
//	                 command links, the live pane; capped, with stick-to-bottom scrolling
//	search.js        find in the scrollback (Ctrl+F), marked with CSS highlights
//	transcript.js    the output's tail kept across a reload (resume brings the rest)
//	history.js       input-line history (Up/Down), never recording passwords
//	vitals.js        Char.Vitals gauges
//	msdp.js          MSDP variables, their gauges (HEALTH / HEALTH_MAX) and when to REPORT
//	gmcp.js          the GMCP inspector
//	settings.js      font size, no-colour, bold-as-bright, scrollback
//	index.html       the games list page, with index.js and games.js
//	style.css        the dark theme and the phone layout
//
// Everything the client shows from the game goes through text nodes, never
// markup: game text cannot inject HTML. The pages use no inline script or
// style, so the edge can serve them under a strict Content-Security-Policy
// such as "default-src 'self'; connect-src 'self'".
//
// The JavaScript is tested with Node's test runner (tests live outside the
// embedded tree, in test/, so they are never served):
//
//	node --test edge/web/test/
package web
