#!/usr/bin/env bash
# Install a pinned kustomize into .cache/bin/ (gitignored) for the manifest tests.
#
# kustomize comes from the Go module proxy as a Go module (`go install`), so the only
# thing a machine needs is the Go toolchain. Debian's kubernetes-client is kubectl 1.20,
# whose built-in kustomize is too old for these overlays. Running the script again is a
# no-op once the pinned version is in place.
#
#   bash scripts/install-kustomize.sh          # then: .cache/bin/kustomize build DIR
set -euo pipefail

VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.cache/bin"
TARGET="$BIN/kustomize"

if [[ -x "$TARGET" ]] && "$TARGET" version 2>/dev/null | grep -q "${VERSION#v}"; then
    echo "kustomize $VERSION already in $BIN"
    exit 0
fi
if ! command -v go >/dev/null; then
    echo "install-kustomize: the Go toolchain is needed (go install from the module proxy)" >&2
    exit 1
fi

mkdir -p "$BIN"
# One package at a time: the machine's two cores are shared with other builds.
GOBIN="$BIN" GOFLAGS="-p=1 -trimpath" nice -n 10 \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION"
"$TARGET" version
