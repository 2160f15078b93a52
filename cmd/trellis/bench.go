package main

import (
	"context"
	"fmt"
)

func runBench(ctx context.Context, args []string) error {
	return fmt.Errorf("not built yet: see issue 'trellis bench' (use `make bench` for the Go micro-benchmarks)")
}
