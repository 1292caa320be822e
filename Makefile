# The two commands the README promises: `make demo` and `make test`.
SHELL := /bin/bash
CARGO_FEATURES := --features ringside/test-hooks

.PHONY: demo test lint go-test rust-test build release bench bench-profile bench-routes bench-quick chart-test fuzz-smoke

## demo: a Go service behind Ringside on both runtimes: traffic, metrics and a hot reload
demo: release
	bash integration/demo/run.sh

## test: every check CI runs (formatting, lints, Go tests, Rust unit and end-to-end tests,
## the benchmark harness as a smoke run, the Helm chart and Dockerfile checks, and a short
## run of every fuzz target)
test: lint go-test rust-test bench-quick chart-test fuzz-smoke
	@bash integration/skips.sh

lint:
	python3 tools/layout_check.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(CARGO_FEATURES) -- -D warnings
	cd examples && test -z "$$(gofmt -l .)" && go vet ./...
	cd charts/tests && test -z "$$(gofmt -l .)" && go vet ./...

go-test:
	cd examples && go test ./...

# Skipped io_uring tests are listed in target/io_uring-skipped.txt (printed by `make test`
# at the end, by integration/skips.sh): start each run with an empty list.
# The SPIFFE tests run a real SPIRE server and agent, built once from integration/spire/go.mod
# into target/tools/spire (cold: minutes; then a stamp skips it).
rust-test:
	rm -f $${CARGO_TARGET_DIR:-target}/io_uring-skipped.txt
	bash integration/spire/build.sh >/dev/null
	cargo test --workspace $(CARGO_FEATURES) -- --test-threads 2
	@bash integration/skips.sh

build:
	cargo build --workspace $(CARGO_FEATURES)

release:
	cargo build --release -p ringside

## bench: every scenario against Ringside (both runtimes), the Go baseline, nginx and HAProxy,
## then where the time goes (bench-profile)
bench:
	bash integration/bench/setup.sh --profile
	python3 integration/bench/bench.py
	python3 integration/bench/hotpath.py

## bench-profile: syscalls, io_uring operations and heap allocations per request (Ringside on
## both runtimes and nginx), and CPU flame graphs into docs/bench/ (~4 min)
bench-profile:
	bash integration/bench/setup.sh --profile
	python3 integration/bench/hotpath.py

## bench-split: the production mix through `ringside run --runtime split` (an io_uring and an
## epoll worker on one port) for BENCH_SPLIT_MINUTES (default 3), then `ringside compare`
bench-split: release
	bash integration/bench/setup.sh
	python3 integration/bench/split.py --minutes $${BENCH_SPLIT_MINUTES:-3}

## bench-routes: does a request cost more at 10,000 routes than at one? CPU per request with
## the sizes interleaved (5 rounds), and user-space instructions per request under callgrind
## (valgrind) at 1, 100, 1,000 and 10,000 routes, both runtimes (~15 min)
bench-routes: release
	bash integration/bench/setup.sh
	python3 integration/bench/routecost.py

## bench-quick: the harness's unit tests (validity rules, spreads, intended-time latency), then
## the harness as a smoke run (under 90 s); CI runs it, with no thresholds on the figures
bench-quick:
	python3 -m unittest discover -s integration/bench -p 'test_*.py'
	bash integration/bench/setup.sh
	python3 integration/bench/bench.py --quick

## fuzz-smoke: every cargo-fuzz target (fuzz/) replays its committed corpus, then mutates for
## FUZZ_SECONDS each; a crash fails it. Needs cargo-fuzz (.ci/run installs it). Longer runs:
## docs/fuzzing.md.
FUZZ_SECONDS ?= 6
fuzz-smoke:
	FUZZ_FRESH=1 bash fuzz/run.sh $(FUZZ_SECONDS)

## chart-test: helm lint, golden renders, strict Kubernetes decoding and semantics of the chart,
## `ringside check` on its rendered config, install/upgrade/rollback/uninstall of every values
## set into a real kube-apiserver + controller-manager (built once from a pinned Go module into
## target/tools/k8s), and the Dockerfile's build steps (no Docker needed).
## UPDATE_GOLDEN=1 make chart-test rewrites charts/tests/golden/.
chart-test:
	bash charts/tests/run.sh
