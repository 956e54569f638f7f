#!/usr/bin/env bash
# A PostgreSQL as a managed service is reached: TLS only, a password checked (scram-sha-256). For the TLS tests
# (test/integration/postgres-tls.test.ts), beside scripts/postgres.sh's plain cluster: Debian's `postgresql`, a cluster
# of its own on 127.0.0.1, a fresh CA and server certificate made with openssl at every start (the server's names its
# address 127.0.0.1 only: reached as 127.0.0.2, the host name check fails and the CA check does not).
#
#   scripts/postgres-tls.sh start     create the cluster once; new certificates; start or reload; role "cryptocast"
#                                     with the password PG_TLS_PASSWORD, database "cryptocast"
#   scripts/postgres-tls.sh ca        the CA certificate file (PEM) the server's certificate is signed by
#   scripts/postgres-tls.sh stop | drop
# Environment: PG_TLS_PORT (55433), PG_TLS_CLUSTER (cryptocast-tls), PG_TLS_PASSWORD (required by start).
set -euo pipefail
PORT="${PG_TLS_PORT:-55433}"
CLUSTER="${PG_TLS_CLUSTER:-cryptocast-tls}"
# shellcheck source=lib/test-ca.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/test-ca.sh"
say() { printf '\033[1;36m[postgres-tls]\033[0m %s\n' "$*" >&2; }

version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }
conf_dir() { echo "/etc/postgresql/$(version)/$CLUSTER"; }
tls_dir() { echo "$(conf_dir)/tls"; }

certificates() {
  local d; d="$(tls_dir)"
  test_ca "$d"
  test_cert "$d" server 127.0.0.1 subjectAltName=IP:127.0.0.1
  chown -R postgres:postgres "$d"
  chmod 600 "$d/server.key" "$d/ca.key"
  chmod 644 "$d/ca.pem"
}

start() {
  [ -n "${PG_TLS_PASSWORD:-}" ] || { say "error: set PG_TLS_PASSWORD (the role's password)"; exit 2; }
  bash "$(dirname "$0")/postgres.sh" install
  local v; v="$(version)"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$v $CLUSTER"; then
    say "creating cluster $v/$CLUSTER on 127.0.0.1:$PORT (TLS only, scram-sha-256)"
    pg_createcluster "$v" "$CLUSTER" -p "$PORT" --start-conf=manual -- --auth-local=trust >/dev/null
    cat >>"$(conf_dir)/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1,127.0.0.2'
fsync = off
ssl = on
ssl_cert_file = '$(tls_dir)/server.pem'
ssl_key_file = '$(tls_dir)/server.key'
password_encryption = scram-sha-256
EOF
  fi
  # Written at every start (a cluster made by an earlier version of this script gets it too). TLS admits the database
  # cryptocast only: a connection to another meets no line over TLS either, as at a server not yet provisioned for it.
  cat >"$(conf_dir)/pg_hba.conf" <<'EOF'
local     all         all                trust
hostssl   cryptocast  all  127.0.0.0/8   scram-sha-256
hostnossl all         all  127.0.0.0/8   reject
EOF
  certificates
  if pg_ctlcluster "$v" "$CLUSTER" status >/dev/null 2>&1; then pg_ctlcluster "$v" "$CLUSTER" reload
  else pg_ctlcluster "$v" "$CLUSTER" start; fi
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.5; done
  pg_isready -q -h 127.0.0.1 -p "$PORT" || { say "error: PostgreSQL did not start"; exit 1; }
  # Over the local socket (trust): the password is set, never sent over the network in plain text.
  local psql=(runuser -u postgres -- psql -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -v "pw=$PG_TLS_PASSWORD")
  "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='cryptocast'" | grep -q 1 || "${psql[@]}" -c "CREATE ROLE cryptocast LOGIN CREATEDB"
  "${psql[@]}" <<<"ALTER ROLE cryptocast PASSWORD :'pw';"
  "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='cryptocast'" | grep -q 1 || "${psql[@]}" -c "CREATE DATABASE cryptocast OWNER cryptocast"
  say "ready: postgres://cryptocast@127.0.0.1:$PORT/cryptocast?sslmode=verify-full&sslrootcert=$(tls_dir)/ca.pem"
}

stop() { pg_ctlcluster "$(version)" "$CLUSTER" stop 2>/dev/null || true; say "stopped"; }
drop() { pg_dropcluster --stop "$(version)" "$CLUSTER" 2>/dev/null || true; say "cluster $CLUSTER dropped"; }

case "${1:-}" in
  start) start ;;
  ca) echo "$(tls_dir)/ca.pem" ;;
  stop) stop ;;
  drop) drop ;;
  *) echo "usage: $0 start|ca|stop|drop" >&2; exit 2 ;;
esac
