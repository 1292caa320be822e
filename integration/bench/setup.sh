#!/usr/bin/env bash
# Installs what the benchmarks use, where it is missing. Peers that still cannot be had are
# reported as skipped by the harness, never dropped silently.
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
cargo build --release -q -p ringside
