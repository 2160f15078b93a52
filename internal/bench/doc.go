// Package bench is the end-to-end load generator behind `trellis bench`.
//
// It drives a Trellis stack through its public door, the browser's
// WebSocket protocol, with many clients against the demo game in bench
// mode (every line echoed at once), and measures what a player would feel
// and what an operator would pay:
//
//   - attach: WebSocket open -> first game byte (the echo of a line sent the
//     moment the session takes input);
//   - echo: N clients typing one line per second each; the line carries its
//     send time ("bench <client> <round> <unixnano>"), so the round trip is
//     measured without clocks shared between goroutines; exact percentiles;
//   - reattach: a client leaves while the game writes 100 lines, comes back
//     with resume and waits for the last of them;
//   - flood: one session, the game writes numbered lines as fast as it can:
//     MB/s delivered, lines lost (must be 0), peak memory;
//   - idle capacity: memory per connected session in the edge, the worker
//     and Redis, measured at the largest echo client count before typing
//     starts;
//   - cost: Redis commands per input line and per output message, from INFO
//     commandstats deltas with the background rate taken out.
//
// The stack runs on a single redis-server or, with StackOptions.Redis
// (`trellis bench --redis cluster:N`), on a local Redis Cluster of N
// primaries without replicas; Redis figures are then summed over the
// primaries. RunCompare (`trellis bench --cluster`) drives several such
// stacks in turn, round after round, so that a shared machine's drift falls
// on all of them: output messages per second with many sessions flooding
// at once, the store's appends alone, and echo latency, each with the CPU
// this process, every redis-server and the rest of the machine used.
//
// A mode with a CPU cap (RedisMode.CPU, `--redis-cpu 0.05` or
// `cluster:3@0.05`; cgroup.go) puts each redis-server of its stack in a
// cgroup of its own with that quota (and a large weight, so that a busy
// machine does not hold it under its quota), so that N primaries get N
// times the budget of one, as N machines would give them, and the Redis
// tier rather than this process is the saturated resource on a small
// machine. The
// capped stacks get a verdict of their own, judged only when every capped
// primary ran at its cap (CapSaturated) during the saturation runs.
//
// Every saturation run is probed (satprobe.go): which primary holds each
// session's keys, the entries and the CPU of each primary every 100 ms
// (schedstat, nanoseconds), and the steady window in which every session
// was still flooding; the capped verdict is judged on that window. The
// flooding sessions are named so that every primary holds the same number
// (a few hundred hashed sessions split 10-15% unevenly, the tens of
// thousands of a deployment within a percent or two), and StackOptions.Workers
// runs several workers: a worker's one output flusher waits for its
// slowest primary in every round trip, so one worker alone measures that
// round trip rather than the Redis tier.
//
// The logged-in scenario takes a single redis-server's memory apart before
// and after its sessions (redismem.go): INFO memory, keys by kind with
// MEMORY USAGE, output stream entries by kind, client connections by the
// process holding them, and judges Redis on what an idle session costs:
// used_memory growth less the client pools' growth (a fixed cost) and the
// demo game's arrival lines (every player in its one room sees every later
// login: O(sessions) per session).
//
// With ProcStack (`trellis bench --procs`) the stack runs as an operator
// runs it: redis-server, the edge, the worker, three demo games (bench
// mode; login with MCCP2; login without) and the direct proxy are each a
// process of the trellis binary, started, stopped and waited for by this
// one, which holds only the clients. Each process holds one end of a
// session's sockets, so 10,000 sessions fit the open-file limit one
// process holding all four ends cannot; memory is read per process from
// outside (RSS from /proc/<pid>/status, Go heap and stacks from /metrics,
// Redis used_memory), and the "login" scenario measures idle sessions
// logged in to the demo game, with MCCP2 on and off, each kind on an edge
// and a worker started for it alone.
//
// Targets (targets.go) is the table of the performance issue; every run
// judges each row MET, MISS or n/a from its own figures.
//
// Every latency figure is compared with baselines measured in the same run
// on the same machine: Proxy, the least a WebSocket-to-TCP gateway can do (a
// goroutine pair per connection, no Redis), and websockify when installed
// (echo only: it relays raw bytes and forks a process per connection).
//
// # Using it
//
//	st, err := bench.StartStack(ctx, bench.StackOptions{Websockify: true})
//	defer st.Close()
//	res, err := bench.Run(ctx, st.Env(), bench.QuickOptions())
//	res.WriteTable(os.Stdout)
//
// StartStack runs the whole system in this process (a real redis-server
// child, the demo game, a worker and an edge on loopback ports). Run can
// also drive a stack elsewhere: build an Env whose Stack target has the
// edge's URL and a token minter.
//
// # Reading the memory figures
//
// The edge and the worker share one heap in the in-process stack, with the
// benchmark's own clients and the demo game. Live heap is attributed to a
// component by the code that allocated it (the runtime's heap profile,
// sampled every 4 KiB on average while a run is measured), goroutine stacks
// by each component's share of goroutines. The figures are estimates; the
// error shrinks as the number of sessions grows, so trust them at 1,000
// sessions and more.
//
// # Keeping a 2-core machine honest
//
// Clients connect at a fixed rate (500/s by default) with at most 64
// handshakes in flight; eight goroutines write for all clients, each line at
// its client's slot in the second, so load is even rather than bursty.
// Every scenario has a deadline and a bounded amount of work.
package bench
