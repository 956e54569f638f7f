#!/usr/bin/env bash
# The Python of ./bench/run peers: a venv of the benchmark's own (Quix Streams, pandas, TA-Lib, ta, DuckDB,
# psycopg, onnxruntime, tl2cgen, …), pinned by bench/peers/requirements.txt (and requirements-same-engine.txt: DuckDB
# at cryptocast's engine version, in <venv>/same-engine), outside the clone in a versioned cache:
#   ~/.cache/cryptocast/bench-peers-venv-<first 12 hex of the two files' sha256>
# Idempotent: an existing, complete venv is reused; a changed requirements file makes a new one beside it.
# Prints the venv's python on stdout. Environment: CRYPTOCAST_CACHE (~/.cache/cryptocast).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/bench/peers/requirements.txt"
SAME="$ROOT/bench/peers/requirements-same-engine.txt"
CACHE="${CRYPTOCAST_CACHE:-$HOME/.cache/cryptocast}"
VENV="$CACHE/bench-peers-venv-$(cat "$REQ" "$SAME" | sha256sum | cut -c1-12)"
say() { printf '\033[1;33m[bench-peers]\033[0m %s\n' "$*" >&2; }

if [ ! -f "$VENV/.complete" ]; then
  command -v python3 >/dev/null || { say "error: python3 (3.11 or newer) is needed"; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$VENV.lock"
  flock -w 900 9 || { say "error: another install of $VENV is running"; exit 1; }
  if [ ! -f "$VENV/.complete" ]; then
    say "installing the peers into $VENV (once; about a minute)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQ"
    # DuckDB at cryptocast's engine version, in a folder of its own (features_pandas.py --duckdb-path).
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$VENV/same-engine" -r "$SAME"
    # The TA-Lib wheel carries the C library; fail here rather than in the middle of a run.
    "$VENV/bin/python" -c 'import talib, quixstreams, onnxruntime, tl2cgen, duckdb, ta, psycopg' >&2
    touch "$VENV/.complete"
  fi
fi
echo "$VENV/bin/python"
