#!/usr/bin/env bash
# A real PostgreSQL for the distributed store and its tests: Debian's `postgresql` package, one cluster of its
# own ("cryptocast", port 55432, loopback only, trust authentication: for tests, never for production).
#
#   scripts/postgres.sh install   apt-get install postgresql (if missing)
#   scripts/postgres.sh start     create the cluster once, start it, create role and database "cryptocast"
#   scripts/postgres.sh stop | drop | url   (drop: stop and delete the cluster)
# Environment: PG_PORT (55432), PG_CLUSTER (cryptocast).
set -euo pipefail
PORT="${PG_PORT:-55432}"
CLUSTER="${PG_CLUSTER:-cryptocast}" # another name and PG_PORT give a second, independent cluster
say() { printf '\033[1;36m[postgres]\033[0m %s\n' "$*" >&2; }

version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }

install() {
  if [ -n "$(version)" ] && command -v pg_ctlcluster >/dev/null; then return; fi
  say "installing Debian's postgresql package"
  [ "$(id -u)" = 0 ] || { say "error: needs root for apt-get (or install postgresql yourself)"; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

start() {
  install
  local v; v="$(version)"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$v $CLUSTER"; then
    say "creating cluster $v/$CLUSTER on 127.0.0.1:$PORT"
    pg_createcluster "$v" "$CLUSTER" -p "$PORT" --start-conf=manual -- --auth-local=trust --auth-host=trust >/dev/null
    echo "listen_addresses = '127.0.0.1'" >> "/etc/postgresql/$v/$CLUSTER/postgresql.conf"
    echo "fsync = off" >> "/etc/postgresql/$v/$CLUSTER/postgresql.conf"   # test cluster: speed over crash safety
  fi
  if ! pg_ctlcluster "$v" "$CLUSTER" status >/dev/null 2>&1; then
    pg_ctlcluster "$v" "$CLUSTER" start
  fi
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.5; done
  pg_isready -q -h 127.0.0.1 -p "$PORT" || { say "error: PostgreSQL did not start"; exit 1; }
  local psql=(runuser -u postgres -- psql -q -h 127.0.0.1 -p "$PORT" -d postgres -v ON_ERROR_STOP=1)
  "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='cryptocast'" | grep -q 1 || "${psql[@]}" -c "CREATE ROLE cryptocast LOGIN CREATEDB"
  "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='cryptocast'" | grep -q 1 || "${psql[@]}" -c "CREATE DATABASE cryptocast OWNER cryptocast"
  say "ready: $(url)"
}

stop() { local v; v="$(version)"; pg_ctlcluster "$v" "$CLUSTER" stop 2>/dev/null || true; say "stopped"; }
drop() { local v; v="$(version)"; pg_dropcluster --stop "$v" "$CLUSTER" 2>/dev/null || true; say "cluster $CLUSTER dropped"; }
url() { echo "postgres://cryptocast@127.0.0.1:$PORT/cryptocast"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  drop) drop ;;
  url) url ;;
  *) echo "usage: $0 install|start|stop|drop|url" >&2; exit 2 ;;
esac
