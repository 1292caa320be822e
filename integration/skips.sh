#!/usr/bin/env bash
# Prints, at the end of `make test`, every io_uring test that was skipped (run with
# RINGSIDE_ALLOW_NO_IO_URING=1 on a host without io_uring), so a skip is seen in the summary
# and in CI logs rather than only in libtest's captured output. Exits 0: the skips were
# accepted explicitly; without that variable the tests fail instead of skipping.
set -euo pipefail
file="${RINGSIDE_SKIP_FILE:-${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/io_uring-skipped.txt}"
if [[ ! -s "$file" ]]; then
  echo "io_uring: every io_uring test ran (none skipped)"
  exit 0
fi
n=$(sort -u "$file" | wc -l)
echo
echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
echo "!!! $n io_uring tests were SKIPPED (RINGSIDE_ALLOW_NO_IO_URING=1, no io_uring here):"
sort -u "$file" | sed 's/^/!!!   /'
echo "!!! Only the epoll runtime was tested on this host."
echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  { echo "### $n io_uring tests skipped (no io_uring on the runner)"; sort -u "$file" | sed 's/^/- /'; } >>"$GITHUB_STEP_SUMMARY"
fi
