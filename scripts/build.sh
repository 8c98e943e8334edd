#!/usr/bin/env bash
# Configure and build one CMake preset (build dir: build/<preset>).
#
# Usage: scripts/build.sh [preset] [extra `cmake --build` args, e.g. --target embedstream]
#   preset: release (default), debug, asan, tsan, ci (default when CI=true)
#
# Runs scripts/install_deps.sh first (a fast no-op when everything is installed;
# skip with EMBEDSTREAM_SKIP_DEPS=1). EMBEDSTREAM_JOBS overrides -j (default nproc).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PRESET="$(default_preset)"
if [[ $# -gt 0 && "$1" != -* ]]; then PRESET="$1"; shift; fi

if [[ "${EMBEDSTREAM_DEPS_DONE:-0}" != 1 ]]; then
  bash "$REPO_ROOT/scripts/install_deps.sh" build
fi
check_preset "$PRESET"

command -v cmake >/dev/null || die "cmake not found (scripts/install_deps.sh installs it)"
command -v ninja >/dev/null || die "ninja not found (scripts/install_deps.sh installs ninja-build)"

t0=$SECONDS
# Always configure: quick when build/<preset> is configured already, and it picks up
# CMakeLists.txt / CMakePresets.json changes.
log "configure: cmake --preset $PRESET"
cmake --preset "$PRESET" --log-level=WARNING \
  || die "cmake configure failed for preset '$PRESET' (see above)"

JOBS="$(jobs_count)"
log "build: cmake --build --preset $PRESET -j$JOBS $*"
cmake --build --preset "$PRESET" -j"$JOBS" "$@" \
  || die "build failed for preset '$PRESET' (see the compiler output above)"
log "built preset '$PRESET' in build/$PRESET ($((SECONDS - t0)) s)"
