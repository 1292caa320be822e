#!/usr/bin/env bash
# `make chart-test`: everything the chart and the Dockerfile are checked with. Installs helm
# from its Go module into target/tools once (a couple of minutes the first time), reuses the
# release build, builds the test control plane into target/tools/k8s once, then: helm lint
# (strict, every ci values set), the Go tests in charts/tests (golden renders, strict decoding
# into Kubernetes types, semantics, `ringside check` on the rendered config, and installs,
# upgrades and rollbacks against a real kube-apiserver that the tests start and stop), and the
# Dockerfile's build steps (integration/docker/check.sh).
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

# The test control plane for the TestKube* tests: etcd, kube-apiserver, kube-controller-manager
# and kubectl, built from the versions charts/tests/controlplane/go.mod pins into
# target/tools/k8s (cold: minutes; then reused, and the Go build cache keeps a rebuild short).
cp_mod=charts/tests/controlplane
K8S_VERSION=$(cd "$cp_mod" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_stamp="$tools/k8s/.built-$K8S_VERSION-$(sha256sum "$cp_mod/go.sum" | cut -c1-12)"
if [ ! -e "$k8s_stamp" ]; then
  echo "chart-test: building the control plane (Kubernetes $K8S_VERSION) into target/tools/k8s (once)"
  start=$(date +%s)
  rm -rf "$tools/k8s" && mkdir -p "$tools/k8s"
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$cp_mod" && go build -trimpath -buildvcs=false -ldflags "$ld" -o "$tools/k8s/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3)
  mv "$tools/k8s/server" "$tools/k8s/etcd"   # the etcd server's main package is .../server/v3
  touch "$k8s_stamp"
  echo "chart-test: control plane built in $(($(date +%s) - start)) s"
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

(cd charts/tests && HELM="$helm" RINGSIDE_BIN="$PWD/../../target/release/ringside" KUBE_TOOLS="$tools/k8s" \
  go test -count=1 -timeout 15m -v ./... | grep -vE '^(=== (RUN|PAUSE|CONT|NAME)|    +--- PASS)')

bash integration/docker/check.sh
