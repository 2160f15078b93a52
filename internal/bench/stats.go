package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Latencies is a set of measured durations. Percentiles are exact: the
// samples are sorted, not bucketed, because a benchmark run holds at most a
// few hundred thousand of them and a histogram's bucket error would be of
// the same order as the differences being measured.
type Latencies []time.Duration

// Summary is the distribution of a set of latencies.
type Summary struct {
	N    int           `json:"n"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Summarize sorts l in place and returns its distribution. An empty set
// gives the zero Summary.
func (l Latencies) Summarize() Summary {
	if len(l) == 0 {
		return Summary{}
	}
	slices.Sort(l)
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return Summary{
		N:    len(l),
		Mean: sum / time.Duration(len(l)),
		P50:  l.percentile(50),
		P90:  l.percentile(90),
		P99:  l.percentile(99),
		P999: l.percentile(99.9),
		Max:  l[len(l)-1],
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of l, which must be
// sorted, by the nearest-rank method: the smallest sample such that at
// least p% of the samples are at or below it. Nearest rank never invents a
// value that was not measured, which matters for the tail: p99.9 of 500
// samples is honestly the maximum.
func (l Latencies) Percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l.percentile(p)
}

func (l Latencies) percentile(p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(l))/100 - 1e-9)) // epsilon: 99.9*1000/100 is not exact
	rank = max(1, min(rank, len(l)))
	return l[rank-1]
}

// String prints the summary in milliseconds, the unit the targets use.
func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max), s.N)
}

// ms formats d in milliseconds with three significant decimals, e.g. "0.412ms".
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// ratio is a/b, or NaN when there is nothing to compare against. NaN is
// encoded as null in JSON and printed as "-" in tables.
func ratio(a, b float64) Ratio {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return Ratio(math.NaN())
	}
	return Ratio(a / b)
}

// noRatio marks a figure that has no baseline to compare with.
var noRatio = Ratio(math.NaN())

// Ratio is how many times a baseline's figure a measurement is.
type Ratio float64

// Valid reports whether the ratio was computable.
func (r Ratio) Valid() bool { return !math.IsNaN(float64(r)) && !math.IsInf(float64(r), 0) }

func (r Ratio) String() string {
	if !r.Valid() {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(r))
}

// MarshalJSON writes an unavailable ratio as null.
func (r Ratio) MarshalJSON() ([]byte, error) {
	if !r.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(math.Round(float64(r)*1000) / 1000)
}
