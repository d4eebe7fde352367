#!/usr/bin/env bash
# Builds the real Kubernetes parts of the real-stack suite from their published Go modules, through the Go module
# proxy: the Secrets Store CSI Driver v1.6.0 and v1.5.6, kube-apiserver and etcd. Each wrapper module in go/ pins one
# component; a binary is rebuilt only when its wrapper (go.mod, go.sum, sources) or the Go version changes.
# Writes manifest.json beside the binaries: their paths plus the driver's CRDs and the CSI spec's csi.proto, both
# read from the module cache (the same module versions the binaries were built from).
# The reference provider (v1.8.2, the Go provider AKS ships) is built too, for the differential parity test; its path
# goes into the manifest. `build.sh reference` builds only it (for the benchmark) and prints its path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
export PATH="$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cache="${CSI_K8S_CACHE:-$HOME/.cache/csi-provider-azure/k8s}"

if ! command -v go >/dev/null; then
  echo "test/k8s/build.sh: Go is needed (1.26, /usr/local/go/bin) to build the driver, kube-apiserver and etcd" >&2
  exit 1
fi
mkdir -p "$cache"

# A key over everything that decides a binary: the wrapper's files, the mlog module the drivers use, the Go version
# and the link flags.
key_of() {
  { go version; echo "$2"; cat "$here/go/$1"/go.mod "$here/go/$1"/go.sum "$here/go/$1"/*.go; cat "$here"/go/mlog/*; } | sha256sum | cut -c1-16
}

# build NAME WRAPPER PACKAGE [LDFLAGS]: prints the binary's path.
build() {
  local name=$1 wrapper=$2 package=$3 ldflags=${4:-}
  local out
  out="$cache/$name-$(key_of "$wrapper" "$ldflags")/$name"
  if [[ -x $out ]]; then
    echo "$name: up to date ($out)" >&2
  else
    echo "$name: building $package in go/$wrapper (a first build takes minutes)" >&2
    local started=$SECONDS
    (cd "$here/go/$wrapper" && go build -trimpath -ldflags "$ldflags" -o "$out.partial" "$package")
    mv "$out.partial" "$out"
    echo "$name: built in $((SECONDS - started)) s" >&2
  fi
  echo "$out"
}

# module_dir WRAPPER MODULE: the module's directory in the module cache, as the wrapper resolves it.
module_dir() {
  (cd "$here/go/$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2")
}

# The reference reports its version (in --version and its user agent) from this variable, as its release build sets
# it. Its go.sum carries the reference's own recorded hashes: the checksum database does not list the azidentity
# pseudo-version it pins.
build_reference() {
  build reference-v1.8.2 reference-v1.8.2 github.com/Azure/secrets-store-csi-driver-provider-azure/cmd \
    -X=github.com/Azure/secrets-store-csi-driver-provider-azure/pkg/version.BuildVersion=v1.8.2
}
if [[ ${1:-} == reference ]]; then
  build_reference
  exit 0
fi

# The driver reports its version (and puts it in its user agent) from this variable, as its release build sets it.
driver_version_flag=-X=sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion
driver_v160=$(build driver-v1.6.0 driver-v1.6.0 sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver "$driver_version_flag=v1.6.0")
driver_v156=$(build driver-v1.5.6 driver-v1.5.6 sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver "$driver_version_flag=v1.5.6")
etcd=$(build etcd etcd csi-provider-azure.test/k8s/etcd)
kube_apiserver=$(build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver)
reference=$(build_reference)

driver_v160_src=$(module_dir driver-v1.6.0 sigs.k8s.io/secrets-store-csi-driver)
driver_v156_src=$(module_dir driver-v1.5.6 sigs.k8s.io/secrets-store-csi-driver)
csi_spec_src=$(module_dir driver-v1.6.0 github.com/container-storage-interface/spec)

cat >"$cache/manifest.json.partial" <<EOF
{
  "etcd": "$etcd",
  "kubeApiserver": "$kube_apiserver",
  "drivers": {
    "v1.6.0": { "binary": "$driver_v160", "crds": "$driver_v160_src/config/crd/bases" },
    "v1.5.6": { "binary": "$driver_v156", "crds": "$driver_v156_src/config/crd/bases" }
  },
  "csiProto": "$csi_spec_src/csi.proto",
  "reference": { "v1.8.2": "$reference" }
}
EOF
mv "$cache/manifest.json.partial" "$cache/manifest.json"
echo "manifest: $cache/manifest.json" >&2
