#!/usr/bin/env bash
# The default price model, so that `cryptocast run` predicts from the first minute on a fresh machine: trained once
# (about 40 s on 2 cores) on the last 90 days of the Binance BTCUSDT/ETHUSDT 1-minute candles in ../shared/data,
# walked forward and registered through the promotion gate like any model (`cryptocast train`). Skipped when the registry
# already has a champion, or when the recordings are not there (then train your own: cryptocast train --candles …).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY="${CRYPTOCAST_REGISTRY:-$ROOT/.data/registry}"
NAME="${CRYPTOCAST_MODEL_NAME:-cryptocast-price}"
DATA="${CRYPTOCAST_SHARED_DATA:-$ROOT/../shared/data}/binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02"
log() { printf '\033[1;32m[price-model]\033[0m %s\n' "$*" >&2; }

if [[ "$REGISTRY" != mlflow+* ]] && [ -f "$REGISTRY/$NAME/aliases.json" ] && grep -q '"champion": [0-9]' "$REGISTRY/$NAME/aliases.json"; then
  log "ready: $NAME champion in $REGISTRY"
  exit 0
fi
if [ ! -d "$DATA" ]; then
  log "no recordings at $DATA: no default model (train one with ./bin/cryptocast train --candles FILE)"
  exit 0
fi
# The last DAYS days of the recording (default 90): a first run predicts within minutes. The 14 months give the figures
# in the README (about 2.5 min more): CRYPTOCAST_DEFAULT_MODEL_DAYS=all, or `cryptocast train --candles` on them later.
DAYS="${CRYPTOCAST_DEFAULT_MODEL_DAYS:-90}"
CANDLES="$DATA"
if [ "$DAYS" != "all" ]; then
  CANDLES="$(mktemp -d)"
  trap 'rm -rf "$CANDLES"' EXIT
  for pair in BTCUSDT ETHUSDT; do
    mkdir -p "$CANDLES/$pair"
    ls "$DATA/$pair"/*.zip | sort | tail -n "$DAYS" | while read -r f; do ln -s "$f" "$CANDLES/$pair/"; done
  done
fi
log "training the default price model on the last $DAYS days of Binance BTC/ETH 1-minute candles (once)"
"$ROOT/bin/cryptocast" train --candles "$CANDLES" --tune-seconds 0 --registry "$REGISTRY" --name "$NAME"
