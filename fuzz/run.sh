#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while: `make fuzz-smoke` (CI: a short run of
# every target), or longer by hand (docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      default: 8 s, every target
#
# Each target starts from its committed corpus (fuzz/corpus/TARGET: seeds and regression
# inputs) and what earlier runs found (fuzz/work/TARGET, not committed), replays all of it,
# then mutates for the time given; new inputs go to fuzz/work/TARGET, so a run never changes
# the committed corpus. FUZZ_FRESH=1 (make fuzz-smoke) starts from the committed corpus only,
# as CI does, and keeps nothing. A crash is saved under fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-8}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi
# libFuzzer needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
# No sanitizer: the data plane forbids unsafe code and ASan would double the build and
# halve the speed; debug assertions catch arithmetic overflow.
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions)
start=$(date +%s)
cargo fuzz build "${flags[@]}"
built=$(date +%s)
echo "fuzz: targets built in $((built - start)) s"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin=target/$triple/release
status=0
work=work
if [[ ${FUZZ_FRESH:-} == 1 ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "artifacts/$t"
  log=$(mktemp)
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: one using 2 GiB is a leak.
  if "$bin/$t" "$work/$t" "corpus/$t" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t: ok, $runs executions, $cov"
  else
    echo "fuzz: $t: FAILED (input saved under fuzz/artifacts/$t/)"
    tail -40 "$log"
    status=1
  fi
  rm -f "$log"
done
echo "fuzz: done in $(($(date +%s) - start)) s"
exit $status
