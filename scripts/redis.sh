#!/usr/bin/env bash
# A real Redis server for tests and local use: Debian's `redis-server` package
# (scripts/deps/test.txt), on 127.0.0.1 with a TCP port, without persistence.
# No Docker; a system Redis (port 6379, /etc/redis) is neither used nor disturbed.
#
# Usage: scripts/redis.sh COMMAND [--port P] [--data DIR] [options]
#
#   start  [--timeout S] [--owner-pid PID]
#             install the `test` packages if redis-server is missing; write
#             DIR/redis.conf; start redis-server in the background (its own
#             session); wait until PING answers on 127.0.0.1:P; prints the URL
#             redis://127.0.0.1:P (stdout). Already running: says so, exits 0.
#             --owner-pid: stop the server when process PID ends (so a killed
#             test run leaves no server behind)
#   stop                    SIGTERM (SIGKILL after 30 s); nothing is saved
#   status                  running? (exit 0) / not running (exit 3)
#   cli    [REDIS-CLI ARGS...]   redis-cli -h 127.0.0.1 -p P ARGS...
#   logs   [-n N] [-f]      tail the server log
#   reset                   stop, then delete the data dir
#
# Defaults: --port $REDIS_PORT, else the port the data dir was last started
# with, else 6380 (6379 is left to a system Redis); --data .cache/redis/data-<port>.
# Settings: bind 127.0.0.1, protected-mode yes, save "" (no RDB snapshots),
# appendonly no, so a restart starts empty; pidfile, log and conf in the data dir.
# Root is fine (Redis runs as whoever starts it). See docs/REDIS_TEST_SERVER.md.
set -euo pipefail
# shellcheck source=scripts/common.sh disable=SC1091  # followed with shellcheck -x
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CACHE="${EMBEDSTREAM_REDIS_CACHE:-$REPO_ROOT/.cache/redis}"
DEFAULT_PORT=6380
READY_TIMEOUT=30
STOP_TIMEOUT=30
MARKER=".embedstream-redis"   # in the data dir: made by this script (reset deletes nothing else)
CONF="redis.conf"             # in the data dir: rewritten by every start

usage() { script_help redis.sh; }

# ---------------------------------------------------------------- prerequisites

need_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  install_group test \
    || die "redis-server is needed (Debian: scripts/install_deps.sh test installs it)"
  command -v redis-server >/dev/null 2>&1 \
    || die "redis-server is still missing after installing the test packages (Debian: apt-get install redis-server)"
}

need_cli() {
  command -v redis-cli >/dev/null 2>&1 && return 0
  need_redis
  command -v redis-cli >/dev/null 2>&1 \
    || die "redis-cli is needed (Debian: apt-get install redis-tools; redis-server depends on it)"
}

# ---------------------------------------------------------------- options and paths

PORT=""
DATA=""

parse_common() {  # --port/--data anywhere (for cli: only before the redis-cli arguments)
  parse_port_data "$@"
  [[ -z "$PORT" ]] && PORT="${REDIS_PORT:-}"
  if [[ -n "$DATA" ]]; then
    DATA="$(abspath_from_caller "$DATA")"
    DATA="${DATA%/}"
    [[ -z "$PORT" ]] && PORT="$(configured_port)"
  fi
  PORT="${PORT:-$DEFAULT_PORT}"
  check_port
  [[ -n "$DATA" ]] || DATA="$CACHE/data-$PORT"
  PIDFILE="$DATA/redis.pid"
  LOGFILE="$DATA/redis.log"
}

configured_port() {  # the port in $DATA/redis.conf (written by start), if any
  sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$DATA/$CONF" 2>/dev/null | head -n1 || true
}

ours() { [[ -f "$DATA/$MARKER" ]]; }

# Pid of the redis-server of $DATA, if it runs (checks the process name, so a
# stale pid file whose pid was reused is not taken for the server).
server_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(head -n1 "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server ]] || return 1
  printf '%s\n' "$pid"
}

ping() {  # PONG from 127.0.0.1:$PORT? redis-cli when there, else bash's /dev/tcp
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null)" == PONG ]]
  else
    # shellcheck disable=SC2016  # expanded by the inner shell
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
                       printf "PING\r\n" >&3
                       IFS= read -r line <&3 && [[ "$line" == "+PONG"* ]]' "$PORT" 2>/dev/null
  fi
}

url() { printf 'redis://127.0.0.1:%s\n' "$PORT"; }

# ---------------------------------------------------------------- start

write_conf() {
  local tmp="$DATA/$CONF.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/redis.sh start; rewritten on every start.
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize no
supervised no
pidfile "$PIDFILE"
logfile "$LOGFILE"
loglevel notice
dir "$DATA"
save ""
appendonly no
EOF
  mv "$tmp" "$DATA/$CONF"
}

cmd_start() {
  parse_common "$@"
  parse_start_args "${ARGS[@]+"${ARGS[@]}"}"
  local t_all
  t_all="$(now_ms)"
  need_redis
  start_lock "$CACHE/locks/port-$PORT.lock"

  local pid
  if pid="$(server_pid)"; then
    same_port_or_die
    log "Redis is already running on 127.0.0.1:$PORT (pid $pid, data $DATA)"
    url
    return 0
  fi
  die_if_port_busy "$PORT" "choose another with --port or REDIS_PORT" "start: "
  if [[ -e "$DATA" && ! -f "$DATA/$MARKER" && -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "start: $DATA exists, is not empty and was not made by this script; refusing to use it (choose another --data)"
  fi
  mkdir -p "$DATA"
  touch "$DATA/$MARKER"
  rm -f "$PIDFILE"
  write_conf
  printf '\n--- scripts/redis.sh start %s, port %s ---\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$PORT" >>"$LOGFILE"

  local t0 t_ready
  t0="$(now_ms)"
  # setsid: its own session, so a Ctrl-C in the caller's terminal does not reach
  # it. The inner shell writes its pid, then exec's redis-server (same pid; it
  # rewrites the pid file itself once it listens and deletes it when it ends).
  # stdout/stderr (config errors before the log is open) go to the log too.
  # fd 9 (the lock) must not stay open in it.
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid bash -c 'echo $$ >"$0"; exec redis-server "$1"' "$PIDFILE" "$DATA/$CONF" \
    </dev/null >>"$LOGFILE" 2>&1 9>&- &
  local _
  for _ in $(seq 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.02; done
  pid="$(head -n1 "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || fail "start" "redis-server did not start (data $DATA)"
  local deadline=$((SECONDS + READY_TIMEOUT))
  until ping; do
    alive "$pid" || { rm -f "$PIDFILE"; fail "start" "redis-server exited during start-up (port $PORT, data $DATA)"; }
    if ((SECONDS >= deadline)); then
      kill -TERM "$pid" 2>/dev/null || true
      fail "start" "no PONG from 127.0.0.1:$PORT after $READY_TIMEOUT s (the server was stopped)"
    fi
    sleep 0.05
  done
  t_ready="$(since "$t0")"
  if [[ -n "$OWNER_PID" ]]; then
    start_watchdog "$CACHE/watchdog.log" "$OWNER_PID" "$pid" \
      "$REPO_ROOT/scripts/redis.sh" stop --port "$PORT" --data "$DATA"
  fi
  log "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') ready on 127.0.0.1:$PORT (pid $pid, ready in $t_ready, total $(since "$t_all"); data $DATA; log $LOGFILE)"
  url
}

# ---------------------------------------------------------------- stop / status / reset

cmd_stop() {
  parse_common "$@"
  no_args stop
  local pid
  if ! pid="$(server_pid)"; then
    rm -f "$PIDFILE"
    log "no server is running on $DATA"
    return 0
  fi
  local t0
  t0="$(now_ms)"
  stop_pid "$pid" "$STOP_TIMEOUT" redis-server
  rm -f "$PIDFILE"
  log "stopped Redis on 127.0.0.1:$PORT (pid $pid, $(since "$t0"); nothing is saved)"
}

cmd_status() {
  parse_common "$@"
  no_args status
  local pid
  if pid="$(server_pid)"; then
    echo "running: pid $pid, redis://127.0.0.1:$(configured_port), data $DATA"
  else
    echo "not running (data dir $DATA)"
    return 3
  fi
}

cmd_reset() {
  parse_common "$@"
  no_args reset
  cmd_stop --port "$PORT" --data "$DATA"
  if [[ ! -e "$DATA" ]]; then
    log "no data dir $DATA"
    return 0
  fi
  if ! ours && [[ -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "reset: $DATA was not made by this script; refusing to delete it"
  fi
  rm -rf "$DATA"
  log "deleted $DATA"
}

# ---------------------------------------------------------------- clients

cmd_cli() {
  PASSTHROUGH=1 parse_common "$@"
  need_cli
  exec redis-cli -h 127.0.0.1 -p "$PORT" "${ARGS[@]+"${ARGS[@]}"}"
}

cmd_logs() {
  parse_common "$@"
  tail_log "$LOGFILE" "${ARGS[@]+"${ARGS[@]}"}"
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd="$1"; shift
case "$cmd" in
  start)  cmd_start "$@" ;;
  stop)   cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  cli)    cmd_cli "$@" ;;
  logs)   cmd_logs "$@" ;;
  reset)  cmd_reset "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
