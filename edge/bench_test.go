package edge

import (
	"encoding/json"
	"fmt"
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

// relayBenchText is game text of about size bytes: lines of 80 bytes with
// some colour, as a flood's entries carry them.
func relayBenchText(size int) string {
	line := "\x1b[1;32mThe bench game\x1b[0m prints line after line of text, \"quoted\" & plain"
	line += strings.Repeat(".", 79-len(line)) + "\n"
	return strings.Repeat(line, max(1, size/len(line)))
}

// BenchmarkRelayEntry is the edge's CPU for one live entry, from the
// message pub/sub delivers to the browser's frame: "full" decodes the
// stored JSON and encodes the frame again (the path before), "relay"
// decodes the routing fields and splices the stored text into the frame.
// Entries of 16 KiB (a flood's, as the worker packs them) and of one 80
// byte line (an echo's).
func BenchmarkRelayEntry(b *testing.B) {
	for _, size := range []int{80, 16 << 10} {
		o := store.Output{Kind: store.OutText, Fence: 3, Seq: 12345, Text: relayBenchText(size), Time: 1700000000000}
		stored, err := json.Marshal(o)
		if err != nil {
			b.Fatal(err)
		}
		msg := "1700000000000-42 " + string(stored)
		for _, path := range []struct {
			name  string
			parse func(string) (store.Output, error)
		}{{"full", store.ParseOutputMessage}, {"relay", store.ParseRelayMessage}} {
			b.Run(fmt.Sprintf("%s/%dB", path.name, size), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					o, err := path.parse(msg)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := encodeOutput(o, true); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFloodEntry is one live entry through the whole edge: the test
// worker's append (XADD and PUBLISH on real Redis), the hub's decode and
// fan-out, the writer's frame and write, the browser's read. cpu-ns/op is
// this process's CPU (edge, test worker, browser), not Redis's.
func BenchmarkFloodEntry(b *testing.B) {
	for _, size := range []int{80, 16 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			e := newEnv(b, nil)
			user := newUser()
			w := e.worker("w1", store.SessionKey{User: user, Game: "demo"})
			c := e.hello(user, "demo", "")
			text := relayBenchText(size)
			b.SetBytes(int64(len(text)))
			cpu0 := cpuTime()
			for b.Loop() {
				id := w.text(text)
				for c.next().ID != id {
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
