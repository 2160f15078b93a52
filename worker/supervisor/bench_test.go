package supervisor_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/trellis-mud/trellis/worker/supervisor"
)

func idle(ctx context.Context, _ int, started *sync.WaitGroup) error {
	if started != nil {
		started.Done()
	}
	<-ctx.Done()
	return ctx.Err()
}

// BenchmarkStartTerminate starts a child and terminates it, one at a time:
// the full life of a session that attaches and leaves.
func BenchmarkStartTerminate(b *testing.B) {
	sup := supervisor.NewTyped(supervisor.Template[int, *sync.WaitGroup]{Run: idle},
		supervisor.Options{Logger: discard()})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := sup.StartChild(i, nil); err != nil {
			b.Fatal(err)
		}
		if err := sup.Terminate(ctx, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "children/s")
}

// BenchmarkStartTerminateParallel is the same from many goroutines at once,
// as a worker's control loop and its session ends contend.
func BenchmarkStartTerminateParallel(b *testing.B) {
	sup := supervisor.NewTyped(supervisor.Template[int, *sync.WaitGroup]{Run: idle},
		supervisor.Options{Logger: discard()})
	ctx := context.Background()
	var (
		mu   sync.Mutex
		next int
	)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			key := next
			next++
			mu.Unlock()
			if _, err := sup.StartChild(key, nil); err != nil {
				b.Error(err)
				return
			}
			if err := sup.Terminate(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "children/s")
}

// BenchmarkIdleChildMemory measures the memory one idle child costs the
// supervisor: its goroutine's stack, and on the heap its goroutine, context
// and entry. The child body here holds nothing of its own and stays
// shallow; a real body's own allocations and deeper stack come on top.
func BenchmarkIdleChildMemory(b *testing.B) {
	const n = 10_000
	var heap, stack float64
	for b.Loop() {
		sup := supervisor.NewTyped(supervisor.Template[int, *sync.WaitGroup]{Run: idle},
			supervisor.Options{Logger: discard(), MaxChildren: n})
		var started sync.WaitGroup
		started.Add(n)
		before := memStats()
		for i := range n {
			if _, err := sup.StartChild(i, &started); err != nil {
				b.Fatal(err)
			}
		}
		started.Wait()
		after := memStats()
		heap = float64(after.HeapAlloc-before.HeapAlloc) / n
		stack = float64(after.StackInuse-before.StackInuse) / n
		if err := sup.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(heap, "heap-B/child")
	b.ReportMetric(stack, "stack-B/child")
	b.ReportMetric(heap+stack, "B/child")
}

func memStats() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
