#!/usr/bin/env bash
# Debian's Chromium, for the dashboard's browser tests (driven by playwright-core; no browser download): installed
# with apt-get as root if missing. Prints the binary's path.
set -euo pipefail
say() { printf '\033[1;35m[chromium]\033[0m %s\n' "$*" >&2; }
BIN="${CRYPTOCAST_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$BIN" ]; then
  [ "$(id -u)" = 0 ] || { say "error: $BIN is missing and installing it needs root (apt-get install chromium)"; exit 1; }
  say "installing Debian's chromium package"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "$BIN"
