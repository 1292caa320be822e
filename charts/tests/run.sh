#!/usr/bin/env bash
# `make chart-test`: everything the chart and the Dockerfile are checked with. Installs helm
# from its Go module into target/tools once (a couple of minutes the first time), reuses the
# release build, then: helm lint (strict, every ci values set), the Go tests in charts/tests
# (golden renders, strict decoding into Kubernetes types, semantics, `ringside check` on the
# rendered config), and the Dockerfile's build steps (integration/docker/check.sh).
# UPDATE_GOLDEN=1 rewrites charts/tests/golden/ instead of comparing.
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM_VERSION=v3.22.0
tools="$PWD/target/tools"
helm="$tools/helm"
if [ ! -x "$helm" ] || [ ! -e "$tools/.helm-$HELM_VERSION" ]; then
  echo "chart-test: installing helm $HELM_VERSION into target/tools (once)"
  mkdir -p "$tools"
  GOBIN="$tools" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  touch "$tools/.helm-$HELM_VERSION"
fi

cargo build --release -q -p ringside

"$helm" lint --strict charts/ringside
for f in charts/ringside/ci/*-values.yaml; do
  "$helm" lint --strict --quiet charts/ringside -f "$f" >/dev/null || {
    "$helm" lint --strict charts/ringside -f "$f"
    exit 1
  }
done
echo "chart-test: helm lint --strict passed with the defaults and $(ls charts/ringside/ci/*-values.yaml | wc -l) ci values sets"

(cd charts/tests && HELM="$helm" RINGSIDE_BIN="$PWD/../../target/release/ringside" go test -count=1 ./...)

bash integration/docker/check.sh
