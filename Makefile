# The commands of ocis. `make run` and `make test` are the two a newcomer needs.
GO      ?= go
BIN     := bin/ocis
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION := $(shell git describe --tags --always 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test bench bench-short lint verify-unit docs

## build: the ocis binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ocis

## run: build and start `ocis server` with the embedded defaults (Ctrl-C stops it)
run: build
	./$(BIN) server

## test: vet, then every test with the race detector. Packages run one at a
## time (-p 1): several start real servers and NATS clusters, and the timing
## tests (the login flood, node loss) must not share 2 CPUs with another's.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 30m ./...

## bench: every figure of docs/benchmarks.md, each a ratio against a baseline
## measured in the same run, with min/median/max and PASS/MISS (about 8
## minutes on 2 CPUs; figures taken while `uptime` shows a load above ~0.5
## are noise). BENCH_FLAGS=-short, or `make bench-short`, checks the harness
## in about 2 minutes.
BENCH_FLAGS ?=
bench:
	@uptime
	$(GO) run ./bench/overhead $(BENCH_FLAGS)
	$(GO) run ./bench/runtime $(BENCH_FLAGS)
	$(GO) run ./bench/proxy $(BENCH_FLAGS)
	$(GO) run ./bench/tracing $(BENCH_FLAGS)
	$(GO) run ./bench/nodeloss $(BENCH_FLAGS)
	$(GO) run ./bench/events $(BENCH_FLAGS)
	@uptime

## bench-short: the same benchmarks in short runs, to check them, not to quote
bench-short:
	$(MAKE) bench BENCH_FLAGS=-short

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt would change the files above"; exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...

## verify-unit: systemd-analyze verify on deploy/systemd/ocis.service, with
## bin/ocis as its ExecStart; any complaint fails (needs systemd-analyze)
verify-unit: build
	@tmp=$$(mktemp -d) && sed "s#/usr/local/bin/ocis#$(CURDIR)/$(BIN)#" deploy/systemd/ocis.service > $$tmp/ocis.service && \
	out=$$(systemd-analyze verify $$tmp/ocis.service 2>&1); rc=$$?; rm -rf $$tmp; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "deploy/systemd/ocis.service: verified"

## docs: regenerate docs/configuration.md from the flag definitions
docs:
	$(GO) generate ./cmd/ocis
