// Package controller is the event-driven brain inside each worker process.
//
// Edges never tell a particular worker to do anything. They append commands
// (attach, detach, stop) to one control stream, and every worker reads that
// stream as a member of one Redis consumer group, so each entry goes to one
// worker. The controller that receives an entry decides, from the session's
// lease, who should act on it:
//
//   - the session runs here: hand the command to it (Sessions.Deliver);
//   - another live worker holds the lease: forward the command, unchanged,
//     to that worker's inbox (store.SendInbox), where its own controller
//     handles it as a forwarded command;
//   - nobody holds it and the command is an attach: acquire the lease (which
//     yields a new, higher fence) and start the session (Sessions.Start).
//
// There is no central scheduler. A worker that is full or draining simply
// stops reading (Sessions.Accepting), and the others take the work.
//
// Delivery is at least once. An entry is acknowledged only after it was
// handled, so a worker that dies mid-way leaves it pending: its successor
// under the same consumer name reads its own pending entries first, and live
// workers claim entries that stayed pending longer than ClaimMinIdle
// (XAUTOCLAIM). Every handler is therefore idempotent: a second attach of the
// same viewer re-adds the same viewer, a second detach removes nothing. An
// entry that keeps failing is moved to the dead-letter stream after
// MaxDeliveries attempts instead of circling forever.
//
// Forwarded commands are never forwarded again: if the worker they reach no
// longer runs the session and the lease is held elsewhere, they are dropped
// (the edge's lease watchdog re-attaches its viewers when ownership moves),
// so two workers can never bounce a command between their inboxes.
//
// The controller does not import package worker: the worker implements the
// small Sessions interface, which keeps the decisions here testable with a
// fake session table against a real Redis.
package controller
