// Package metrics holds the Prometheus helpers every component's metrics
// share: counters whose label values are listed up front (exported at 0,
// and checked when counted) and trellis_build_info.
package metrics
