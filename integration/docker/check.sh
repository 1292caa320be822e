#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine: runs its build steps (docker/build.sh, the
# script its RUN lines call) into a scratch root, then checks what the images would run.
#  - every RUN that builds calls docker/build.sh; ENTRYPOINT/CMD/USER are what the chart expects
#  - RUST_VERSION covers the highest rust-version in the Linux dependency graph of Cargo.lock
#  - the ringside binary runs (--version) and `ringside check` accepts the config the image
#    ships at the CMD's path; it needs only libraries distroless/cc has
#  - the origin binary is static (distroless/static has no libc) and serves /healthz
# The cargo build reuses target/release, so after `make release` this takes seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(mktemp -d)
trap 'kill "${origin_pid:-}" 2>/dev/null || true; rm -rf "$root"' EXIT
fail() { echo "docker check: FAIL: $*" >&2; exit 1; }

# 1. The Dockerfile's shape.
df=Dockerfile
grep -q '^FROM gcr.io/distroless/cc-debian12:nonroot AS ringside$' "$df" || fail "ringside stage is not distroless/cc nonroot"
[ "$(grep '^FROM ' "$df" | tail -1 | awk '{print $NF}')" = ringside ] || fail "the last (default) stage must be ringside"
builds=$(grep -c '^RUN .*docker/build.sh\|^    sh docker/build.sh' "$df")
[ "$builds" -eq 2 ] || fail "expected 2 RUN steps calling docker/build.sh, found $builds"
entry=$(sed -n '/AS ringside$/,$p' "$df" | grep '^ENTRYPOINT' | sed 's/^ENTRYPOINT //')
cmd=$(sed -n '/AS ringside$/,$p' "$df" | grep '^CMD' | sed 's/^CMD //')
user=$(sed -n '/AS ringside$/,$p' "$df" | grep '^USER' | awk '{print $2}')
[ "$entry" = '["/usr/local/bin/ringside"]' ] || fail "ENTRYPOINT is $entry"
[ "$cmd" = '["run", "-c", "/etc/ringside/ringside.yaml"]' ] || fail "CMD is $cmd"
[ "${user%%:*}" = 2102 ] || fail "USER is $user, the chart's runAsUser is 2102"
echo "docker check: Dockerfile: ENTRYPOINT $entry CMD $cmd USER $user"

# 2. The builder's Rust is new enough for every dependency.
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' "$df")
need=$(cargo metadata --format-version 1 --locked --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
  python3 -c '
import json, sys
d = json.load(sys.stdin)
ids = {n["id"] for n in d["resolve"]["nodes"]}
key = lambda v: tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])
vs = [p["rust_version"] for p in d["packages"] if p["id"] in ids and p.get("rust_version")]
print(max(vs, key=key))')
python3 -c "import sys; k=lambda v: tuple(int(x) for x in (v.split('.')+['0','0'])[:3]); sys.exit(k('$rust_version') < k('$need'))" ||
  fail "RUST_VERSION=$rust_version, but a dependency needs Rust $need"
echo "docker check: RUST_VERSION=$rust_version >= $need (highest rust-version in the dependency graph)"

# 3. The ringside stage's build step, then what ENTRYPOINT + CMD would run.
sh docker/build.sh ringside "$root/ringside"
bin="$root/ringside/usr/local/bin/ringside"
"$bin" --version
"$bin" check -c "$root/ringside/etc/ringside/ringside.yaml"
allowed='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libstdc\+\+\.so\.6|ld-linux-(x86-64|aarch64)\.so\.[12])$'
readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | while read -r lib; do
  [[ $lib =~ $allowed ]] || fail "ringside needs $lib, which distroless/cc-debian12 lacks"
done
echo "docker check: ringside links only libraries distroless/cc provides"

# 4. The example-origin stage's build step: static, and it serves.
sh docker/build.sh origin "$root/origin"
obin="$root/origin/usr/local/bin/origin"
! readelf -l "$obin" | grep -q INTERP || fail "origin is dynamically linked; distroless/static has no libc"
"$obin" -addr 127.0.0.1:0 -ready-file "$root/origin.addr" >/dev/null &
origin_pid=$!
for _ in $(seq 100); do [ -s "$root/origin.addr" ] && break; sleep 0.05; done
[ -s "$root/origin.addr" ] || fail "origin did not start"
[ "$(curl -fsS "http://$(cat "$root/origin.addr")/healthz")" = ok ] || fail "origin /healthz"
echo "docker check: origin is static and answers /healthz"
echo "docker check: ok"
