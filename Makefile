# Trellis. The two commands a newcomer needs: `make run` and `make test`.

GO        ?= go
BIN       := bin/trellis
PKGS      := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-go test-cluster test-node run bench bench-deps bench-go lint deps fuzz manifests clean

all: build

## build: compile the one binary into bin/trellis
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/trellis

## deps: install redis-server and chromium from apt when missing
deps:
	@./scripts/deps.sh

## test: deps, then every Go test with the race detector, the Redis-backed suites again on a local Redis Cluster, then the browser client's unit tests
test: deps test-go test-cluster test-node

test-go:
	$(GO) test -race -timeout 20m $(PKGS)

# The suites that talk to Redis, run again on a local 3+3 cluster (each test
# in a namespace of its own; see internal/redistest.ModeEnv).
CLUSTER_PKGS := ./store/ ./controller/ ./edge/ ./worker/ ./internal/console/ ./internal/e2e/ ./cmd/trellis/
test-cluster:
	TRELLIS_TEST_REDIS=cluster $(GO) test -race -timeout 20m $(CLUSTER_PKGS)

test-node:
	node --test edge/web/test/*.test.mjs

## run: the whole system in one process (embedded Redis, demo game, worker, edge)
run: build
	./$(BIN) dev

## bench: Go micro-benchmarks, then the end-to-end load generator on the stack as separate processes; prints every target MET/MISS
bench: build bench-deps bench-go
	./$(BIN) bench --quick --procs

bench-deps:
	@./scripts/deps.sh bench

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./worker/telnet/ ./worker/supervisor/ ./store/ ./internal/ansi/ ./internal/bench/

## fuzz: the telnet decoder's fuzz targets (whole input, MCCP2 in bounded slices, MSDP) and the MXP decoder's, two minutes each
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime 2m ./worker/telnet/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSlice$$' -fuzztime 2m ./worker/telnet/
	$(GO) test -run '^$$' -fuzz '^FuzzMSDP$$' -fuzztime 2m ./worker/telnet/
	$(GO) test -run '^$$' -fuzz '^FuzzMXP$$' -fuzztime 2m ./worker/mxp/

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## manifests: render every kustomize overlay (needs the Go module proxy)
manifests:
	./deploy/check.sh

clean:
	rm -rf bin
