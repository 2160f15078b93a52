package edge

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/trellis-mud/trellis/store"
)

// BenchmarkBacklog measures a reattach that replays a full page of backlog
// (backlogPage entries): the hello, the stream read and the writes of every
// frame to a real socket. It is the path where several frames are queued
// for one write.
func BenchmarkBacklog(b *testing.B) {
	e := newEnv(b, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	line := strings.Repeat("x", 70) + "\n"
	for range backlogPage {
		w.text(line)
	}
	b.ResetTimer()
	w0, cpu0 := writeSyscalls(), cpuTime()
	for b.Loop() {
		c := e.hello(user, "demo", "")
		for n := 0; n < backlogPage; {
			if f := c.next(); f.Type == "output" {
				n++
			}
		}
		c.conn.Close()
	}
	b.ReportMetric(float64(backlogPage*b.N)/b.Elapsed().Seconds(), "frames/s")
	if w0 >= 0 {
		b.ReportMetric(float64(writeSyscalls()-w0)/float64(b.N), "write-syscalls/op")
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// writeSyscalls is the process's count of write system calls so far (the
// edge's, its Redis client's and the test browser's), or -1 off Linux.
func writeSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkEcho measures one echo through an idle connection: the
// browser's input line (the reader, the route, PUBLISH on real Redis), the
// test worker's read of it and its output entry (XADD and PUBLISH), the
// hub's fan-out, the writer's run and the browser's read, one at a time.
// cpu-ns/op is this process's CPU (edge, test worker and browser), not
// Redis's.
func BenchmarkEcho(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.InputRate, c.InputBurst = 1e6, 1e6 })
	user := newUser()
	w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
	c := e.hello(user, "demo", "")
	line := strings.Repeat("x", 70)
	b.ResetTimer()
	w0, cpu0 := writeSyscalls(), cpuTime()
	for b.Loop() {
		c.send(map[string]any{"type": "input", "text": line})
		in := w.nextInput()
		id := w.text(in.Text + "\n")
		for {
			f := c.next()
			if f.ID == id {
				break
			}
		}
	}
	if w0 >= 0 {
		b.ReportMetric(float64(writeSyscalls()-w0)/float64(b.N), "write-syscalls/op")
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
