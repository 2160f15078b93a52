package bench

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A CPU cap on every redis-server a stack starts makes the Redis tier the
// saturated resource on a machine too small to give each primary a core
// of its own: each process gets a cgroup of its own with the same quota,
// so N primaries get N times the budget of one, as N machines' cores
// would. The cap is what `trellis bench --redis-cpu` sets.

// The bounds of a cap, in cores per redis-server. Below MinRedisCPU the
// quota would be under the kernel's 1 ms minimum at the kernel's default
// 100 ms period.
const (
	MinRedisCPU = 0.01
	MaxRedisCPU = 64
)

// cpuCapPeriod is the CFS period of a capped group: 20 ms, shorter than
// the kernel's 100 ms default so that a throttled redis-server stalls for
// a few milliseconds at a time, not a tenth of a second (which the echo
// latency figures would show as the cap, not as the design); longer for
// caps whose quota would otherwise be under the kernel's 1 ms minimum.
func cpuCapPeriod(cores float64) time.Duration {
	return max(20*time.Millisecond, time.Duration(math.Ceil(float64(time.Millisecond)/cores)))
}

// cappedWeight is a capped group's cpu.shares (v1; 1024 is a plain
// process's), scaled to cpu.weight on v2 (100 is a plain process's).
const cappedWeight = 10240

// cgroupPrefix names the groups this package makes:
// trellis-bench-<our pid>-<n>, so that leftovers of a killed run can be
// told from other groups and swept.
const cgroupPrefix = "trellis-bench-"

// ParseRedisCPU reads a cap in cores per redis-server, e.g. "0.2".
func ParseRedisCPU(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: want cores per redis-server, a number such as 0.2", s)
	}
	if v < MinRedisCPU || v > MaxRedisCPU {
		return 0, fmt.Errorf("%q: want cores per redis-server from %g to %g", s, MinRedisCPU, float64(MaxRedisCPU))
	}
	return v, nil
}

// cpuCapper puts processes each in a CPU cgroup of its own and takes the
// groups away again on Close.
type cpuCapper struct {
	cores float64
	v2    bool
	root  string // where the cpu controller is mounted

	mu     sync.Mutex
	groups []cappedGroup
}

// cgroupSeq numbers the groups of this process: several stacks, each
// with its capper, run at once.
var cgroupSeq atomic.Int64

type cappedGroup struct {
	dir  string
	pid  int
	from string // the process's cgroup before, to move it back
}

// CheckRedisCPU reports whether CPU caps can be set on this machine,
// without setting any.
func CheckRedisCPU() error {
	c, err := newCPUCapper(MinRedisCPU)
	if err != nil {
		return err
	}
	return c.Close()
}

// newCPUCapper finds the cpu controller, cgroup v1 (cpu.cfs_quota_us)
// first, else v2 (cpu.max), and sweeps groups left by runs of this
// package that died before their cleanup.
func newCPUCapper(cores float64) (*cpuCapper, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("capping redis-server CPU needs root to make cgroups (running as uid %d)", os.Geteuid())
	}
	root, v2, err := findCPUController()
	if err != nil {
		return nil, err
	}
	c := &cpuCapper{cores: cores, v2: v2, root: root}
	c.sweep()
	return c, nil
}

func findCPUController() (root string, v2 bool, err error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", false, fmt.Errorf("capping redis-server CPU: %w", err)
	}
	defer f.Close()
	var unified string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		switch fs[2] {
		case "cgroup":
			for _, o := range strings.Split(fs[3], ",") {
				if o == "cpu" {
					if _, err := os.Stat(filepath.Join(fs[1], "cpu.cfs_quota_us")); err == nil {
						return fs[1], false, nil
					}
				}
			}
		case "cgroup2":
			unified = fs[1]
		}
	}
	if unified == "" {
		return "", false, errors.New("capping redis-server CPU needs a cgroup cpu controller: none is mounted (neither cgroup v1 cpu nor cgroup v2)")
	}
	b, err := os.ReadFile(filepath.Join(unified, "cgroup.controllers"))
	if err != nil || !slicesContainsField(string(b), "cpu") {
		return "", false, fmt.Errorf("capping redis-server CPU needs the cpu controller: cgroup v2 at %s does not offer it (cgroup.controllers %q)", unified, strings.TrimSpace(string(b)))
	}
	return unified, true, nil
}

func slicesContainsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// sweep removes empty groups of this package whose run is gone.
func (c *cpuCapper) sweep() {
	dirs, _ := filepath.Glob(filepath.Join(c.root, cgroupPrefix+"*"))
	for _, d := range dirs {
		owner, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), cgroupPrefix), "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		_ = os.Remove(d) // fails, harmlessly, while a process is still in it
	}
}

// place moves pid (all its threads) into a new group capped at c.cores.
func (c *cpuCapper) place(pid int) (string, error) {
	from, err := cgroupOf(pid, c.v2)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(c.root, fmt.Sprintf("%s%d-%d", cgroupPrefix, os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("capping redis-server CPU: %w", err)
	}
	g := cappedGroup{dir: dir, pid: pid, from: from}
	c.mu.Lock()
	c.groups = append(c.groups, g)
	c.mu.Unlock()
	period := cpuCapPeriod(c.cores).Microseconds()
	quota := int64(math.Round(c.cores * float64(period)))
	// The quota is a ceiling only: on a machine others keep busy, a
	// capped server would get less and the budget would not be fixed. A
	// large weight lets it have its quota first; the quota bounds what
	// that takes from everyone else.
	if c.v2 {
		if err := enableCPU(c.root); err != nil {
			return "", err
		}
		err = writeCgroup(dir, "cpu.max", fmt.Sprintf("%d %d", quota, period))
		if err == nil {
			err = writeCgroup(dir, "cpu.weight", strconv.Itoa(cappedWeight*100/1024))
		}
	} else {
		err = writeCgroup(dir, "cpu.cfs_period_us", strconv.FormatInt(period, 10))
		if err == nil {
			err = writeCgroup(dir, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10))
		}
		if err == nil {
			err = writeCgroup(dir, "cpu.shares", strconv.Itoa(cappedWeight))
		}
	}
	if err == nil {
		err = writeCgroup(dir, "cgroup.procs", strconv.Itoa(pid))
	}
	if err != nil {
		return "", err
	}
	return dir, nil
}

// enableCPU lets the groups under the v2 root use the cpu controller.
func enableCPU(root string) error {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
	if err == nil && slicesContainsField(string(b), "cpu") {
		return nil
	}
	return writeCgroup(root, "cgroup.subtree_control", "+cpu")
}

func writeCgroup(dir, file, v string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("capping redis-server CPU: write %q to %s: %w", v, filepath.Join(dir, file), err)
	}
	return nil
}

func (c *cpuCapper) dirOf(rel string) string { return filepath.Join(c.root, rel) }

// cgroupOf is pid's group in the cpu hierarchy, relative to its mount.
func cgroupOf(pid int, v2 bool) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("capping redis-server CPU: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-id:controllers:path; v2 is 0::path.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if !v2 && slicesContainsField(strings.ReplaceAll(parts[1], ",", " "), "cpu") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("capping redis-server CPU: process %d is in no cpu cgroup (/proc/%d/cgroup)", pid, pid)
}

// Close moves any process still in a group back where it came from and
// removes every group, waiting a little for exiting processes to leave.
func (c *cpuCapper) Close() error {
	c.mu.Lock()
	groups := c.groups
	c.groups = nil
	c.mu.Unlock()
	var errs []error
	for _, g := range groups {
		if b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err == nil {
			for _, p := range strings.Fields(string(b)) {
				// The process may exit meanwhile: ESRCH is fine.
				if err := writeCgroup(c.dirOf(g.from), "cgroup.procs", p); err != nil && !errors.Is(err, syscall.ESRCH) {
					errs = append(errs, err)
				}
			}
		}
		var err error
		for range 50 {
			if err = os.Remove(g.dir); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("capping redis-server CPU: remove %s: %w", g.dir, err))
		}
	}
	return errors.Join(errs...)
}

// dirs are the groups made so far.
func (c *cpuCapper) dirs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.groups))
	for i, g := range c.groups {
		out[i] = g.dir
	}
	return out
}
