#!/usr/bin/env bash
# Builds helm (the version pinned in go.mod) into a cache outside target/, once: later runs
# only print where it is. tests/control-plane/build.sh (`make control-plane`) calls this, so
# the chart tests find helm wherever they find kubectl's cache.
#
#   tests/helm-tool/build.sh [OUT_DIR]   # default: <control-plane cache>/helm
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n '/^[[:space:]]*helm\.sh\/helm\/v4 v[0-9]/{s/^[[:space:]]*helm\.sh\/helm\/v4 \(v[0-9][^ ]*\).*/\1/p;q}' "$here/go.mod")
if [[ -z "$version" ]]; then
  echo "helm-tool/build.sh: cannot find the helm.sh/helm/v4 version in $here/go.mod" >&2
  exit 1
fi

cache_root=${DLI_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dli-stop-operator/control-plane}
out=${1:-$cache_root/helm}

built_version() {
  [[ -x "$out/helm" ]] || return 1
  "$out/helm" version --template '{{.Version}}' 2>/dev/null
}

if [[ "$(built_version || true)" != "$version" ]]; then
  command -v go >/dev/null || { echo "helm-tool/build.sh: Go is needed to build helm $version" >&2; exit 1; }
  echo "building helm $version into $out" >&2
  mkdir -p "$out"
  # Build into a scratch dir and move into place, so an interrupted build never looks done.
  scratch=$(mktemp -d "$out/.build-$version.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  (
    cd "$here"
    go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
      -o "$scratch/helm" helm.sh/helm/v4/cmd/helm
  )
  mv -f "$scratch/helm" "$out/helm"
fi

echo "helm:           $out/helm ($("$out/helm" version --template '{{.Version}}'))"
