#!/usr/bin/env bash
# A real Apache Kafka 4 broker for development and tests, without Docker: the jars come from Maven Central,
# the broker runs as one JVM in KRaft mode (combined broker + controller) on 127.0.0.1.
#
#   scripts/kafka.sh install   fetch the broker jars into .tools/kafka/libs (once)
#   scripts/kafka.sh start     format storage (once) and start in the background; waits until it serves
#   scripts/kafka.sh stop      graceful stop, then kill
#   scripts/kafka.sh status    running or not
#   scripts/kafka.sh reset     stop and wipe the data dir
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_DATA_DIR (.data/kafka), KAFKA_HEAP (1g).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIBS="$ROOT/.tools/kafka/libs"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
DATA="${KAFKA_DATA_DIR:-$ROOT/.data/kafka}"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/broker.log"
CONF="$DATA/server.properties"

say() { printf '\033[1;35m[kafka]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

install() {
  if [ -f "$LIBS/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka from Maven Central"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
  say "fetching Apache Kafka jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$LIBS" -DincludeScope=runtime
  touch "$LIBS/.complete"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_cmd() {
  java -Xms256m -Xmx"${KAFKA_HEAP:-1g}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml" -Dkafka.logs.file="$LOGFILE" \
    -cp "$LIBS/*" "$@"
}

configure() {
  mkdir -p "$DATA/log"
  cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/log
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
num.network.threads=2
num.io.threads=4
PROPS
}

start() {
  install
  if running; then say "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return; fi
  if port_open "$PORT"; then die "port $PORT is taken by another process (another broker?): stop it or set KAFKA_PORT"; fi
  configure
  if [ ! -f "$DATA/log/meta.properties" ]; then
    local id
    id="$(java_cmd kafka.tools.StorageTool random-uuid | tail -1)"
    say "formatting KRaft storage in $DATA (cluster $id)"
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$CONF" --standalone >/dev/null
  fi
  say "starting broker on 127.0.0.1:$PORT"
  nohup bash -c "$(declare -f java_cmd); LIBS='$LIBS' ROOT='$ROOT' LOGFILE='$LOGFILE' KAFKA_HEAP='${KAFKA_HEAP:-1g}' java_cmd kafka.Kafka '$CONF'" \
    >"$DATA/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$PORT" && grep -q "Kafka Server started\|KafkaRaftServer.*started\|started (kafka.server" "$LOGFILE" 2>/dev/null; do
    if ! running; then tail -30 "$DATA/stdout.log" "$LOGFILE" 2>/dev/null >&2 || true; die "broker exited during start-up"; fi
    if [ $SECONDS -ge $deadline ]; then tail -30 "$LOGFILE" >&2 || true; die "broker did not start within ${KAFKA_START_TIMEOUT:-90}s"; fi
    sleep 0.5
  done
  say "ready (pid $(cat "$PIDFILE"))"
}

stop() {
  if ! running; then say "not running"; rm -f "$PIDFILE"; return; fi
  local pid; pid="$(cat "$PIDFILE")"
  # The pid is the wrapping bash; stop its java child too.
  local pids; pids="$pid $(pgrep -P "$pid" || true)"
  kill $pids 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 $pids 2>/dev/null || break
    sleep 0.5
  done
  kill -9 $pids 2>/dev/null || true
  rm -f "$PIDFILE"
  say "stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then say "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; else say "not running"; exit 3; fi ;;
  reset) stop; rm -rf "$DATA"; say "data wiped" ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
