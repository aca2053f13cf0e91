#!/usr/bin/env bash
# Assembles the operator's container image without a container daemon (`make image`): the
# binary at /usr/local/bin/dli-stop-operator plus the runtime files it needs, taken from the
# Debian packages of this machine's own release at the versions installed here (the binary
# was linked against this glibc): glibc, libgcc, CA certificates and tzdata. User 65532, and
# the Dockerfile's labels, exposed port, entrypoint and command (tests/image.rs checks that
# they match). Writes
#   OUT_DIR/oci/                    an OCI image layout (skopeo, crane, podman, containerd)
#   OUT_DIR/dli-stop-operator.tar   for `docker load` / `podman load`
#   OUT_DIR/rootfs/                 the image's files, as packed
#   OUT_DIR/packages                the Debian packages in it and their versions
#
#   tools/image/build.sh BINARY [OUT_DIR]   # OUT_DIR defaults to target/image
#
# The .deb files and the assembler (tools/image/main.go, built from go.mod) are cached outside
# target/; the layer is reproducible (file times are $SOURCE_DATE_EPOCH, default 0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary=${1:?usage: tools/image/build.sh BINARY [OUT_DIR]}
out=${2:-$repo/target/image}
cache_root=${DLI_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dli-stop-operator/image}
# Libraries the binary links against come at the versions installed here, which it was
# linked with (or the release's newest once the mirror dropped those); data (certificates,
# time zones) at the release's newest.
linked_packages=(libc6 libgcc-s1)
data_packages=(ca-certificates tzdata)

# The assembler, rebuilt whenever its source or pinned modules change.
source_key=$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)
assembler="$cache_root/oci-image-$source_key"
if [[ ! -x "$assembler" ]]; then
  command -v go >/dev/null || { echo "image/build.sh: Go is needed to build the image assembler" >&2; exit 1; }
  mkdir -p "$cache_root"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$assembler.partial" .)
  mv -f "$assembler.partial" "$assembler"
fi

installed_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

# A private package index in the cache, so the build needs no `apt-get update` of the machine
# and never changes its apt state; refreshed once per run when it is missing or when a wanted
# version is no longer on the mirror.
apt_state="$cache_root/apt"
# The cache belongs to whoever runs the build, so apt's download sandbox user could not write it.
apt_options=(-o "Dir::State::Lists=$apt_state/lists" -o "Dir::Cache=$apt_state/cache" -o "APT::Sandbox::User=$(id -un)")
index_refreshed=""
refresh_index() {
  [[ -z "$index_refreshed" ]] || return 1
  mkdir -p "$apt_state/lists/partial" "$apt_state/cache/archives/partial"
  apt-get "${apt_options[@]}" -qq update >&2 || { echo "image/build.sh: cannot read the Debian mirror's package index" >&2; exit 1; }
  index_refreshed=yes
}
[[ -n "$(ls "$apt_state/lists" 2>/dev/null | grep -v '^partial$\|^lock$')" ]] || refresh_index
candidate_version() {
  apt-cache "${apt_options[@]}" policy "$1" | sed -n 's/^ *Candidate: //p'
}

# Downloads `package=version` into the cache; fails quietly when the mirror lacks it.
fetch() {
  local package=$1 version=$2 scratch
  echo "fetching $package $version" >&2
  # apt-get download writes into the current directory; a scratch one keeps a cut-off
  # download from looking cached.
  scratch=$(mktemp -d "$debs/.fetch.XXXXXX")
  (cd "$scratch" && apt-get "${apt_options[@]}" download -q "$package=$version" >&2 || true)
  mv -f "$scratch"/*.deb "$debs/" 2>/dev/null || { rm -rf "$scratch"; return 1; }
  rm -rf "$scratch"
}

cached_deb() {
  local found=("$debs/${1}_${2//:/%3a}_"*.deb)
  [[ -f "${found[0]}" ]] && echo "${found[0]}"
}

# The runtime packages, fetched once from the Debian mirror apt is configured with.
debs="$cache_root/debs"
mkdir -p "$debs"
deb_files=()
package_versions=()
for package in "${linked_packages[@]}" "${data_packages[@]}"; do
  version=""
  if [[ " ${linked_packages[*]} " == *" $package "* ]]; then
    version=$(installed_version "$package")
  fi
  [[ -n "$version" ]] || version=$(candidate_version "$package")
  if ! deb=$(cached_deb "$package" "$version") && ! { fetch "$package" "$version" && deb=$(cached_deb "$package" "$version"); }; then
    # The mirror moved on: refresh the index and take the release's newest. glibc and libgcc
    # keep their old symbols, so a binary linked against the installed one runs on it.
    refresh_index || true
    version=$(candidate_version "$package")
    if [[ -z "$version" || "$version" == "(none)" ]] || ! { deb=$(cached_deb "$package" "$version") || { fetch "$package" "$version" && deb=$(cached_deb "$package" "$version"); }; }; then
      echo "image/build.sh: cannot fetch $package from the Debian mirror" >&2
      exit 1
    fi
  fi
  deb_files+=("$deb")
  package_versions+=("$package $version")
done

rootfs="$out/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"
printf '%s\n' "${package_versions[@]}" > "$out/packages"
for deb in "${deb_files[@]}"; do
  dpkg-deb -x "$deb" "$rootfs"
done
# The bundle update-ca-certificates would write with every certificate of the package enabled.
mkdir -p "$rootfs/etc/ssl/certs"
LC_ALL=C cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt > "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Names for root and 65532 (distroless's "nonroot"), so tools inside and outside agree.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
mkdir -p "$rootfs/home/nonroot" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/dli-stop-operator"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p;T;q' "$repo/Cargo.toml")
"$assembler" \
  -rootfs "$rootfs" \
  -layout "$out/oci" \
  -tarball "$out/dli-stop-operator.tar" \
  -tag "dli-stop-operator:$version" \
  -arch "$(dpkg --print-architecture)" \
  -epoch "${SOURCE_DATE_EPOCH:-0}" \
  -chown home/nonroot/=65532:65532 \
  -user 65532:65532 \
  -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  -env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  -label org.opencontainers.image.title=dli-stop-operator \
  -label "org.opencontainers.image.description=Kubernetes operator that stops Data Lake Insight (DLI) Flink jobs declaratively" \
  -label org.opencontainers.image.licenses=Apache-2.0 \
  -expose 8080/tcp \
  -entrypoint /usr/local/bin/dli-stop-operator \
  -cmd run \
  > "$out/digest"
echo "image dli-stop-operator:$version ($(cat "$out/digest")): $out/oci, $out/dli-stop-operator.tar" >&2
