#!/usr/bin/env bash
# Builds kube-apiserver and kubectl (the version pinned in go.mod) into a cache outside
# target/, once: later runs only print where the binaries are. With KUBEBUILDER_ASSETS set
# the tests use that directory, so there is nothing to build. Either way it fetches the
# Prometheus Operator CRDs the tests apply deploy/monitoring/ against, and builds helm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# sed quits at the first match itself: a `| head` could kill it with SIGPIPE under pipefail.
version=$(sed -n '/^[[:space:]]*k8s\.io\/kubernetes v[0-9]/{s/^[[:space:]]*k8s\.io\/kubernetes \(v[0-9][^ ]*\).*/\1/p;q}' "$here/go.mod")
if [[ -z "$version" ]]; then
  echo "build.sh: cannot find the k8s.io/kubernetes version in $here/go.mod" >&2
  exit 1
fi

cache_root=${DLI_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dli-stop-operator/control-plane}
out="$cache_root/$version"

# ServiceMonitor and PrometheusRule as the Prometheus Operator defines them, from its module
# source on the Go module proxy (the same place the Kubernetes sources come from).
prometheus_operator=v0.85.0
monitoring_crds="$cache_root/prometheus-operator-crds"
if [[ "$(cat "$monitoring_crds/version" 2>/dev/null || true)" != "$prometheus_operator" ]]; then
  command -v go >/dev/null || { echo "build.sh: Go is needed to fetch the Prometheus Operator CRDs" >&2; exit 1; }
  # From / (no go.mod there), so the download changes neither go.mod nor go.sum here.
  module_dir=$(cd / && go mod download -json "github.com/prometheus-operator/prometheus-operator@$prometheus_operator" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$monitoring_crds"
  for kind in servicemonitors prometheusrules; do
    # install, not cp: files in the module cache are read-only, and a copy would stay so.
    install -m 0644 "$module_dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$monitoring_crds/"
  done
  echo "$prometheus_operator" > "$monitoring_crds/version"
fi
echo "Prometheus Operator CRDs: $monitoring_crds ($prometheus_operator)"

# helm for the chart tests, from its own module (tests/helm-tool), also with KUBEBUILDER_ASSETS.
"$here/../helm-tool/build.sh" "$cache_root/helm"

# Kubernetes' ClusterRole aggregation controller alone (from kube-controller-manager), so the
# tests can check that the shipped user roles reach the built-in view/edit/admin roles. Built
# even with KUBEBUILDER_ASSETS set: no envtest asset holds it.
aggregator="$out/clusterrole-aggregator"
if [[ ! -x "$aggregator" ]]; then
  command -v go >/dev/null || { echo "build.sh: Go is needed to build the ClusterRole aggregator" >&2; exit 1; }
  echo "building the ClusterRole aggregator into $aggregator" >&2
  mkdir -p "$out"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$aggregator.partial" ./clusterrole-aggregator)
  mv -f "$aggregator.partial" "$aggregator"
fi
echo "ClusterRole aggregator: $aggregator"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS is set: using its kube-apiserver, etcd and kubectl"
  for bin in kube-apiserver etcd kubectl; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || echo "warning: $KUBEBUILDER_ASSETS/$bin is missing" >&2
  done
  exit 0
fi

built_version() {
  [[ -x "$out/kube-apiserver" && -x "$out/kubectl" ]] || return 1
  "$out/kube-apiserver" --version 2>/dev/null | awk '{print $2}'
}

if [[ "$(built_version || true)" != "$version" ]]; then
  command -v go >/dev/null || { echo "build.sh: Go is needed to build kube-apiserver $version" >&2; exit 1; }
  minor=${version#v1.}
  minor=${minor%%.*}
  echo "building kube-apiserver and kubectl $version into $out (a cold build takes several minutes)" >&2
  mkdir -p "$cache_root"
  # Build into a scratch dir and move into place, so an interrupted build never looks done.
  scratch=$(mktemp -d "$cache_root/.build-$version.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  (
    cd "$here"
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$version \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor" \
      -o "$scratch/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  )
  mkdir -p "$out"
  mv -f "$scratch/kube-apiserver" "$scratch/kubectl" "$out/"
fi

echo "kube-apiserver: $out/kube-apiserver ($("$out/kube-apiserver" --version))"
echo "kubectl:        $out/kubectl"
