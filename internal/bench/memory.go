package bench

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// Memory is the process's memory at one moment, after a full GC.
type Memory struct {
	RSS        int64 `json:"rss"`         // resident set (VmRSS)
	PeakRSS    int64 `json:"peak_rss"`    // high-water mark of the resident set (VmHWM)
	HeapInuse  int64 `json:"heap_inuse"`  // Go heap spans in use
	HeapAlloc  int64 `json:"heap_alloc"`  // live Go heap objects
	StackInuse int64 `json:"stack_inuse"` // goroutine stacks
	Goroutines int   `json:"goroutines"`
	// Components splits the live heap and the goroutine stacks by who
	// allocated them (see attribute); nil when not asked for.
	Components map[string]int64 `json:"components,omitempty"`
}

// readMemory returns the process's memory. With gc it first collects
// twice, so that the heap figures are live data and the heap profile is
// current (it is published at the end of a GC cycle).
func readMemory(gc bool) Memory {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Memory{
		HeapInuse:  int64(ms.HeapInuse),
		HeapAlloc:  int64(ms.HeapAlloc),
		StackInuse: int64(ms.StackInuse),
		Goroutines: runtime.NumGoroutine(),
	}
	m.RSS, m.PeakRSS = procStatus()
	return m
}

// procStatus reads VmRSS and VmHWM of this process in bytes (0 off Linux).
func procStatus() (rss, hwm int64) { return statusFile("/proc/self/status") }

// statusFile reads VmRSS and VmHWM from a /proc/<pid>/status file.
func statusFile(path string) (rss, hwm int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// Components of the in-process stack that memory is attributed to.
const (
	CompEdge   = "edge"
	CompWorker = "worker"
	CompGame   = "game"   // the demo game: not Trellis, excluded from per-session figures
	CompClient = "client" // the benchmark's own WebSocket clients
	CompShared = "shared" // Redis clients and everything no component claims
)

const modulePath = "github.com/trellis-mud/trellis/"

// component says which part of the process a function belongs to. The
// in-process stack shares one heap, so the edge and the worker are told
// apart by the code on the stack when memory was allocated.
func component(fn string) string {
	rest, ok := strings.CutPrefix(fn, modulePath)
	if !ok {
		// net/http's server only runs the edge during a stack
		// measurement (the direct proxy is stopped by then).
		if strings.HasPrefix(fn, "net/http.(*conn)") || strings.HasPrefix(fn, "net/http.(*Server)") {
			return CompEdge
		}
		return ""
	}
	switch {
	case strings.HasPrefix(rest, "edge"):
		return CompEdge
	case strings.HasPrefix(rest, "worker"), strings.HasPrefix(rest, "controller"):
		return CompWorker
	case strings.HasPrefix(rest, "internal/demogame"):
		return CompGame
	case strings.HasPrefix(rest, "internal/bench"):
		return CompClient
	}
	return "" // store and helpers act for whoever called them
}

// classify walks a stack from the innermost frame out and names the first
// component found, CompShared if none.
func classify(pcs []uintptr) string {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if c := component(f.Function); c != "" {
			return c
		}
		if !more {
			return CompShared
		}
	}
}

// attributeHeap returns the live heap bytes per component according to the
// heap profile. The profile samples one allocation per MemProfileRate
// bytes; each record is scaled back up the way pprof does, so the sums are
// estimates whose error shrinks with the number of sessions measured.
func attributeHeap() map[string]int64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		n, ok = runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	out := make(map[string]int64)
	for i := range recs {
		r := &recs[i]
		objs, bytes := r.InUseObjects(), r.InUseBytes()
		if objs <= 0 || bytes <= 0 {
			continue
		}
		scale := 1.0
		if rate > 1 {
			avg := float64(r.AllocBytes) / float64(r.AllocObjects)
			scale = 1 / (1 - math.Exp(-avg/rate))
		}
		out[classify(r.Stack())] += int64(float64(bytes) * scale)
	}
	return out
}

// attributeStacks splits the goroutine stack memory by component in
// proportion to each component's goroutine count: stacks grow on demand,
// but goroutines of one kind need about the same depth.
func attributeStacks(stackInuse int64) map[string]int64 {
	p := pprof.Lookup("goroutine")
	recs := make([]runtime.StackRecord, p.Count()+256)
	n, ok := runtime.GoroutineProfile(recs)
	if !ok {
		return nil
	}
	counts := make(map[string]int)
	for _, r := range recs[:n] {
		counts[classify(r.Stack())]++
	}
	out := make(map[string]int64, len(counts))
	for c, k := range counts {
		out[c] = stackInuse * int64(k) / int64(max(n, 1))
	}
	return out
}

// readAttributed is readMemory(true) plus the split by component.
func readAttributed() Memory {
	m := readMemory(true)
	m.Components = attributeHeap()
	for c, b := range attributeStacks(m.StackInuse) {
		m.Components[c] += b
	}
	return m
}
