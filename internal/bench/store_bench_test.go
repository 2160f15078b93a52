package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/redistest"
	"github.com/trellis-mud/trellis/store"
)

// Micro-benchmarks of the store calls on the hot paths, against a real
// redis-server. They complement store's own (acquire/release, renewal of
// 100 leases) at the sizes the worker and edge use.

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	srv := redistest.New(b, redistest.Options{})
	st := store.New(srv.Client(b))
	return st
}

// leased acquires the lease of n sessions and returns their keys and
// leases, so appends pass the fence check as the worker's do.
func leased(b *testing.B, st *store.Store, n int) ([]store.SessionKey, []store.Lease) {
	b.Helper()
	keys := make([]store.SessionKey, n)
	leases := make([]store.Lease, n)
	for i := range n {
		keys[i] = store.SessionKey{User: fmt.Sprintf("u%d", i), Game: "bench"}
		l, err := st.AcquireLease(b.Context(), keys[i], "w", "s", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		leases[i] = l
	}
	return keys, leases
}

// BenchmarkAppendOutputs is one flusher round trip: 64 sessions with one
// 80-byte line each, appended and published in one pipeline.
func BenchmarkAppendOutputs(b *testing.B) {
	st := benchStore(b)
	keys, leases := leased(b, st, 64)
	batch := make([]store.Append, len(keys))
	text := strings.Repeat("x", 78) + "\n"
	for i := range batch {
		batch[i] = store.Append{Key: keys[i], Out: store.Output{Kind: store.OutText, Text: text, Fence: leases[i].Fence}}
	}
	b.SetBytes(int64(len(batch) * len(text)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := st.AppendOutputs(b.Context(), batch)
		if err != nil {
			b.Fatal(err)
		}
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkReadOutput is a resume: the 100 entries after a browser's last
// id, read and decoded.
func BenchmarkReadOutput(b *testing.B) {
	st := benchStore(b)
	keys, leases := leased(b, st, 1)
	text := strings.Repeat("y", 78) + "\n"
	var resume string
	for i := range 200 {
		id, err := st.AppendOutput(b.Context(), keys[0], store.Output{Kind: store.OutText, Text: text, Fence: leases[0].Fence})
		if err != nil {
			b.Fatal(err)
		}
		if i == 99 {
			resume = id
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		entries, gap, err := st.ReadOutput(b.Context(), keys[0], resume, 1000)
		if err != nil || gap || len(entries) != 100 {
			b.Fatalf("read %d entries, gap %v, err %v", len(entries), gap, err)
		}
	}
}

// BenchmarkRenewLeases1000 is one renewal round of a worker holding 1,000
// sessions.
func BenchmarkRenewLeases1000(b *testing.B) {
	st := benchStore(b)
	_, leases := leased(b, st, 1000)
	b.ReportAllocs()
	for b.Loop() {
		r, err := st.RenewLeases(b.Context(), leases, time.Hour, 0)
		if err != nil || len(r.Lost) > 0 {
			b.Fatalf("lost %d, err %v", len(r.Lost), err)
		}
	}
}
