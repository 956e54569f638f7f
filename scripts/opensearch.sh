#!/usr/bin/env bash
# A real OpenSearch 2.x node for development and tests, without Docker: the server and its transport-netty4 and
# analysis-common modules come from Maven Central (scripts/opensearch/pom.xml), laid out as an OpenSearch home
# (lib/, modules/<name>/ with the descriptor and security policy the distribution would carry) in a versioned cache
# outside the clone, and one node runs as a single JVM on 127.0.0.1 (single-node discovery, no security plugin).
#
#   scripts/opensearch.sh install   fetch and lay out the home in ~/.cache/cryptocast/opensearch-<version>-<pom hash>
#   scripts/opensearch.sh start     install if needed, start in the background, wait until the cluster is yellow
#                                   or green; does nothing if this data dir's node already serves (idempotent)
#   scripts/opensearch.sh stop      SIGTERM (clean shutdown), SIGKILL after OPENSEARCH_STOP_TIMEOUT
#   scripts/opensearch.sh kill      SIGKILL at once (crash tests)
#   scripts/opensearch.sh status    exit 0 if serving, 1 if running but not serving (yet), 3 if not running
#   scripts/opensearch.sh reset     stop, then wipe the data dir
#
# Environment:
#   OPENSEARCH_PORT (9200)               HTTP, 127.0.0.1 only
#   OPENSEARCH_TRANSPORT_PORT (9300)     node-to-node transport (bound, unused by a single node)
#   OPENSEARCH_DATA_DIR (.data/opensearch)  config, data, logs and pid file of this node
#   OPENSEARCH_HEAP (512m)               JVM heap
#   OPENSEARCH_START_TIMEOUT (180)       seconds `start` waits (about 15 s on an idle machine)
#   OPENSEARCH_STOP_TIMEOUT (30)
#   CRYPTOCAST_CACHE (~/.cache/cryptocast)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/opensearch"
POM="$HERE/pom.xml"
CACHE="${CRYPTOCAST_CACHE:-$HOME/.cache/cryptocast}"
PORT="${OPENSEARCH_PORT:-9200}"
TPORT="${OPENSEARCH_TRANSPORT_PORT:-9300}"
DATA="$(realpath -m "${OPENSEARCH_DATA_DIR:-$ROOT/.data/opensearch}")"
HEAP="${OPENSEARCH_HEAP:-512m}"
START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-180}"
STOP_TIMEOUT="${OPENSEARCH_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"

VERSION="$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$POM")"
# Bump when install lays the home out differently: a new layout installs beside the old one.
LAYOUT=1
HOME_DIR="$CACHE/opensearch-$VERSION-$( (cat "$POM" "$HERE"/*.policy && echo "$LAYOUT") | sha256sum | cut -c1-8)"
CONF="$DATA/config"
PIDFILE="$DATA/opensearch.pid"
OUTFILE="$DATA/stdout.log"
LOCKFILE="$DATA.lock"

TAG=opensearch TAG_COLOR=33
# shellcheck source=lib/daemon.sh
source "$ROOT/scripts/lib/daemon.sh"

# --- install ------------------------------------------------------------------------------------------------------

# A module's descriptor, as the distribution's modules/<name>/plugin-descriptor.properties.
descriptor() {
  cat <<PROPS
description=$3
version=$VERSION
name=$1
classname=$2
java.version=11
opensearch.version=$VERSION
extended.plugins=
has.native.controller=false
PROPS
}

install() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.opensearch-install.lock"
  flock -w 600 8 || die "another install is running"
  if [ -f "$HOME_DIR/.installed" ]; then
    exec 8>&-
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch OpenSearch from Maven Central"
  command -v "$JAVA" >/dev/null || die "Java 17+ is needed to run OpenSearch"
  local t0=$SECONDS tmp="$HOME_DIR.partial"
  say "fetching OpenSearch $VERSION (server, transport-netty4, analysis-common) from Maven Central into $HOME_DIR"
  rm -rf "$tmp"
  mkdir -p "$tmp/all" "$tmp/lib" "$tmp/plugins" "$tmp/modules/transport-netty4" "$tmp/modules/analysis-common"
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp/all" >"$tmp.log" 2>&1; then
    grep -E 'ERROR|FATAL' "$tmp.log" | head -20 >&2 || true
    die "mvn could not fetch OpenSearch (is Maven Central reachable?): see $tmp.log"
  fi
  rm -f "$tmp.log"
  # Modules load in class loaders of their own: their jars (and Netty, which only the transport uses) must not be
  # on the server's class path too, or OpenSearch's jar-hell check refuses to start.
  mv "$tmp"/all/transport-netty4-client-*.jar "$tmp"/all/netty-*.jar "$tmp/modules/transport-netty4/"
  mv "$tmp"/all/analysis-common-*.jar "$tmp/modules/analysis-common/"
  mv "$tmp"/all/*.jar "$tmp/lib/"
  rmdir "$tmp/all"
  descriptor transport-netty4 org.opensearch.transport.Netty4Plugin "Netty 4 based transport implementation" \
    >"$tmp/modules/transport-netty4/plugin-descriptor.properties"
  cp "$HERE/transport-netty4.policy" "$tmp/modules/transport-netty4/plugin-security.policy"
  descriptor analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin \
    "Adds analyzers, tokenizers and filters" >"$tmp/modules/analysis-common/plugin-descriptor.properties"
  touch "$tmp/.installed"
  mv -T "$tmp" "$HOME_DIR"
  say "installed $(find "$HOME_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
  # Homes of other versions go once no node runs from them.
  local d
  for d in "$CACHE"/opensearch-*/; do
    d="${d%/}"
    [ "$d" = "$HOME_DIR" ] || pgrep -af java | grep -qF -- "-Dopensearch.path.home=$d " || rm -rf "$d"
  done
  exec 8>&-
}

# --- node process -------------------------------------------------------------------------------------------------

configure() {
  mkdir -p "$CONF" "$DATA/data" "$DATA/logs" "$DATA/tmp"
  cat >"$CONF/opensearch.yml" <<YML
# Written by scripts/opensearch.sh on every start; edit the script, not this file.
cluster.name: cryptocast-dev
node.name: node-1
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TPORT
discovery.type: single-node
path.data: $DATA/data
path.logs: $DATA/logs
# One node: indices get no replicas, so the cluster is green.
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
YML
  cp "$HERE/log4j2.properties" "$CONF/log4j2.properties"
}

java_opts() {
  printf '%s\n' "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dfile.encoding=UTF-8 -Djna.nosys=true -Dlog4j2.disable.jmx=true -Dlog4j.shutdownHookEnabled=false \
    -Djava.locale.providers=SPI,COMPAT -Djava.security.manager=allow "-Djava.io.tmpdir=$DATA/tmp" \
    "-Dopensearch.path.home=$HOME_DIR" "-Dopensearch.path.conf=$CONF" -Dopensearch.distribution.type=tar \
    -Dopensearch.bundled_jdk=false -cp "$HOME_DIR/lib/*" org.opensearch.bootstrap.OpenSearch
}

node_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # The command line is checked too: a reused pid is never taken for the node (nor signalled).
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-Dopensearch.path.conf=$CONF " || return 1
  echo "$pid"
}

serving() {
  local body
  body="$(curl -fsS --max-time 3 "http://127.0.0.1:$PORT/_cluster/health" 2>/dev/null)" || return 1
  [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]]
}


lock() { hold_lock "$LOCKFILE" $((START_TIMEOUT + STOP_TIMEOUT + 30)); }

show_tail() {
  say "last lines of $OUTFILE and the node log:"
  tail -n 20 "$OUTFILE" >&2 2>/dev/null || true
  tail -n 30 "$DATA/logs/cryptocast-dev.log" >&2 2>/dev/null || true
}

start() {
  local pid t0=$SECONDS
  lock
  if pid="$(node_pid)"; then
    local deadline=$((SECONDS + START_TIMEOUT))
    until serving; do
      [ $SECONDS -lt $deadline ] || die "running (pid $pid) but not serving within ${START_TIMEOUT} s"
      sleep 0.5
    done
    say "already running on 127.0.0.1:$PORT (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE"
  port_open "$PORT" && die "port $PORT is taken by another process: free it or set OPENSEARCH_PORT"
  port_open "$TPORT" && die "transport port $TPORT is taken: free it or set OPENSEARCH_TRANSPORT_PORT"
  install
  configure
  local opts
  mapfile -t opts < <(java_opts)
  say "starting OpenSearch $VERSION on 127.0.0.1:$PORT (data in $DATA)"
  echo "--- $(date -Is) start" >>"$OUTFILE"
  # OpenSearch refuses to run as root, which CI and these machines are: as root, the JVM runs in a user namespace
  # of its own as uid 1000, which outside it is still this user (its files stay readable and writable) without
  # root's privileges. setsid: the node outlives the shell or test runner that started it.
  local as=()
  [ "$(id -u)" = 0 ] && as=(unshare --user --map-user=1000 --map-group=1000)
  setsid "${as[@]}" "$JAVA" "${opts[@]}" >>"$OUTFILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until serving; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_tail
      die "the node exited during start-up"
    fi
    if [ $SECONDS -ge $deadline ]; then
      show_tail
      stop_pid "$pid"
      die "the node did not start within ${START_TIMEOUT} s (OPENSEARCH_START_TIMEOUT)"
    fi
    sleep 0.5
  done
  say "ready on 127.0.0.1:$PORT (pid $pid) after $((SECONDS - t0)) s"
}

stop_pid() {
  stop_process "$1" "$STOP_TIMEOUT"
  rm -f "$PIDFILE"
}

stop() {
  lock
  local pid
  if ! pid="$(node_pid)"; then
    rm -f "$PIDFILE"
    say "not running (data dir $DATA)"
    return 0
  fi
  say "stopping pid $pid"
  stop_pid "$pid"
}

kill_node() {
  local pid
  pid="$(node_pid)" || {
    say "not running"
    return 0
  }
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$PIDFILE"
  say "killed pid $pid"
}

status() {
  local pid
  if pid="$(node_pid)"; then
    if serving; then
      say "running on 127.0.0.1:$PORT (pid $pid, data in $DATA)"
      return 0
    fi
    say "running (pid $pid) but not serving on 127.0.0.1:$PORT"
    return 1
  fi
  say "not running (data dir $DATA)"
  return 3
}

reset() {
  stop
  case "$DATA" in
  / | "$ROOT" | "$HOME") die "refusing to delete $DATA" ;;
  esac
  rm -rf "$DATA"
  say "data wiped ($DATA)"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
kill) kill_node ;;
status) status ;;
reset) reset ;;
*)
  echo "usage: $0 install|start|stop|kill|status|reset" >&2
  exit 2
  ;;
esac
