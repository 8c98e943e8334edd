# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; do not run it.
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Sets REPO_ROOT (absolute) and CALLER_PWD (the directory the user ran from),
# then cd's to REPO_ROOT so every script works from any cwd.

CALLER_PWD="${CALLER_PWD:-$PWD}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export REPO_ROOT CALLER_PWD
cd "$REPO_ROOT" || exit 1

log()  { printf '[embedstream] %s\n' "$*" >&2; }
warn() { printf '[embedstream] WARNING: %s\n' "$*" >&2; }
die()  { printf '[embedstream] ERROR: %s\n' "$*" >&2; exit 1; }

# Absolute form of a path the user typed (relative to where they ran the script).
abspath_from_caller() {
  local p="$1"
  # shellcheck disable=SC2088  # matching a literal "~" the shell did not expand
  case "$p" in
    /*) printf '%s\n' "$p" ;;
    "~"|"~/"*) printf '%s\n' "${HOME}${p#\~}" ;;
    *)  printf '%s\n' "$CALLER_PWD/$p" ;;
  esac
}

# Default model directory: $EMBEDSTREAM_MODEL_DIR if set, else models/all-MiniLM-L6-v2.
default_model_dir() {
  if [[ -n "${EMBEDSTREAM_MODEL_DIR:-}" ]]; then
    abspath_from_caller "$EMBEDSTREAM_MODEL_DIR"
  else
    printf '%s\n' "$REPO_ROOT/models/all-MiniLM-L6-v2"
  fi
}

# The test suite's venv (scripts/install_test_env.sh): python, pytest, node.
test_venv_dir() { printf '%s\n' "$REPO_ROOT/.cache/venv-test"; }

# Preset: explicit argument, else `ci` under CI=true, else `release`.
default_preset() {
  if [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then echo ci; else echo release; fi
}

# Names of the non-hidden presets of one kind (configure, build, test), from
# cmake/ctest themselves (so call it after scripts/install_deps.sh).
valid_presets() {
  local -a lister=(cmake "--list-presets=$1")
  [[ "$1" == test ]] && lister=(ctest --list-presets)   # ctest 3.25 takes no =test
  command -v "${lister[0]}" >/dev/null 2>&1 || die "${lister[0]} not found (scripts/install_deps.sh installs cmake)"
  "${lister[@]}" 2>/dev/null | sed -n 's/^ *"\([^"]*\)".*/\1/p' | tr '\n' ' '
}

check_preset() {
  local p="$1" all
  all="$(valid_presets configure)"
  [[ " $all " == *" $p "* ]] || die "unknown preset '$p' (choose one of: $all)"
}

# Install the Debian packages of scripts/deps/<group>.txt that are missing (the
# one place packages are named; service scripts call this instead of apt-get).
install_group() {
  bash "$REPO_ROOT/scripts/install_deps.sh" "$@" >&2
}

# The leading comment block of scripts/NAME, without "# ": its --help.
script_help() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$REPO_ROOT/scripts/$1"
}

# The arguments of an install script that takes only --check and --help:
# sets CHECK (0 or 1); --help prints the calling script's header and exits.
# shellcheck disable=SC2034  # CHECK is read by the calling script
parse_check_args() {
  CHECK=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --check) CHECK=1 ;;
      -h|--help) script_help "$(basename "${BASH_SOURCE[1]}")"; exit 0 ;;
      *) die "unknown argument '$arg' (see --help)" ;;
    esac
  done
}

jobs_count() {
  local n
  n="$(nproc 2>/dev/null || echo 2)"
  echo "${EMBEDSTREAM_JOBS:-$n}"
}

# Arguments of a service script's `logs [-n N] [-f|--follow]`: sets LOGS_N
# (default 40) and LOGS_FOLLOW (0 or 1); anything else is an error.
# shellcheck disable=SC2034  # read by the sourcing script
parse_logs_args() {
  LOGS_N=40 LOGS_FOLLOW=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -n) [[ $# -ge 2 ]] || die "-n needs a value"; LOGS_N="$2"; shift 2 ;;
      -f|--follow) LOGS_FOLLOW=1; shift ;;
      *) die "logs: unknown argument '$1'" ;;
    esac
  done
}

# ---------------------------------------------------------------- service scripts
# What scripts/redis.sh, pg.sh and kafka.sh share: a server in the background on
# 127.0.0.1, its pid, the start lock, the owner-pid watchdog. The functions that
# use PORT, DATA, ARGS, LOGFILE, READY_TIMEOUT or OWNER_PID use the sourcing
# script's globals of those names; `usage` is the sourcing script's.

now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }
since() {  # since T0_MS: seconds elapsed, e.g. "1.23 s"
  local d=$(($(now_ms) - $1))
  printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10))
}

# alive PID: the process exists and is not a zombie. An exited server stays a
# zombie until its parent (init, once the script that started it has returned)
# reaps it, which some container inits do only now and then; kill -0 succeeds
# on a zombie.
alive() {
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"
  [[ -n "$s" && "${s%% *}" != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# die_if_port_busy PORT HINT [PREFIX]: when 127.0.0.1:PORT accepts connections,
# dies with "PREFIXport PORT is in use by another process[: ss's line] (HINT)".
die_if_port_busy() {
  port_open "$1" || return 0
  local who=""
  command -v ss >/dev/null 2>&1 && who="$(ss -ltnpH "sport = :$1" 2>/dev/null | head -n1 || true)"
  die "${3:-}port $1 is in use by another process${who:+: $who} ($2)"
}

# --port/--data anywhere (with PASSTHROUGH=1, only before the first other
# argument: it and all after it are a client's arguments; so is all after --):
# sets PORT and DATA when given, the other arguments go to ARGS; -h/--help: usage.
parse_port_data() {
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
}

check_port() { [[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1 && "$PORT" -le 65535 ]] || die "bad port '$PORT'"; }

no_args() { [[ ${#ARGS[@]} -eq 0 ]] || die "$1: unknown argument '${ARGS[0]}' (see --help)"; }

# The options of `start [--timeout S] [--owner-pid PID]`: sets READY_TIMEOUT
# (when given) and OWNER_PID (empty when not given); anything else is an error.
# shellcheck disable=SC2034  # OWNER_PID is read by the sourcing script
parse_start_args() {
  OWNER_PID=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --timeout)   [[ $# -ge 2 ]] || die "--timeout needs a value"; READY_TIMEOUT="$2"; shift 2 ;;
      --timeout=*) READY_TIMEOUT="${1#*=}"; shift ;;
      --owner-pid) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--owner-pid needs a pid"; OWNER_PID="$2"; shift 2 ;;
      *) die "start: unknown argument '$1' (see --help)" ;;
    esac
  done
  [[ "$READY_TIMEOUT" =~ ^[0-9]+$ && "$READY_TIMEOUT" -ge 1 ]] || die "bad --timeout '$READY_TIMEOUT'"
}

# start_lock FILE: holds an exclusive lock on FILE on fd 9 until the script
# ends, so that two starts of one server run one after the other. What it
# starts in the background must not keep fd 9 open (9>&-).
start_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock 9
}

# A start that finds its server running: it must run on $PORT (configured_port
# is the sourcing script's: the port the server in $DATA was started with).
same_port_or_die() {
  local cport
  cport="$(configured_port)"
  [[ "$cport" == "$PORT" ]] \
    || die "start: the server on $DATA is already running on port $cport, not $PORT (stop it first)"
}

# start_watchdog LOG OWNER PID STOP-COMMAND...: in the background (its own
# session, output to LOG) until PID ends; runs STOP-COMMAND when OWNER ends
# first (so a killed test run leaves no server behind).
start_watchdog() {
  local logf="$1" owner="$2" pid="$3"
  shift 3
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid bash -c "$(declare -f alive)"'
                  owner="$1" pid="$2"; shift 2
                  while alive "$owner" && alive "$pid"; do sleep 1; done
                  if alive "$pid"; then exec "$@"; fi' \
    watchdog "$owner" "$pid" "$@" </dev/null >>"$logf" 2>&1 8>&- 9>&- &
}

# stop_pid PID SECONDS NAME: SIGTERM; SIGKILL (with a warning naming NAME) when
# it still runs after SECONDS; returns once it is gone.
stop_pid() {
  local pid="$1" secs="$2" deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + secs))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  if alive "$pid"; then
    warn "$3 pid $pid did not stop in $secs s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
  fi
}

log_tail() {  # log_tail [N]: the last N (40) lines of $LOGFILE, under a header
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

# tail_log FILE [-n N] [-f|--follow]: a service script's `logs` of one log file.
tail_log() {
  local file="$1"
  shift
  parse_logs_args "$@"
  [[ -f "$file" ]] || die "no log file $file"
  if [[ $LOGS_FOLLOW -eq 1 ]]; then
    exec tail -n "$LOGS_N" -F "$file"
  fi
  tail -n "$LOGS_N" "$file"
}
