#!/usr/bin/env bash
# Builds spire-server and spire-agent from the versions integration/spire/go.mod pins into
# target/tools/spire, once: the SPIFFE tests (integration/tests/spiffe.rs) run a real SPIRE
# server and agent. Cold: a few minutes (the Go module cache and build cache make a rebuild
# short); then a stamp named after go.sum skips it. Prints the binaries' directory.
set -euo pipefail
cd "$(dirname "$0")"
target=${CARGO_TARGET_DIR:-$PWD/../../target}
mkdir -p "$target/tools/spire"
out=$(cd "$target/tools/spire" && pwd)
version=$(go list -m -f '{{.Version}}' github.com/spiffe/spire)
stamp="$out/.built-$version-$(sha256sum go.sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  echo "spire: building spire-server and spire-agent $version into $out (once)" >&2
  start=$(date +%s)
  rm -rf "$out" && mkdir -p "$out"
  # cgo stays on: SPIRE's SQLite datastore is the cgo driver.
  go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/" \
    github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent >&2
  touch "$stamp"
  echo "spire: built in $(($(date +%s) - start)) s" >&2
fi
echo "$out"
