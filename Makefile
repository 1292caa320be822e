# The two commands the README promises: `make demo` and `make test`.
SHELL := /bin/bash
CARGO_FEATURES := --features ringside/test-hooks

.PHONY: demo test lint go-test rust-test build release bench bench-quick

## demo: a Go service behind Ringside on both runtimes: traffic, metrics and a hot reload
demo: release
	bash integration/demo/run.sh

## test: every check CI runs (formatting, lints, Go tests, Rust unit and end-to-end tests,
## and the benchmark harness as a smoke run)
test: lint go-test rust-test bench-quick

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(CARGO_FEATURES) -- -D warnings
	cd examples && test -z "$$(gofmt -l .)" && go vet ./...

go-test:
	cd examples && go test ./...

rust-test:
	cargo test --workspace $(CARGO_FEATURES) -- --test-threads 2

build:
	cargo build --workspace $(CARGO_FEATURES)

release:
	cargo build --release -p ringside

## bench: every scenario against Ringside (both runtimes), the Go baseline, nginx and HAProxy
bench:
	bash integration/bench/setup.sh
	python3 integration/bench/bench.py

## bench-quick: the same harness as a smoke run (under 90 s); CI runs it, with no thresholds
bench-quick:
	bash integration/bench/setup.sh
	python3 integration/bench/bench.py --quick
