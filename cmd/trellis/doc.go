// Command trellis is the one binary of Trellis: the edge (WebSocket
// gateway), the worker (the supervisor of game connections), the all-in-one
// dev stack, the demo game, and the operator tools, as subcommands.
//
//	trellis dev                 everything in one process (make run)
//	trellis edge | worker       the two horizontally scaled components
//	trellis demo-game           the demo MUD
//	trellis games ...           the game registry
//	trellis sessions ...        what runs where; kill a session
//	trellis replay ...          transcripts, the event log, redrive of control events
//	trellis ops lag             the control stream's consumer group
//	trellis console             the operator's web console (an admin listener)
//	trellis token               mint a player token (-operator: a console token)
//	trellis bench               the end-to-end load generator
//
// Configuration comes from TRELLIS_* environment variables, one envconfig
// struct per component; `trellis <command> --help` lists them with defaults.
package main
