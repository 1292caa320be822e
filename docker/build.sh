#!/bin/sh
# The build steps of the Dockerfile's stages, kept here so integration/docker/check.sh can run
# exactly the same steps outside Docker (no Docker engine in CI).
#   docker/build.sh ringside DEST   release build of -p ringside -> DEST/usr/local/bin/ringside,
#                                   plus the example config as DEST/etc/ringside/ringside.yaml
#   docker/build.sh origin DEST     the Go example service -> DEST/usr/local/bin/origin (static)
# Run from the repository root.
set -eu
what=${1:?usage: docker/build.sh ringside|origin DEST}
dest=${2:?usage: docker/build.sh ringside|origin DEST}
case "$what" in
ringside)
  cargo build --release --locked -p ringside
  install -D -m 0755 "${CARGO_TARGET_DIR:-target}/release/ringside" "$dest/usr/local/bin/ringside"
  install -D -m 0644 examples/configs/ringside.yaml "$dest/etc/ringside/ringside.yaml"
  ;;
origin)
  (cd examples && CGO_ENABLED=0 go build -trimpath -o "$dest/usr/local/bin/origin" ./cmd/origin)
  ;;
*)
  echo "docker/build.sh: unknown target $what" >&2
  exit 2
  ;;
esac
