#!/usr/bin/env bash
# Builds h2spec (the HTTP/2 conformance tester) from the module pinned beside this script into
# target/tools/h2spec, and prints its path. Idempotent: an existing binary is kept unless
# --force is given. Needs Go and the Go module proxy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${CARGO_TARGET_DIR:-$root/target}/tools/h2spec"
if [[ -x "$out" && "${1:-}" != "--force" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
(cd "$here" && go build -o "$out.tmp" github.com/summerwind/h2spec/cmd/h2spec)
mv "$out.tmp" "$out"
echo "$out"
