#!/usr/bin/env bash
# Pin the test control plane to another Kubernetes release: `bash bump.sh v1.35.4`.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at
# v0.0.0 and replaces them with ./staging paths, which a module outside its repository cannot
# use; this writes go.mod with each one replaced by the matching v0.MINOR.PATCH release, then
# records the tools (etcd from the version Kubernetes itself requires).
set -euo pipefail
cd "$(dirname "$0")"
v=${1:?usage: bump.sh vMAJOR.MINOR.PATCH}
mod=$(curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$v.mod")
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' <<<"$mod")
{
  printf 'module ringside.dev/charttests/controlplane\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$v"
  awk -v s="v0.${v#v1.}" '$2 == "=>" && $3 ~ /^\.\/staging/ { printf "\t%s => %s %s\n", $1, $1, s }' <<<"$mod"
  printf ')\n'
} >go.mod
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kube-controller-manager@$v" \
  "k8s.io/kubernetes/cmd/kubectl@$v" "go.etcd.io/etcd/server/v3@$etcd"
go mod tidy
