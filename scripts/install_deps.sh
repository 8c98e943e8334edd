#!/usr/bin/env bash
# Install the Debian 12 packages embedstream needs, from the lists in
# scripts/deps/<group>.txt (the only place packages are named; deploy/Dockerfile
# reads the same lists through this script). Idempotent: when everything is
# installed it only asks dpkg (well under a second) and never runs apt-get.
# Needs nothing but bash, coreutils, dpkg and apt: it runs on a bare Debian 12.
#
# Usage: scripts/install_deps.sh [GROUP...] [--dry-run] [--list]
#
#   GROUP      build (default)  compilers, CMake, the libraries, python3 + pip
#              test             what the test suite adds: venv, Java + Maven
#                               (the Kafka broker), chromium (the browser test),
#                               redis-server (the events bus tests),
#                               prometheus (promtool: deploy/prometheus checks),
#                               curl + unzip (scripts/deploy_tools.sh: the Go toolchain)
#              runtime          only the shared libraries the binary loads
#                               (deploy/Dockerfile's runtime stage)
#              dev              clang-format, clang-tidy, shellcheck (lint)
#              fuzz             clang, libFuzzer, llvm-symbolizer (scripts/fuzz.sh)
#   --dry-run  print what is missing and would be installed; install nothing
#   --list     print the packages of the groups, one a line, and exit
#
# Needs root, or sudo. Set EMBEDSTREAM_SKIP_DEPS=1 to skip this step entirely
# (e.g. on a non-Debian machine where you installed the equivalents yourself).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEPS_DIR="$REPO_ROOT/scripts/deps"
dry=0 list=0
declare -a groups=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    --list) list=1 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$arg' (see --help)" ;;
    *) if [[ ! -f "$DEPS_DIR/$arg.txt" ]]; then
         known=""
         for f in "$DEPS_DIR"/*.txt; do known+=" $(basename "$f" .txt)"; done
         die "unknown group '$arg' (groups:$known)"
       fi
       groups+=("$arg") ;;
  esac
done
[[ ${#groups[@]} -gt 0 ]] || groups=(build)

# The packages of one list: first word of each line, comments and blanks skipped.
read_list() { sed -e 's/#.*//' "$DEPS_DIR/$1.txt" | awk 'NF { print $1 }'; }

declare -a want=()
for g in "${groups[@]}"; do
  mapfile -t -O "${#want[@]}" want < <(read_list "$g")
done

if [[ $list -eq 1 ]]; then
  printf '%s\n' "${want[@]}"
  exit 0
fi

if [[ "${EMBEDSTREAM_SKIP_DEPS:-0}" == 1 ]]; then
  log "EMBEDSTREAM_SKIP_DEPS=1: not checking system packages (${groups[*]})"
  exit 0
fi

command -v dpkg-query >/dev/null 2>&1 \
  || die "this script installs Debian packages and needs dpkg/apt (Debian 12). Install the equivalents of scripts/deps/{${groups[*]// /,}}.txt yourself and set EMBEDSTREAM_SKIP_DEPS=1."

# One dpkg-query for all packages: print those not fully installed.
# dpkg-query skips names it has never heard of, so compare against the wanted list.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${want[@]}" 2>/dev/null \
               | awk '$2 == "ii" { print $1 }' | sort -u || true)"
mapfile -t missing < <(printf '%s\n' "${want[@]}" | sort -u | comm -23 - <(printf '%s\n' "$installed"))

if [[ ${#missing[@]} -eq 0 ]]; then
  log "system packages (${groups[*]}): all ${#want[@]} present"
  exit 0
fi

log "missing packages (${groups[*]}): ${missing[*]}"
if [[ $dry -eq 1 ]]; then
  log "--dry-run: would run apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
  else
    die "not root and sudo is not installed. As root, run:
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  fi
fi

APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
     -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
t0=$SECONDS
log "apt-get update ..."
if ! "${APT[@]}" update -qq >/dev/null; then
  die "apt-get update failed (network? sudo password needed? try: sudo apt-get update)"
fi
log "apt-get install ${missing[*]} ..."
logf="$(mktemp)"
if ! "${APT[@]}" install --no-install-recommends "${missing[@]}" >"$logf" 2>&1; then
  tail -n 30 "$logf" >&2
  rm -f "$logf"
  die "apt-get install failed; the command was:
    ${SUDO[*]} apt-get install -y --no-install-recommends ${missing[*]}"
fi
rm -f "$logf"
log "installed ${#missing[@]} packages (${groups[*]}) in $((SECONDS - t0)) s"
