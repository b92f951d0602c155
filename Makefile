# Sluice build, test and demo entry points. `make test` is what CI runs
# (.ci/run); `make demo` starts a throwaway PostgreSQL + Redis + Sluice.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The CI machine has 2 cores; two test binaries at a time keeps the
# integration suite (real processes) from starving the unit tests.
TEST_PARALLEL ?= 2
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 20s

.PHONY: all build test test-race unit integration fuzz bench lint demo demo-stop clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sluice ./cmd/sluice

# test starts the test PostgreSQL + Redis (installing them if missing), runs
# every test with SLUICE_TEST_REQUIRED=1 (a missing server fails instead of
# skipping) and a bounded fuzz run of the client message reader. The test
# servers it started are stopped at the end, even on failure; servers that
# were already running (.testenv/env present) are left alone.
test:
	@set -euo pipefail; \
	if [ -f .testenv/env ]; then keep=1; else keep=; fi; \
	trap '[ -n "$$keep" ] || bash scripts/testenv.sh stop' EXIT; \
	bash scripts/testenv.sh start; \
	source .testenv/env; \
	export SLUICE_TEST_REQUIRED=1; \
	echo "== go test ./... (-p $(TEST_PARALLEL), timeout $(TEST_TIMEOUT))"; \
	$(GO) test -p $(TEST_PARALLEL) -count=1 -timeout $(TEST_TIMEOUT) ./...; \
	echo "== fuzz FuzzClientReader for $(FUZZTIME)"; \
	$(GO) test ./proxy -run '^$$' -fuzz '^FuzzClientReader$$' -fuzztime $(FUZZTIME)

# test-race is test with the race detector in the test binaries and in the
# sluice processes the integration tests start (SLUICE_TEST_RACE=1); a race
# reported by sluice fails the test that started it.
test-race:
	@set -euo pipefail; \
	if [ -f .testenv/env ]; then keep=1; else keep=; fi; \
	trap '[ -n "$$keep" ] || bash scripts/testenv.sh stop' EXIT; \
	bash scripts/testenv.sh start; \
	source .testenv/env; \
	export SLUICE_TEST_REQUIRED=1 SLUICE_TEST_RACE=1; \
	$(GO) test -race -p $(TEST_PARALLEL) -count=1 -timeout $(TEST_TIMEOUT) ./...

# unit runs the tests that need no servers (the others skip).
unit:
	$(GO) test -count=1 ./...

integration:
	@set -euo pipefail; \
	bash scripts/testenv.sh start; \
	source .testenv/env; \
	SLUICE_TEST_REQUIRED=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./integration/

fuzz:
	$(GO) test ./proxy -run '^$$' -fuzz '^FuzzClientReader$$' -fuzztime $(FUZZTIME)

bench:
	@if [ -x bench/run.sh ] || [ -f bench/run.sh ]; then \
		bash bench/run.sh; \
	else \
		$(GO) test ./proxy -run '^$$' -bench . -benchmem; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build
	bash scripts/demo.sh

demo-stop:
	bash scripts/demo.sh stop

clean:
	rm -rf bin
