package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryMax is where cgroup v2 publishes the container's memory limit.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// applyMemoryLimit gives the garbage collector the container's memory
// budget. The Go runtime does not read cgroup limits: without this a worker
// near its pod limit is OOM-killed instead of collecting harder. 90 % of the
// limit leaves room for memory the Go heap limit does not cover (thread
// stacks, the runtime's own overhead). GOMEMLIMIT, when set, wins: the
// runtime has already applied it.
func applyMemoryLimit() (limit int64, ok bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	b, err := os.ReadFile(cgroupMemoryMax)
	if err != nil {
		return 0, false
	}
	limit, ok = parseMemoryMax(string(b))
	if !ok {
		return 0, false
	}
	limit = limit / 10 * 9
	debug.SetMemoryLimit(limit)
	return limit, true
}

// parseMemoryMax reads cgroup v2's memory.max: a byte count, or "max"
// for no limit.
func parseMemoryMax(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
