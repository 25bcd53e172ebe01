# `make run ARGS="..."` passes ARGS to wscad; `make test ARGS="-run Foo ./device/..."`
# passes ARGS to go test (see scripts/test.sh).
ARGS ?=

# The version both commands report (wsca version, wscad --version, /healthz):
# git describe of this checkout, or VERSION=… from the caller. A plain
# `go build` leaves it empty and the commands fall back to the build info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all run test bench perf fuzz build lint clean

all: build

run:
	./scripts/run.sh $(ARGS)

test:
	./scripts/test.sh $(ARGS)

bench:
	./scripts/bench.sh $(ARGS)

# Server CPU per operation against a throwaway wscad, with profiles (docs/benchmarks.md, issue 6).
perf:
	./scripts/perf.sh

fuzz:
	./scripts/fuzz.sh $(ARGS)

build:
	mkdir -p bin
	go build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# gofmt -l, go vet, and staticcheck when installed (scripts/test.sh installs a pinned one).
lint:
	@bash -c '. scripts/lib.sh && if wsca_lint; then echo "lint: OK"; else echo "lint: FAIL ($$WSCA_LINT_FAILED)"; exit 1; fi'

clean:
	rm -rf bin/ bench.txt perf.txt
