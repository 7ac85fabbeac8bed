# socialhub — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/socialhub
PKGS  := ./...
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X socialhub/internal/hub.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## install what the hub needs: Go modules, PostgreSQL server binaries (apt-get, as root)
	@command -v $(GO) >/dev/null || { echo "Go is not installed: get it from https://go.dev/dl/ (the version in go.mod)"; exit 1; }
	@$(GO) mod download
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "PostgreSQL server binaries missing: installing with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else \
			echo "PostgreSQL server binaries (initdb, pg_ctl) are missing."; \
			echo "Install them: 'sudo apt-get install postgresql' (Debian/Ubuntu), 'brew install postgresql' (macOS),"; \
			echo "or point the hub at a server: DATABASE_URL=postgres://... and tests at SOCIALHUB_TEST_DATABASE_URL=postgres://..."; \
			exit 1; \
		fi; \
	fi

.PHONY: setup-browser
setup-browser: ## install Chromium for the browser tests of the navigator and the console (apt-get, as root)
	@if ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Chromium missing (the browser tests of the navigator and the console): installing with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium is missing (browser tests): 'sudo apt-get install chromium' (Debian/Ubuntu), or put it on PATH."; \
			exit 1; \
		fi; \
	fi

.PHONY: build
build: setup ## build bin/socialhub
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/socialhub

.PHONY: run
run: build ## run the hub on embedded defaults with demo data (API on http://127.0.0.1:8080)
	./$(BIN) run --demo --data-dir data

.PHONY: test
test: setup setup-browser ## run every test (real PostgreSQL and in-process Kafka; no services needed)
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 9m $(PKGS)

.PHONY: bench
bench: setup ## end-to-end benchmark against PostgreSQL COPY (sizes: BENCH_FLAGS), then every package's benchmarks
	$(GO) run ./cmd/socialhub bench --out bench.json --cpuprofile bench.prof $(BENCH_FLAGS)
	$(GO) tool pprof -top -nodecount=25 bench.prof | head -35
	$(GO) test -run '^$$' -bench . -benchmem -timeout 20m $(PKGS)

.PHONY: faults
faults: setup ## fault injection at full size: broker and hub restarts, poison, duplicates, rebalances, kill -9, scale-out
	SOCIALHUB_FAULTS_ROWS=$${SOCIALHUB_FAULTS_ROWS:-5000} $(GO) test -count=1 -timeout 30m -v ./internal/faults
	SOCIALHUB_SCALEOUT_ROWS=$${SOCIALHUB_SCALEOUT_ROWS:-40000} $(GO) test -count=1 -timeout 30m -v -run 'TestScaleOut|TestKillNineMidLoad' ./cmd/socialhub

.PHONY: eval
eval: setup ## entity resolution on the generator's overlapping sources: precision, recall, F1, review queue
	$(GO) test -count=1 -v -run TestEval ./internal/match

.PHONY: fuzz
fuzz: setup ## run every fuzz target for FUZZTIME each (default 10s)
	FUZZTIME=$${FUZZTIME:-10s} ./scripts/fuzz.sh

.PHONY: lint
lint: setup ## vet and check formatting
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: clean
clean: ## remove the binary and the local data directory
	rm -rf bin data
