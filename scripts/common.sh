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
