#!/usr/bin/env bash
# The default price model, so that `cryptocast run` predicts from the first minute on a fresh machine: trained once
# (about 40 s on 2 cores) on the last 90 days of the Binance BTCUSDT/ETHUSDT 1-minute candles, walked forward and
# registered through the promotion gate like any model (`cryptocast train`). The candles are the recordings in
# ../shared/data when they are there; else the same months from Binance's public archive (`cryptocast data fetch`,
# checksum-verified, into .data/public). Skipped when the registry already has a champion; when neither source can be
# had, it says what is missing and how to get it, and setup carries on (run works, without predictions).
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
FETCHED="${CRYPTOCAST_DATA_DIR:-$ROOT/.data/public}/spot/monthly/klines"
have_fetched() { for pair in BTCUSDT ETHUSDT; do ls "$FETCHED/$pair/1m/$pair-1m-2023-02.zip" >/dev/null 2>&1 || return 1; done; }
if [ ! -d "$DATA" ] && ! have_fetched; then
  log "no recordings at $DATA: fetching 2022-12..2023-02 of BTCUSDT/ETHUSDT from Binance's public archive"
  if ! "$ROOT/bin/cryptocast" data fetch --from 2022-12 --to 2023-02 --attempts 3; then
    log "no default model: neither the recordings ($DATA) nor the public archive could be read."
    log "  get the candles later with: ./bin/cryptocast data fetch   (or set CRYPTOCAST_SHARED_DATA to the recordings)"
    log "  then: bash scripts/price-model.sh   (or ./bin/cryptocast train --candles FOLDER)"
    exit 0
  fi
fi
# The last DAYS days (default 90): a first run predicts within minutes. The 14 months of the recordings give the
# figures in the README (about 2.5 min more): CRYPTOCAST_DEFAULT_MODEL_DAYS=all, or `cryptocast train --candles` later.
DAYS="${CRYPTOCAST_DEFAULT_MODEL_DAYS:-90}"
if [ -d "$DATA" ]; then
  CANDLES="$DATA"
  if [ "$DAYS" != "all" ]; then
    CANDLES="$(mktemp -d)"
    trap 'rm -rf "$CANDLES"' EXIT
    for pair in BTCUSDT ETHUSDT; do
      mkdir -p "$CANDLES/$pair"
      ls "$DATA/$pair"/*.zip | sort | tail -n "$DAYS" | while read -r f; do ln -s "$f" "$CANDLES/$pair/"; done
    done
  fi
  FROM="the last $DAYS days of the recorded"
else
  # Monthly zips of the archive: the three months 2022-12..2023-02 (90 days), the recording's last 90 days.
  CANDLES="$(mktemp -d)"
  trap 'rm -rf "$CANDLES"' EXIT
  for pair in BTCUSDT ETHUSDT; do
    mkdir -p "$CANDLES/$pair"
    for m in 2022-12 2023-01 2023-02; do ln -s "$FETCHED/$pair/1m/$pair-1m-$m.zip" "$CANDLES/$pair/"; done
  done
  FROM="2022-12..2023-02 of the fetched"
fi
log "training the default price model on $FROM Binance BTC/ETH 1-minute candles (once)"
"$ROOT/bin/cryptocast" train --candles "$CANDLES" --tune-seconds 0 --registry "$REGISTRY" --name "$NAME"
