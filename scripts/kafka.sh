#!/usr/bin/env bash
# A real Apache Kafka 4 broker for development and tests, without Docker: the jars come from Maven Central and
# the broker runs as one JVM in KRaft mode (combined broker + controller, single voter) on 127.0.0.1.
#
#   scripts/kafka.sh install   fetch the broker jars into .tools/kafka/libs/<version> (once per scripts/kafka/pom.xml)
#   scripts/kafka.sh start     install if needed, format the storage (once), start in the background and wait until
#                              the broker serves metadata; does nothing if it already does (idempotent)
#   scripts/kafka.sh stop      graceful stop (SIGTERM: controlled shutdown), SIGKILL after KAFKA_STOP_TIMEOUT
#   scripts/kafka.sh status    exit 0 if running and serving, 1 if running but not serving (yet), 3 if not running
#   scripts/kafka.sh reset     stop, then wipe the data dir
#
# Environment:
#   KAFKA_PORT (9092)             client listener, 127.0.0.1 only
#   KAFKA_CONTROLLER_PORT (9093)  KRaft controller listener
#   KAFKA_DATA_DIR (.data/kafka)  logs, metadata, config, pid file and broker log of this broker
#   KAFKA_HEAP (1g)               JVM max heap
#   KAFKA_START_TIMEOUT (180)     seconds `start` waits for the broker to serve (2-3 s on an idle machine)
#   KAFKA_STOP_TIMEOUT (30)       seconds `stop` waits for a graceful shutdown
#   KAFKA_SASL_SSL_PORT (none)    also a SASL_SSL listener on this port, as a managed Kafka has one (tests of the
#                                 clients' TLS and SASL): advertised as localhost; its certificates are made at the
#                                 first start into $KAFKA_DATA_DIR/tls (ca.pem: the CA; client.pem, client.key: a client
#                                 certificate for mutual TLS, which the listener accepts but does not require); SASL
#                                 PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for the user KAFKA_SASL_USER (cryptocast) with
#                                 the password KAFKA_SASL_PASSWORD (required with the port; letters and digits: SCRAM
#                                 users are written into the storage when it is formatted, so on a fresh data dir only)
#   KAFKA_SASL_REAUTH_MS (none)   connections.max.reauth.ms: SASL clients must log in again this often (KIP-368), as
#                                 some managed Kafkas require; a password changed or revoked then reaches running
#                                 clients within this time (tests of a rotated Secret)
#
#   scripts/kafka.sh scram-password   sets the SCRAM-SHA-512 and -256 password of KAFKA_SASL_USER to KAFKA_SASL_PASSWORD
#                                     on the running broker (what kafka-configs.sh --alter --add-config does; through
#                                     the plain listener), as an operator rotating a Secret does
#
# Several brokers can run side by side with different ports and data dirs (tests that restart a broker use
# their own). Commands on one data dir are serialised with a lock, so concurrent `start`s (parallel test files)
# start one broker. If another broker (say, another checkout's) already serves KAFKA_PORT, `start` uses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J_CONF="$ROOT/scripts/kafka/log4j2.xml"
LIBS_ROOT="$ROOT/.tools/kafka/libs"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
DATA="$(realpath -m "${KAFKA_DATA_DIR:-$ROOT/.data/kafka}")"
HEAP="${KAFKA_HEAP:-1g}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
SASL_USER="${KAFKA_SASL_USER:-cryptocast}"
TLS_DIR="$DATA/tls"

CONF="$DATA/server.properties"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/broker.log" # log4j (WARN and the server's start/stop lines)
OUTFILE="$DATA/stdout.log" # the JVM's own stdout/stderr (crashes before log4j is up, OOM)
LOCKFILE="$DATA.lock"      # beside the data dir, so that `reset` does not delete a held lock

TAG=kafka TAG_COLOR=35
# shellcheck source=lib/daemon.sh
source "$ROOT/scripts/lib/daemon.sh"
# shellcheck source=lib/test-ca.sh
source "$ROOT/scripts/lib/test-ca.sh"

# --- install --------------------------------------------------------------------------------------------------

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"; }
# Each pom gets its own directory under .tools/kafka/libs, and a broker runs from the real path of its own: a
# version change installs beside it and never replaces jars under a running JVM (which loads classes lazily).
LIBS="$LIBS_ROOT/kafka_2.13-$(kafka_version)-$(sha256sum "$POM" | cut -c1-8)"

# True if a running JVM has this path on its class path.
in_use() { pgrep -af java 2>/dev/null | grep -qF -- "$1"; }

install() {
  mkdir -p "$LIBS_ROOT"
  exec 8>"$LIBS_ROOT/.install.lock"
  flock -w 600 8 || die "another install is running"
  if [ -f "$LIBS/.installed" ]; then
    prune_libs
    exec 8>&-
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka from Maven Central"
  command -v "$JAVA" >/dev/null || die "Java 17+ is needed to run Kafka"
  local t0=$SECONDS tmp="$LIBS.partial"
  say "fetching Apache Kafka $(kafka_version) and its runtime dependencies from Maven Central into $LIBS"
  rm -rf "$tmp"
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$LIBS.log" 2>&1; then
    grep -E 'ERROR|FATAL' "$LIBS.log" | head -20 >&2 || true
    die "mvn could not fetch the broker (is Maven Central reachable?): see $LIBS.log"
  fi
  rm -f "$LIBS.log"
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "no kafka_2.13 jar in $tmp"
  touch "$tmp/.installed"
  mv -T "$tmp" "$LIBS"
  say "installed $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
  prune_libs
  exec 8>&-
}

# Other versions go once no broker runs from them (jars that older versions of this script put directly in
# libs/ included). Called with the install lock held.
prune_libs() {
  local d
  for d in "$LIBS_ROOT"/*/; do
    d="${d%/}"
    [ -d "$d" ] || continue
    [ "$d" = "$LIBS" ] || in_use "$d/" || rm -rf "$d"
  done
  if compgen -G "$LIBS_ROOT/*.jar" >/dev/null && ! in_use "-cp $LIBS_ROOT/*"; then
    rm -f "$LIBS_ROOT"/*.jar "$LIBS_ROOT/.complete"
  fi
}

# --- broker process ---------------------------------------------------------------------------------------------

java_opts() {
  printf '%s\n' -Xms128m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$LOG4J_CONF" -Dlog4j2.shutdownHookEnabled=false \
    "-Dkafka.logs.file=$LOGFILE" \
    "-Dkafka.logs.dir=$DATA" -cp "$LIBS/*"
}

# Prints the pid of this data dir's broker if it runs. The command line is checked too, so that a stale pid
# file whose pid was reused by another process is never taken for the broker (nor signalled).
broker_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid p
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Earlier versions of this script recorded a wrapping bash whose child is the JVM: look at the children too.
  for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $CONF "; then
      echo "$p"
      return 0
    fi
  done
  return 1
}


# True when a Kafka broker on PORT answers a Metadata request listing at least one broker. In KRaft the listener
# opens before the broker has caught up with the metadata log and been unfenced; until then it lists no
# broker (itself included), and clients cannot produce or join groups. The request is written by hand, in the
# Kafka protocol, so that waiting costs no JVM start:
#   size=20 | api_key=3 (Metadata) | api_version=4 | correlation_id=1 | client_id="probe" (int16 length + bytes)
#   | topics=[] (int32 0: no topic, only the brokers) | allow_auto_topic_creation=false
# Version 4 is the oldest one Kafka 4 serves (KIP-896). The response starts with size, correlation_id,
# throttle_time_ms and the brokers array length: 4 big-endian int32s.
serves_metadata() {
  local bytes
  bytes="$(timeout 3 bash -c "
    exec 3<>/dev/tcp/127.0.0.1/$PORT || exit 1
    printf '\x00\x00\x00\x14\x00\x03\x00\x04\x00\x00\x00\x01\x00\x05probe\x00\x00\x00\x00\x00' >&3
    head -c 16 <&3 | od -An -tu1 -v" 2>/dev/null)" || return 1
  # shellcheck disable=SC2086 # split into the 16 byte values on purpose
  set -- $bytes
  [ $# -eq 16 ] || return 1
  local corr=$((${5} << 24 | ${6} << 16 | ${7} << 8 | ${8}))
  local brokers=$((${13} << 24 | ${14} << 16 | ${15} << 8 | ${16}))
  [ "$corr" -eq 1 ] && [ "$brokers" -ge 1 ]
}

configure() {
  mkdir -p "$DATA/log"
  local listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT"
  local advertised="PLAINTEXT://127.0.0.1:$PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$SASL_SSL_PORT" ]; then
    listeners+=",SASL_SSL://localhost:$SASL_SSL_PORT"
    # The name in the broker's certificate: clients check it against the address they were given.
    advertised+=",SASL_SSL://localhost:$SASL_SSL_PORT"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$CONF" <<PROPS
# Written by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA/log

# Topics are created explicitly (KafkaBus.ensureTopics), never by a typo.
auto.create.topics.enable=false
num.partitions=4
default.replication.factor=1
min.insync.replicas=1

# One node: internal topics have one replica; few partitions keep their creation fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests start consumers and expect them to get partitions at once.
group.initial.rebalance.delay.ms=0

log.retention.hours=168
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
PROPS
  [ -z "$SASL_SSL_PORT" ] || configure_sasl_ssl
}

# The SASL_SSL listener's settings (see KAFKA_SASL_SSL_PORT). The PLAIN user's password is in the JAAS line, so the
# file is the owner's only.
configure_sasl_ssl() {
  [[ "${KAFKA_SASL_PASSWORD:-}" =~ ^[A-Za-z0-9]{8,}$ ]] ||
    die "KAFKA_SASL_SSL_PORT needs KAFKA_SASL_PASSWORD: 8 or more letters and digits"
  [[ "$SASL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_USER: letters, digits, '.', '_' and '-' only"
  make_certificates
  chmod 600 "$CONF"
  cat >>"$CONF" <<PROPS

# SASL_SSL listener (KAFKA_SASL_SSL_PORT): TLS with the certificates of $TLS_DIR, SASL PLAIN and SCRAM.
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$KAFKA_SASL_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$(cat "$TLS_DIR/keystore.pass")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
# A client certificate is checked when one is given (mutual TLS), not required.
ssl.client.auth=requested
PROPS
  [ -z "${KAFKA_SASL_REAUTH_MS:-}" ] || echo "connections.max.reauth.ms=$KAFKA_SASL_REAUTH_MS" >>"$CONF"
}

# The SCRAM credentials of SASL_USER set to KAFKA_SASL_PASSWORD on the running broker (see the header).
scram_password() {
  [[ "${KAFKA_SASL_PASSWORD:-}" =~ ^[A-Za-z0-9]{8,}$ ]] || die "scram-password needs KAFKA_SASL_PASSWORD: 8 or more letters and digits"
  serves_metadata || die "no broker serves 127.0.0.1:$PORT"
  # Java's single-file source launcher: the admin client of the broker's own jars, no build step.
  "$JAVA" -Xmx128m "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.file=$LOGFILE" -cp "$LIBS/*" "$ROOT/scripts/kafka/ScramPassword.java" \
    "127.0.0.1:$PORT" "$SASL_USER" >>"$OUTFILE" 2>&1 || die "changing the SCRAM password of $SASL_USER failed: see $OUTFILE"
  say "SCRAM password of $SASL_USER changed"
}

# A CA, the broker's certificate (for localhost and 127.0.0.1) in a PKCS12 keystore, and a client certificate, made
# once per data dir with openssl (EC keys: fast to make). Nothing of it is kept in the repository.
make_certificates() {
  [ -f "$TLS_DIR/broker.p12" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the SASL_SSL listener's certificates"
  local tmp="$TLS_DIR.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  (
    set -e
    cd "$tmp"
    umask 077
    test_ca .
    test_cert . broker localhost subjectAltName=DNS:localhost,IP:127.0.0.1 extendedKeyUsage=serverAuth
    test_cert . client "$SASL_USER" extendedKeyUsage=clientAuth
    head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >keystore.pass
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
      -passout "file:keystore.pass" -out broker.p12
  ) >>"$OUTFILE" 2>&1 || die "making the SASL_SSL certificates failed: see $OUTFILE"
  mv -T "$tmp" "$TLS_DIR"
}

# A Kafka Uuid: 16 random bytes, base64 URL-safe without padding (22 characters). Kafka never hands out ids that
# start with '-' (they read as command-line options), nor do we.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [ "${id:0:1}" != "-" ] && break
  done
  echo "$id"
}

format_once() {
  if [ -f "$DATA/log/meta.properties" ]; then
    # SCRAM users are written by the format only: a data dir formatted without them has none.
    if [ -n "$SASL_SSL_PORT" ] && [ "$(cat "$DATA/scram-user" 2>/dev/null)" != "$SASL_USER" ]; then
      die "$DATA was formatted without the SCRAM user $SASL_USER: run \`scripts/kafka.sh reset\` first (it wipes the data)"
    fi
    return 0
  fi
  local id opts
  id="$(new_cluster_id)"
  mapfile -t opts < <(java_opts)
  # The SASL_SSL listener's SCRAM users exist from the start: written into the metadata log with the format.
  local scram=()
  if [ -n "$SASL_SSL_PORT" ]; then
    local m
    for m in SCRAM-SHA-512 SCRAM-SHA-256; do
      scram+=(--add-scram "$m=[name=$SASL_USER,password=$KAFKA_SASL_PASSWORD]")
    done
  fi
  say "formatting KRaft storage in $DATA/log (cluster $id, standalone controller)"
  "$JAVA" "${opts[@]}" kafka.tools.StorageTool format --standalone -t "$id" -c "$CONF" "${scram[@]}" \
    >>"$OUTFILE" 2>&1 9>&- ||
    {
      tail -20 "$OUTFILE" >&2
      die "formatting the storage failed"
    }
  [ -z "$SASL_SSL_PORT" ] || echo "$SASL_USER" >"$DATA/scram-user"
}

show_tail() {
  say "last lines of $OUTFILE and $LOGFILE:"
  tail -n 15 "$OUTFILE" >&2 2>/dev/null || true
  tail -n 30 "$LOGFILE" >&2 2>/dev/null || true
}

lock() { hold_lock "$LOCKFILE" $((START_TIMEOUT + STOP_TIMEOUT + 30)); }

wait_until_serving() {
  local pid="$1" t0="$2" deadline=$((SECONDS + START_TIMEOUT))
  until serves_metadata; do
    if ! broker_pid >/dev/null; then
      show_tail
      die "the broker exited during start-up"
    fi
    if [ $SECONDS -ge $deadline ]; then
      show_tail
      say "not serving within ${START_TIMEOUT} s: stopping it"
      stop_pid "$pid"
      die "the broker did not start within ${START_TIMEOUT} s (KAFKA_START_TIMEOUT)"
    fi
    sleep 0.25
  done
  say "ready on 127.0.0.1:$PORT${SASL_SSL_PORT:+ (SASL_SSL on localhost:$SASL_SSL_PORT)} (pid $pid) after $((SECONDS - t0)) s"
}

start() {
  local pid t0=$SECONDS
  lock
  if pid="$(broker_pid)"; then
    if serves_metadata; then
      say "already running on 127.0.0.1:$PORT (pid $pid)"
      return 0
    fi
    say "running (pid $pid) but not serving yet: waiting"
    wait_until_serving "$pid" "$t0"
    return 0
  fi
  rm -f "$PIDFILE"
  if port_open "$PORT"; then
    if serves_metadata; then
      say "a Kafka broker not started from $DATA already serves 127.0.0.1:$PORT: using it"
      return 0
    fi
    die "port $PORT is taken by a process that is not a serving Kafka broker: free it or set KAFKA_PORT"
  fi
  port_open "$CPORT" && die "controller port $CPORT is taken: free it or set KAFKA_CONTROLLER_PORT"
  if [ -n "$SASL_SSL_PORT" ] && port_open "$SASL_SSL_PORT"; then
    die "SASL_SSL port $SASL_SSL_PORT is taken: free it or set KAFKA_SASL_SSL_PORT"
  fi
  install
  configure
  format_once
  local opts
  mapfile -t opts < <(java_opts)
  say "starting Kafka $(kafka_version) on 127.0.0.1:$PORT (data in $DATA)"
  echo "--- $(date -Is) start" >>"$OUTFILE"
  # setsid: the broker gets its own session, so that it outlives the shell or test runner that started it and
  # is not hit by signals sent to their process group. fd 9 (the lock) is not inherited.
  setsid "$JAVA" "${opts[@]}" kafka.Kafka "$CONF" >>"$OUTFILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_until_serving "$pid" "$t0"
}

# SIGTERM makes Kafka shut down cleanly (flush, controlled shutdown, clean-shutdown marker: no log recovery on
# the next start); SIGKILL only if it does not finish in time.
stop_pid() {
  stop_process "$1" "$STOP_TIMEOUT"
  rm -f "$PIDFILE"
}

stop() {
  lock
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PIDFILE"
    say "not running (data dir $DATA)"
    return 0
  fi
  local t0=$SECONDS
  say "stopping pid $pid"
  stop_pid "$pid"
  say "stopped after $((SECONDS - t0)) s"
}

status() {
  local pid
  if pid="$(broker_pid)"; then
    if serves_metadata; then
      say "running on 127.0.0.1:$PORT (pid $pid, data in $DATA)"
      return 0
    fi
    say "running (pid $pid) but not serving on 127.0.0.1:$PORT"
    return 1
  fi
  if serves_metadata; then
    say "not running from $DATA, but another Kafka broker serves 127.0.0.1:$PORT"
  else
    say "not running (data dir $DATA)"
  fi
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
status) status ;;
reset) reset ;;
scram-password) scram_password ;;
*)
  echo "usage: $0 install|start|stop|status|reset|scram-password" >&2
  exit 2
  ;;
esac
