#!/usr/bin/env bash
# Prometheus' promtool, for checking deploy/prometheus/alerts.yml and every PromQL expression the project ships:
# taken from Debian's `prometheus` package (apt-get download, no install: nothing is started or configured) into a
# versioned cache outside the clone, so every clone on the machine reuses it.
#
#   scripts/promtool.sh path     install if needed, print the binary's path
# Environment: CRYPTOCAST_CACHE (~/.cache/cryptocast)
set -euo pipefail
CACHE="${CRYPTOCAST_CACHE:-$HOME/.cache/cryptocast}"
say() { printf '\033[1;36m[promtool]\033[0m %s\n' "$*" >&2; }

path() {
  local found
  found="$(ls -d "$CACHE"/promtool-*/promtool 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; return; fi
  command -v apt-get >/dev/null || { say "error: apt-get is needed to fetch Debian's prometheus package"; exit 1; }
  local tmp; tmp="$(mktemp -d)"
  say "fetching Debian's prometheus package for promtool"
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || {
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1)
  } || { say "error: could not download Debian's prometheus package"; rm -rf "$tmp"; exit 1; }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  local version; version="$(dpkg-deb -f "$tmp"/prometheus_*.deb Version | sed 's/[^A-Za-z0-9.+-]/_/g')"
  mkdir -p "$CACHE/promtool-$version"
  cp "$tmp/x/usr/bin/promtool" "$CACHE/promtool-$version/promtool"
  rm -rf "$tmp"
  say "promtool $version in $CACHE/promtool-$version"
  echo "$CACHE/promtool-$version/promtool"
}

case "${1:-}" in
  path) path ;;
  *) echo "usage: $0 path" >&2; exit 2 ;;
esac
