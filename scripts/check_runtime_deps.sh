#!/usr/bin/env bash
# Checks scripts/deps/runtime.txt (the Docker image's runtime packages) against
# a built binary, so the list and the build cannot drift apart:
#   - every library the binary links directly (ELF NEEDED) must be owned by a
#     package in runtime.txt or by one debian:12-slim has anyway (BASE below);
#   - every package in runtime.txt must own one of those libraries, unless its
#     line says "not a library".
# Prints what it found; exits 0 when both hold, 1 when not, 77 (ctest: skipped)
# on a machine without dpkg (not Debian).
#
# Usage: scripts/check_runtime_deps.sh BINARY
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -eq 1 ]] || die "usage: scripts/check_runtime_deps.sh BINARY"
BIN="$(abspath_from_caller "$1")"
[[ -x "$BIN" ]] || die "$BIN is not an executable"
if ! command -v dpkg-query >/dev/null 2>&1; then
  warn "no dpkg: not a Debian machine, nothing to check"
  exit 77
fi
command -v readelf >/dev/null 2>&1 || die "readelf is missing (binutils, part of build-essential)"

LIST="$REPO_ROOT/scripts/deps/runtime.txt"
BASE=(libc6 libgcc-s1 libstdc++6)   # in debian:12-slim already (apt needs them)

mapfile -t listed < <(sed -e 's/#.*//' "$LIST" | awk 'NF { print $1 }')
mapfile -t not_libs < <(grep -E '#.*not a library' "$LIST" | awk '{ print $1 }')
mapfile -t needed < <(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')

# soname -> path, as the loader resolves it here.
declare -A path_of=()
while read -r so _ path _; do
  [[ -n "${path:-}" && "$path" == /* ]] && path_of[$so]="$path"
done < <(ldd "$BIN" | awk '$2 == "=>" { print $1, $2, $3 }')

declare -A owner_used=()
bad=0
for so in "${needed[@]}"; do
  path="${path_of[$so]:-}"
  if [[ -z "$path" ]]; then
    printf '  %-24s NOT FOUND by the loader\n' "$so"; bad=1; continue
  fi
  pkg="$(dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(readlink -f "$path")" 2>/dev/null || true)"
  pkg="${pkg%%:*}"
  pkg="${pkg%%,*}"
  if [[ -z "$pkg" ]]; then
    printf '  %-24s %s: no Debian package owns it\n' "$so" "$path"; bad=1; continue
  fi
  if [[ " ${listed[*]} " == *" $pkg "* ]]; then
    printf '  %-24s %-22s listed\n' "$so" "$pkg"
    owner_used[$pkg]=1
  elif [[ " ${BASE[*]} " == *" $pkg "* ]]; then
    printf '  %-24s %-22s in debian:12-slim\n' "$so" "$pkg"
  else
    printf '  %-24s %-22s MISSING from scripts/deps/runtime.txt\n' "$so" "$pkg"; bad=1
  fi
done
for pkg in "${listed[@]}"; do
  [[ -n "${owner_used[$pkg]:-}" ]] && continue
  [[ " ${not_libs[*]} " == *" $pkg "* ]] && continue
  printf '  %-24s %-22s listed but gives the binary no library: remove it\n' "-" "$pkg"; bad=1
done

if [[ $bad -ne 0 ]]; then
  log "scripts/deps/runtime.txt does not match $BIN"
  exit 1
fi
log "scripts/deps/runtime.txt matches $BIN (${#needed[@]} libraries, ${#listed[@]} packages)"
