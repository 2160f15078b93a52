// Package dialguard decides which network addresses a worker may connect
// to on behalf of a game.
//
// A registry entry is operator input and can be wrong, and a host name is
// whatever DNS says at the moment of the dial, so the guard checks the
// address actually being connected to (net.Dialer.Control runs after name
// resolution, once per address tried), not the registry text. By default
// it refuses everything that is not a public unicast address: loopback,
// private and shared ranges, link-local, unspecified, multicast, reserved
// and documentation ranges. Operators allow networks explicitly (CIDRs);
// Trellis's own endpoints (Redis, admin listeners) stay refused even
// inside an allowed network, because a game that is really Trellis's Redis
// would let a player type Redis commands.
package dialguard
