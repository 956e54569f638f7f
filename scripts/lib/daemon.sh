# shellcheck shell=bash
# What the scripts that run a local server (kafka.sh, mlflow.sh, opensearch.sh) share: tagged messages, a port
# probe, the start/stop lock and stopping a process. Sourced after setting TAG (the name shown in brackets, and the
# script's name) and TAG_COLOR (an ANSI colour: 35 magenta, 33 yellow, 36 cyan).

say() { printf '\033[1;%sm[%s]\033[0m %s\n' "${TAG_COLOR:-36}" "$TAG" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# hold_lock FILE SECONDS: one start or stop at a time per data directory. The lock is file descriptor 9 of this
# shell, held until the script exits.
hold_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock -w "$2" 9 || die "another scripts/$TAG.sh holds $1"
}

# stop_process PID SECONDS [group]: SIGTERM (to the process group of PID with "group"), SIGKILL when it has not
# ended after SECONDS.
stop_process() {
  local pid="$1" deadline=$((SECONDS + $2)) group="${3:-}"
  if [ -n "$group" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "no clean shutdown within $2 s: killing pid $pid"
      if [ -n "$group" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
}
