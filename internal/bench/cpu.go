package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports (the kernel fixes it for user space).
const clockTick = 100

// procCPU is the CPU time (user + system) a process has used so far, from
// /proc/<pid>/stat; pid 0 is this process.
func procCPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func parseProcStat(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command name in %.60q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// machineCPU is the CPU time all CPUs of the machine have spent busy
// (everything in /proc/stat's "cpu" line but idle and iowait).
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %.60q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", v, err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// cpuSample is the CPU time used so far by this process, by each Redis
// process and by the whole machine.
type cpuSample struct {
	at      time.Time
	self    time.Duration
	redis   []time.Duration // in the order of the pids asked for
	machine time.Duration
}

func sampleCPU(redisPids []int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.self, _ = procCPU(0)
	// A capped redis-server uses a few hundredths of a core: over a
	// 4-second flood that is some 20 of /proc's 10 ms ticks, so a tick
	// more or less moves its share of the cap by 5%. schedstat counts
	// nanoseconds.
	for _, pid := range redisPids {
		s.redis = append(s.redis, schedCPU(pid))
	}
	s.machine, _ = machineCPU()
	return s
}

// CPUShare is where the machine's CPU went during a measurement, in cores
// (1.0 is one CPU busy the whole time).
type CPUShare struct {
	// Trellis is this process: edge, worker, demo game and the
	// benchmark's clients.
	Trellis float64 `json:"trellis_cores"`
	// Redis is each redis-server (primaries), and their sum.
	Redis      []float64 `json:"redis_cores"`
	RedisTotal float64   `json:"redis_total_cores"`
	// Other is the rest of the machine's busy time: other processes
	// (other users of a shared machine) and the kernel's.
	Other   float64 `json:"other_cores"`
	Machine float64 `json:"machine_cores"`
}

// cpuSince is the share of each process between two samples.
func cpuSince(a, b cpuSample) CPUShare {
	span := b.at.Sub(a.at).Seconds()
	if span <= 0 {
		return CPUShare{}
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / span }
	c := CPUShare{Trellis: cores(b.self - a.self), Machine: cores(b.machine - a.machine)}
	for i := range min(len(a.redis), len(b.redis)) {
		r := cores(b.redis[i] - a.redis[i])
		c.Redis = append(c.Redis, r)
		c.RedisTotal += r
	}
	c.Other = max(0, c.Machine-c.Trellis-c.RedisTotal)
	return c
}
