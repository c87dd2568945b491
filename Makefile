# The commands of ocis. `make run` and `make test` are the two a newcomer needs.
GO      ?= go
BIN     := bin/ocis
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION := $(shell git describe --tags --always 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test bench lint

## build: the ocis binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ocis

## run: build and start `ocis server` with the embedded defaults (Ctrl-C stops it)
run: build
	./$(BIN) server

## test: vet, then every test with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: measured figures, each against a baseline run in the same invocation
bench:
	$(GO) run ./bench/overhead
	$(GO) run ./bench/runtime
	$(GO) run ./bench/proxy

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt would change the files above"; exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...
