# spemigrate: the commands a developer and CI run.
GO ?= go
TEST_TIMEOUT ?= 15m

.PHONY: all build package test test-short vet bench chaos dev demo tools clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# The deployment zip azd deploys (azure.yaml dist): host.json, one folder
# per handlers/*/function.json, and the handler built for linux/amd64
# (CGO_ENABLED=0) with its run bit at host.json's defaultExecutablePath.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
package:
	$(GO) run ./cmd/funcpackage -o build/functionapp.zip -version $(VERSION)

# Node tools (Azurite, rhea) pinned by infra/local/package-lock.json.
tools:
	cd infra/local && npm ci --no-audit --no-fund --loglevel=error

# The full suite. Integration tests start the local stack themselves
# (infra/local/stack) and stop it when they finish.
test: tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Measure against the limits of docs/benchmarks.md and print one table (the
# local stack installs its Node tools itself). BENCH_FLAGS: -write=FILE also
# records it (docs/benchmarks.md), -only=1,3 picks figures, -short is a
# quick check of the driver, -v logs progress.
bench:
	$(GO) run ./cmd/benchreport $(BENCH_FLAGS)

# The chaos suite (docs/reliability.md): CHAOS_FILES files through the whole
# local stack under handler kills, Graph 429/503, Service Bus and Azurite
# restarts and duplicate delivery, then every invariant and the secret scan.
# It prints one "chaos figures:" line; CHAOS_SEED=<seed it printed> replays
# a run. `make test` runs the same test with 150 files.
CHAOS_FILES ?= 1000
CHAOS_SEED ?=
chaos: tools
	CHAOS_FILES=$(CHAOS_FILES) CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -v -run '^TestChaos$$' -timeout 40m ./e2e/chaos/

# Start the local stack and keep it running until Ctrl-C.
dev: tools
	$(GO) run ./cmd/spemigrate dev

demo: tools
	$(GO) run ./cmd/spemigrate demo

clean:
	rm -rf bin build
