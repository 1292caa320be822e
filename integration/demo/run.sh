#!/usr/bin/env bash
# The README's first command (`make demo`): Go services behind Ringside on each runtime in
# turn, real traffic from wrk, and a side-by-side table. Everything it starts, it stops.
#
# Layout on a 2-core machine: the proxy alone on CPU 0 (one worker), wrk and the Go origin on
# CPU 1, so "proxy CPU per request" is the proxy's own cost.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DEMO_DURATION:-5}
CONNS=${DEMO_CONNS:-32}
ORIGIN_ADDR=127.0.0.1:18080
ORIGIN_V2_ADDR=127.0.0.1:18081
GRPC_ADDR=127.0.0.1:18082
PROXY_ADDR=127.0.0.1:14143
ADMIN_ADDR=127.0.0.1:19901
BIN=target/release/ringside
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

command -v wrk >/dev/null || { echo "demo needs wrk (apt-get install wrk)"; exit 1; }
[ -x "$BIN" ] || cargo build --release -p ringside
mkdir -p target/go
(cd examples && go build -o ../target/go/origin ./cmd/origin &&
  go build -o ../target/go/grpcserver ./cmd/grpcserver &&
  go build -o ../target/go/grpcclient ./cmd/grpcclient)

NCPU=$(nproc)
PROXY_CPU=0
LOAD_CPU=$((NCPU > 1 ? 1 : 0))

echo "== Starting the Go origin on $ORIGIN_ADDR"
taskset -c "$LOAD_CPU" target/go/origin -addr "$ORIGIN_ADDR" -name demo-app >/dev/null &
PIDS+=($!)
taskset -c "$LOAD_CPU" target/go/origin -addr "$ORIGIN_V2_ADDR" -name demo-app-v2 >/dev/null &
PIDS+=($!)
taskset -c "$LOAD_CPU" target/go/grpcserver -addr "$GRPC_ADDR" -name demo-grpc >/dev/null &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://$ORIGIN_ADDR/healthz" >/dev/null && break; sleep 0.05; done

echo "== What --runtime auto would pick here:"
"$BIN" probe | sed 's/^/   /'

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Converts a wrk latency like 1.23ms / 850.00us / 1.01s to microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
    else print v }'
}

ROWS=()
# run_load NAME URL PID(optional): drives wrk and records one table row.
run_load() {
  local name=$1 url=$2 pid=${3:-}
  local t0=0 out
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url")
  local rps p99 reqs cpu_us="-" rss="-"
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  if [ -n "$pid" ]; then
    local ticks=$(( $(cpu_ticks "$pid") - t0 ))
    cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    rss=$(rss_kib "$pid")
  fi
  ROWS+=("$(printf '| %-18s | %10.0f | %9.0f | %13s | %9s |' "$name" "$rps" "$p99" "$cpu_us" "$rss")")
  echo "   $name: $rps req/s"
}

echo "== Direct to the origin (no proxy), ${DURATION}s, $CONNS connections"
run_load direct "http://$ORIGIN_ADDR/"

# write_config CLUSTER: the demo's config, routing everything to CLUSTER.
write_config() {
  cat >"$WORK/ringside.yaml.tmp" <<EOF
admin: { address: $ADMIN_ADDR }
listeners:
  - name: inbound
    address: $PROXY_ADDR
    protocol: http
    routes:
      # gRPC (HTTP/2) and HTTP/1.1 on the same port: the listener detects the protocol.
      - name: grpc
        match: { path_prefix: /ringside.examples.Echo/ }
        backends: [ { cluster: grpc } ]
      - name: default
        match: { path_prefix: / }
        backends: [ { cluster: $1 } ]
clusters:
  - name: grpc
    protocol: http2
    endpoints: [ $GRPC_ADDR ]
  - name: app
    endpoints: [ $ORIGIN_ADDR ]
  - name: app-v2
    endpoints: [ $ORIGIN_V2_ADDR ]
EOF
  # An editor-style atomic save; Ringside also follows kubelet's ..data symlink swaps.
  mv "$WORK/ringside.yaml.tmp" "$WORK/ringside.yaml"
}

for rt in io-uring epoll; do
  write_config app
  echo "== Ringside --runtime $rt (1 worker, pinned to CPU $PROXY_CPU)"
  taskset -c "$PROXY_CPU" "$BIN" run -c "$WORK/ringside.yaml" --runtime "$rt" --workers 1 \
    --log-level warn 2>"$WORK/ringside-$rt.log" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -sf "http://$ADMIN_ADDR/ready" >/dev/null && break; sleep 0.05; done
  echo "   one request through it:"
  curl -si "http://$PROXY_ADDR/" | sed 's/^/     /' | tr -d '\r'
  echo "   the same over HTTP/2 (h2c prior knowledge):"
  curl -s --http2-prior-knowledge -o /dev/null -w '     HTTP/%{http_version} %{http_code}\n' "http://$PROXY_ADDR/"
  echo "   gRPC through it (grpc-go client -> Ringside -> grpc-go server):"
  for mode in unary error bidi; do
    target/go/grpcclient -addr "$PROXY_ADDR" -mode "$mode" -count 20 | sed 's/^/     /'
  done
  run_load "ringside-$rt" "http://$PROXY_ADDR/" "$pid"
  echo "   metrics (GET $ADMIN_ADDR/metrics):"
  curl -s "http://$ADMIN_ADDR/metrics" |
    grep -E '^ringside_(requests_total|runtime_info|downstream_connections_opened_total)' | sed 's/^/     /'
  echo "   hot reload: route / to cluster app-v2 by rewriting the config file"
  write_config app-v2
  for _ in $(seq 50); do
    body=$(curl -s "http://$PROXY_ADDR/")
    [ "$body" = "hello from demo-app-v2" ] && break
    sleep 0.05
  done
  echo "     now: $body"
  curl -s "http://$ADMIN_ADDR/metrics" | grep -E '^ringside_config_reloads_total' | sed 's/^/     /'
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "== Ringside --runtime split: io_uring and epoll workers side by side on one port"
write_config app
taskset -c "$PROXY_CPU" "$BIN" run -c "$WORK/ringside.yaml" --runtime split --workers 2 \
  --log-level warn 2>"$WORK/ringside-split.log" &
pid=$!
PIDS+=("$pid")
for _ in $(seq 100); do curl -sf "http://$ADMIN_ADDR/ready" >/dev/null && break; sleep 0.05; done
echo "   before any traffic:"
"$BIN" compare --admin "$ADMIN_ADDR" | sed 's/^/     /'
# The kernel spreads connections across the two workers' SO_REUSEPORT sockets; wrk's
# connections are kept alive, so each runtime serves about half of them for the whole run.
# The verdict needs 5 five-second intervals in which both runtimes served traffic.
SPLIT_DURATION=${DEMO_SPLIT_DURATION:-32}
echo "   wrk for ${SPLIT_DURATION}s ($CONNS connections), then \`ringside compare --admin $ADMIN_ADDR\`:"
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${SPLIT_DURATION}s" "http://$PROXY_ADDR/" >/dev/null
"$BIN" compare --admin "$ADMIN_ADDR" | sed 's/^/     /'
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "== Results (HTTP/1.1 keep-alive, ${DURATION}s each; proxy alone on one core)"
echo "| target             |      req/s |  p99 (µs) | proxy CPU µs/req | RSS (KiB) |"
echo "|--------------------|-----------:|----------:|--------------:|----------:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Benchmarks against the Go baseline proxy, nginx and HAProxy: see docs/benchmarks.md."
