// Package console is the operator's web console: a JSON API over store
// and an embedded page, served on an admin listener of its own (never the
// players' port).
//
// An operator signs in with an operator token (`trellis token -operator
// NAME`, signed with TRELLIS_AUTH_SECRET under a key of its own, so a
// player token is refused here and an operator token at the edge). The
// page posts it once to /api/login, which sets it as an HttpOnly,
// SameSite=Strict cookie (Secure over TLS); no credential travels in a
// URL. Every state-changing request must come from a page of the
// console's own origin (the Origin header) with a JSON body, so another
// site cannot ride the cookie.
//
// The API speaks the snake_case shapes of internal/ops, the same the
// CLI's -o json prints:
//
//	GET    /api/me                       who is signed in
//	GET    /api/sessions                 live sessions
//	GET    /api/session?user=U&game=G    one session and its lease
//	POST   /api/sessions/kill            stop a session (the CLI's `sessions kill`)
//	GET    /api/transcript?user=U&game=G&after=ID
//	GET    /api/games                    the registry; POST adds, PUT /api/games/{id} edits,
//	                                     DELETE /api/games/{id} removes, POST /api/games/import imports
//	GET    /api/events?type=&user=&game=&correlation=&before=ID   the log's tail, newest first
//	GET    /api/events/live?...&after=ID the log as it grows (Server-Sent Events)
//	GET    /api/control                  control stream lag, pending, dead letters (`ops lag`)
//	GET    /api/cluster                  edges and workers with their health
//
// Operator actions (kills, registry changes, sign-ins) are logged with
// the operator's name and appended to the event log (trellis.operator.*).
//
// The page is plain JavaScript modules with no build step, under the
// player client's strict Content-Security-Policy; transcripts are drawn
// by the player client's own ANSI renderer (edge/web's ansi.js and
// terminal.js, served from the same embedded files).
package console
