# obdgw — build, test and release targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
PKG := github.com/obdgw/obdgw
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X $(PKG)/firmware/version.Version=$(VERSION) -X $(PKG)/firmware/version.Commit=$(COMMIT)
BIN := bin

.PHONY: help build test test-short test-unit test-cross fuzz-short cross deb bench lint demo chaos chaos-pg fleet clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/obdgw for this machine
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/obdgw ./gateway/cmd/obdgw

demo: ## run the simulated workshop (obdgw demo)
	$(GO) run ./gateway/cmd/obdgw demo

test: ## every test: unit, integration (pty, mosquitto, chromium), 386 and qemu-arm runs, short fuzz
	hack/test.sh

test-short: ## the inner loop: `go test -short ./...` skips the pty, broker, browser and binary tiers
	$(GO) test -short -count=1 ./...

test-unit: ## only `go test ./...`
	$(GO) test -count=1 ./...

cross: ## static binaries for linux arm64, armv7, armv6 (and amd64) in bin/
	@set -e; for t in arm64: arm:7 arm:6 amd64:; do \
	  arch=$${t%%:*}; arm=$${t##*:}; out=$(BIN)/obdgw-linux-$$arch$${arm:+v$$arm}; \
	  echo "build $$out"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./gateway/cmd/obdgw; \
	done

deb: ## Debian packages for arm64, armhf (ARMv7), armel (ARMv6) and amd64 in dist/
	hack/deb.sh

bench: ## benchmarks with ratios against their baselines (figures go in README)
	hack/bench.sh

lint: ## gofmt, go vet and the import-rule test
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed (run: gofmt -w $$out)"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run TestImportRules ./hack/deptest

chaos: ## kill broker and gateway at random while 10,000 records flow; prints lost/dup/reordered
	hack/chaos.sh

chaos-pg: ## 3 receivers on one PostgreSQL, killed at random with the broker while 2,000 records flow
	$(GO) test -tags chaos -run '^TestChaosPostgres$$' -count=1 -v -timeout 20m ./cloud/pgstore/

fleet: ## 2,000 simulated gateways, 2 receivers, a 60 s broker outage: records/s, latency, reconnect storm
	hack/fleet.sh

clean: ## remove build output
	rm -rf $(BIN) dist
