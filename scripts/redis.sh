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

now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }
since() {  # since T0_MS: seconds elapsed, e.g. "1.23 s"
  local d=$(($(now_ms) - $1))
  printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10))
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

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
  ARGS=()
  local passthrough="${PASSTHROUGH:-0}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port)   [[ $# -ge 2 ]] || die "--port needs a value"; PORT="$2"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --data)   [[ $# -ge 2 ]] || die "--data needs a value"; DATA="$2"; shift 2 ;;
      --data=*) DATA="${1#*=}"; shift ;;
      -h|--help) [[ $passthrough -eq 1 ]] && { ARGS+=("$@"); break; }; usage; exit 0 ;;
      --) shift; ARGS+=("$@"); break ;;
      *) if [[ $passthrough -eq 1 ]]; then ARGS+=("$@"); break; fi
         ARGS+=("$1"); shift ;;
    esac
  done
  [[ -z "$PORT" ]] && PORT="${REDIS_PORT:-}"
  if [[ -n "$DATA" ]]; then
    DATA="$(abspath_from_caller "$DATA")"
    DATA="${DATA%/}"
    [[ -z "$PORT" ]] && PORT="$(configured_port)"
  fi
  PORT="${PORT:-$DEFAULT_PORT}"
  [[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1 && "$PORT" -le 65535 ]] || die "bad port '$PORT'"
  [[ -n "$DATA" ]] || DATA="$CACHE/data-$PORT"
  PIDFILE="$DATA/redis.pid"
  LOGFILE="$DATA/redis.log"
}

no_args() { [[ ${#ARGS[@]} -eq 0 ]] || die "$1: unknown argument '${ARGS[0]}' (see --help)"; }

configured_port() {  # the port in $DATA/redis.conf (written by start), if any
  sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$DATA/$CONF" 2>/dev/null | head -n1 || true
}

ours() { [[ -f "$DATA/$MARKER" ]]; }

# alive PID: the process exists and is not a zombie. An exited server stays a
# zombie until its parent (init, once this script has returned) reaps it, which
# some container inits do only now and then; kill -0 succeeds on a zombie.
alive() {
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"
  [[ -n "$s" && "${s%% *}" != Z ]]
}
# The same function for the watchdog's inner shell.
ALIVE_FN="$(declare -f alive)"

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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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

log_tail() {
  local n="${1:-40}"
  if [[ -s "$LOGFILE" ]]; then
    echo "--- $LOGFILE (last $n lines) ---"
    tail -n "$n" "$LOGFILE"
  fi
}

fail() {  # fail STEP MESSAGE: the log tail, then die
  log_tail 40 >&2
  die "$1: $2"
}

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
  local owner=""
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --timeout)   [[ $# -ge 2 ]] || die "--timeout needs a value"; READY_TIMEOUT="$2"; shift 2 ;;
      --timeout=*) READY_TIMEOUT="${1#*=}"; shift ;;
      --owner-pid) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--owner-pid needs a pid"; owner="$2"; shift 2 ;;
      *) die "start: unknown argument '$1' (see --help)" ;;
    esac
  done
  [[ "$READY_TIMEOUT" =~ ^[0-9]+$ && "$READY_TIMEOUT" -ge 1 ]] || die "bad --timeout '$READY_TIMEOUT'"
  local t_all
  t_all="$(now_ms)"
  need_redis
  mkdir -p "$CACHE/locks"
  exec 9>"$CACHE/locks/port-$PORT.lock"
  flock 9

  local pid
  if pid="$(server_pid)"; then
    local cport
    cport="$(configured_port)"
    [[ "$cport" == "$PORT" ]] \
      || die "start: the server on $DATA is already running on port $cport, not $PORT (stop it first)"
    log "Redis is already running on 127.0.0.1:$PORT (pid $pid, data $DATA)"
    url
    return 0
  fi
  if port_open "$PORT"; then
    local who=""
    command -v ss >/dev/null 2>&1 && who="$(ss -ltnpH "sport = :$PORT" 2>/dev/null | head -n1 || true)"
    die "start: port $PORT is in use by another process${who:+: $who} (choose another with --port or REDIS_PORT)"
  fi
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
  if [[ -n "$owner" ]]; then
    # Watchdog: ends with the server; stops it when the owner process is gone.
    # shellcheck disable=SC2016  # expanded by the inner shell
    setsid bash -c "$ALIVE_FN"'
                    while alive "$1" && alive "$2"; do sleep 1; done
                    if alive "$2"; then exec "$0" stop --port "$3" --data "$4"; fi' \
      "$REPO_ROOT/scripts/redis.sh" "$owner" "$pid" "$PORT" "$DATA" </dev/null >>"$CACHE/watchdog.log" 2>&1 9>&- &
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
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  if alive "$pid"; then
    warn "redis-server pid $pid did not stop in $STOP_TIMEOUT s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
  fi
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
  parse_logs_args "${ARGS[@]+"${ARGS[@]}"}"
  local n="$LOGS_N" follow="$LOGS_FOLLOW"
  [[ -f "$LOGFILE" ]] || die "no log file $LOGFILE"
  if [[ $follow -eq 1 ]]; then
    exec tail -n "$n" -F "$LOGFILE"
  fi
  tail -n "$n" "$LOGFILE"
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
