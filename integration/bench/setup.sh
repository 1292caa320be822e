#!/usr/bin/env bash
# Installs what the benchmarks use, where it is missing. Peers that still cannot be had are
# reported as skipped by the harness, never dropped silently.
# `--profile`: also what hotpath.py needs (make bench, not make bench-quick: a second release
# build and inferno cost minutes): strace, inferno-flamegraph, and a release build with the
# `alloc-count` feature at target/bench/ringside-alloc-count.
set -uo pipefail
cd "$(dirname "$0")/../.."
need=()
for t in wrk:wrk nginx:nginx haproxy:haproxy h2load:nghttp2-client taskset:util-linux; do
  command -v "${t%%:*}" >/dev/null || need+=("${t##*:}")
done
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
if ((${#need[@]})); then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null 2>&1 ||
    echo "bench setup: could not install ${need[*]}"
fi
mkdir -p target/tools target/go
[ -x target/tools/vegeta ] || GOBIN="$PWD/target/tools" go install github.com/tsenart/vegeta/v12@latest ||
  echo "bench setup: vegeta unavailable (mix and cost scenarios will be skipped)"
(cd examples && go build -o ../target/go/origin ./cmd/origin && go build -o ../target/go/baselineproxy ./cmd/baselineproxy)
if [ "${1:-}" = --profile ]; then
  command -v strace >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace) >/dev/null 2>&1 ||
    echo "bench setup: could not install strace (syscall counts will fail)"
  # inferno: folded stacks to a flame graph SVG (the pprof profile is folded by hotpath.py).
  [ -x target/tools/bin/inferno-flamegraph ] || cargo install -q --locked inferno --version 0.12.8 --root target/tools ||
    echo "bench setup: inferno unavailable (flame graphs will be skipped)"
  # Features are per build, and both stay cached: this one first, the plain one below last,
  # so target/release/ringside is the plain build.
  cargo build --release -q -p ringside --features alloc-count && mkdir -p target/bench &&
    cp target/release/ringside target/bench/ringside-alloc-count
fi
cargo build --release -q -p ringside
