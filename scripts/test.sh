#!/usr/bin/env bash
# THE test command: install system packages, fetch the model, build, run the tests.
#
# Usage: scripts/test.sh [preset] [ctest args...]
#   preset: release (default), ci (default when CI=true), debug, asan, tsan
#   ctest args pass through, e.g.
#     scripts/test.sh -L unit                # only tests labelled "unit"
#     scripts/test.sh asan -R tokenizer      # ASan+UBSan build, tests matching "tokenizer"
#     scripts/test.sh release -LE slow       # exclude the "slow" label
#
# Stages, each timed: install_deps (scripts/deps/build.txt + test.txt), fetch_model,
# test_env (scripts/install_test_env.sh: pytest, jsonschema, Node.js), build, ctest.
# Exports EMBEDSTREAM_MODEL_DIR (the fetched model) to the tests. Exits non-zero on
# any failure and ends with "embedstream tests: OK" on success.
# Env: EMBEDSTREAM_JOBS (build -j), EMBEDSTREAM_TEST_JOBS (ctest -j, default 2),
#      EMBEDSTREAM_TEST_TIMEOUT (seconds per test without its own TIMEOUT, default 900),
#      EMBEDSTREAM_SKIP_DEPS=1 (skip apt checks).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PRESET="$(default_preset)"
if [[ $# -gt 0 && "$1" != -* ]]; then PRESET="$1"; shift; fi

T0=$SECONDS
STAGE="" STAGE_T0=$SECONDS
declare -a STAGE_TIMES=()
stage() {  # stage NAME: ends the current stage (printing its time), starts NAME
  if [[ -n "$STAGE" ]]; then
    STAGE_TIMES+=("$STAGE $((SECONDS - STAGE_T0)) s")
    log "stage $STAGE: $((SECONDS - STAGE_T0)) s"
  fi
  STAGE="$1" STAGE_T0=$SECONDS
}
finish() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '[embedstream] embedstream tests: FAILED at %s (preset %s, exit %d, %d s)\n' \
      "$STAGE" "$PRESET" "$rc" "$((SECONDS - T0))" >&2
  fi
}
trap finish EXIT

stage install_deps
bash "$REPO_ROOT/scripts/install_deps.sh" build test
check_preset "$PRESET"

stage fetch_model
EMBEDSTREAM_MODEL_DIR="$(default_model_dir)"
export EMBEDSTREAM_MODEL_DIR
bash "$REPO_ROOT/scripts/fetch_model.sh" --dest "$EMBEDSTREAM_MODEL_DIR"

stage test_env
bash "$REPO_ROOT/scripts/install_test_env.sh"

stage build
EMBEDSTREAM_DEPS_DONE=1 bash "$REPO_ROOT/scripts/build.sh" "$PRESET"

stage ctest
# Sanitizer defaults (kept if the caller set their own).
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
# Sanitized binaries run several times slower: e2e waits and promptness checks
# scale by this (tests/e2e/test_hostile.py).
if [[ "$PRESET" == asan || "$PRESET" == tsan ]]; then
  export EMBEDSTREAM_E2E_TIME_SCALE="${EMBEDSTREAM_E2E_TIME_SCALE:-10}"
fi

ctest_cmd=(ctest)
if [[ " $(valid_presets test) " == *" $PRESET "* ]]; then
  ctest_cmd+=(--preset "$PRESET")
else
  ctest_cmd+=(--test-dir "build/$PRESET")      # presets without a test preset (debug, tsan)
fi
ctest_cmd+=(--output-on-failure --no-tests=error
            -j "${EMBEDSTREAM_TEST_JOBS:-2}" --timeout "${EMBEDSTREAM_TEST_TIMEOUT:-900}" "$@")

# gcc 12's TSan cannot map its shadow memory when the kernel randomises mmap with
# more than 28 bits; run without ASLR then.
if [[ "$PRESET" == tsan ]] && (( $(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28) > 28 )); then
  log "vm.mmap_rnd_bits > 28: running TSan tests under setarch -R (ASLR off)"
  ctest_cmd=(setarch "$(uname -m)" -R "${ctest_cmd[@]}")
fi

log "EMBEDSTREAM_MODEL_DIR=$EMBEDSTREAM_MODEL_DIR"
log "test: ${ctest_cmd[*]}"
"${ctest_cmd[@]}" </dev/null
stage ""

trap - EXIT
log "stage times: $(IFS=,; printf '%s' "${STAGE_TIMES[*]}" | sed 's/,/, /g')"
printf '[embedstream] embedstream tests: OK (preset %s, %d s)\n' "$PRESET" "$((SECONDS - T0))"
