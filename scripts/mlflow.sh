#!/usr/bin/env bash
# A real MLflow tracking server for the model registry (src/training/registry/mlflow.ts) and its tests, without
# Docker: a pinned `mlflow` from PyPI in a venv of its own, one server on 127.0.0.1 with a SQLite backend store
# and the artifacts proxied by the server (clients upload and download through its mlflow-artifacts REST API).
#
#   scripts/mlflow.sh install   venv .tools/mlflow-venv + pip install mlflow==$MLFLOW_VERSION (once per version)
#   scripts/mlflow.sh start     install if needed, start in the background, wait until it answers; does nothing
#                               if it already runs, and uses any MLflow server that already answers on the port
#   scripts/mlflow.sh stop      stop the server this script started (SIGTERM to its process group)
#   scripts/mlflow.sh url       the registry URL to give cryptocast (mlflow+http://127.0.0.1:PORT)
#
# Environment:
#   MLFLOW_PORT (5500)                  HTTP port, 127.0.0.1 only
#   MLFLOW_DATA_DIR (.data/mlflow)      mlflow.db (runs, registered models), artifacts/, server.pid, server.log
#   MLFLOW_WORKERS (2)                  uvicorn worker processes
#   MLFLOW_START_TIMEOUT (120)          seconds `start` waits for the server to answer
#   PYTHON (python3)                    the Python (3.10+) the venv is made from
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MLFLOW_VERSION=3.17.2
VENV="$ROOT/.tools/mlflow-venv"
STAMP="$VENV/.installed-mlflow-$MLFLOW_VERSION"
PORT="${MLFLOW_PORT:-5500}"
DATA="$(realpath -m "${MLFLOW_DATA_DIR:-$ROOT/.data/mlflow}")"
WORKERS="${MLFLOW_WORKERS:-2}"
START_TIMEOUT="${MLFLOW_START_TIMEOUT:-120}"
PYTHON="${PYTHON:-python3}"
PIDFILE="$DATA/server.pid"
LOGFILE="$DATA/server.log"

TAG=mlflow TAG_COLOR=33
# shellcheck source=lib/daemon.sh
source "$ROOT/scripts/lib/daemon.sh"

install() {
  mkdir -p "$ROOT/.tools"
  exec 8>"$ROOT/.tools/mlflow-venv.lock"
  flock -w 900 8 || die "another install is running"
  if [ -f "$STAMP" ]; then
    exec 8>&-
    return 0
  fi
  command -v "$PYTHON" >/dev/null || die "Python 3.10+ is needed ($PYTHON not found; set PYTHON)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "mlflow $MLFLOW_VERSION needs Python 3.10+"
  local t0=$SECONDS
  say "installing mlflow $MLFLOW_VERSION from PyPI into $VENV (about a minute)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "could not create the venv (is python3-venv installed?)"
  rm -f "$VENV"/.installed-mlflow-*
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "mlflow==$MLFLOW_VERSION" >"$VENV/install.log" 2>&1; then
    tail -20 "$VENV/install.log" >&2
    die "pip could not install mlflow==$MLFLOW_VERSION (is PyPI reachable?): see $VENV/install.log"
  fi
  touch "$STAMP"
  say "installed in $((SECONDS - t0)) s"
  exec 8>&-
}

# True when an MLflow tracking server answers on PORT (its REST API, not only a socket).
answers() {
  curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$PORT/api/2.0/mlflow/experiments/search?max_results=1" 2>/dev/null
}


# The pid of the server this data dir started, if it still runs (the command line is checked, so that a reused
# pid is never taken for it).
server_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--backend-store-uri sqlite:///$DATA/mlflow.db" || return 1
  echo "$pid"
}

lock() {
  mkdir -p "$DATA"
  hold_lock "$DATA.lock" $((START_TIMEOUT + 930))
}

start() {
  lock
  local pid t0=$SECONDS
  if pid="$(server_pid)" && answers; then
    say "already running: $(url) (pid $pid)"
    return 0
  fi
  if [ -z "${pid:-}" ]; then
    rm -f "$PIDFILE"
    if answers; then
      say "an MLflow server not started from $DATA already serves 127.0.0.1:$PORT: using it"
      return 0
    fi
    port_open "$PORT" && die "port $PORT is taken by something that is not an MLflow server: free it or set MLFLOW_PORT"
    install
    mkdir -p "$DATA/artifacts"
    echo "--- $(date -Is) start" >>"$LOGFILE"
    # --allowed-hosts: MLflow 3's host-header check (against DNS rebinding). Its default already admits
    # localhost/127.0.0.1 on any port; listed explicitly so the server accepts exactly the names it is reached by.
    # CORS stays at its default (browser origins on localhost/127.0.0.1 only); the Node client sends no Origin.
    # setsid: the server (the mlflow CLI and its uvicorn workers) gets a process group of its own, which outlives
    # the shell or test runner that started it and which `stop` signals as a whole. fd 9 (the lock) is not inherited.
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no background job runner (GenAI evaluation jobs; a dozen Python
    # processes and half a minute of start-up that the registry does not use). No telemetry either.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true setsid "$VENV/bin/mlflow" server \
      --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
      --backend-store-uri "sqlite:///$DATA/mlflow.db" \
      --serve-artifacts --artifacts-destination "$DATA/artifacts" \
      --allowed-hosts "127.0.0.1,127.0.0.1:$PORT,localhost,localhost:$PORT" \
      >>"$LOGFILE" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    say "starting mlflow $MLFLOW_VERSION on 127.0.0.1:$PORT (data in $DATA)"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2
      rm -f "$PIDFILE"
      die "the server exited during start-up (log: $LOGFILE)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$LOGFILE" >&2
      stop_pid "$pid"
      die "the server did not answer within ${START_TIMEOUT} s (MLFLOW_START_TIMEOUT)"
    fi
    sleep 0.3
  done
  say "ready: $(url) (pid $pid) after $((SECONDS - t0)) s"
}

stop_pid() {
  stop_process "$1" 20 group # gunicorn: the server and its workers
  rm -f "$PIDFILE"
}

stop() {
  lock
  local pid
  if ! pid="$(server_pid)"; then
    rm -f "$PIDFILE"
    say "not running (data dir $DATA)"
    return 0
  fi
  stop_pid "$pid"
  say "stopped (pid $pid)"
}

url() { echo "mlflow+http://127.0.0.1:$PORT"; }

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
url) url ;;
*)
  echo "usage: $0 install|start|stop|url" >&2
  exit 2
  ;;
esac
