#!/usr/bin/env bash
# Fuzz the decoders of outside bytes with libFuzzer (tests/fuzz/README.md):
# install clang (scripts/deps/fuzz.txt), configure and build preset `fuzz`
# (build/fuzz: clang, ASan + UBSan, only the fuzz targets), then run each
# target for a while on its working corpus and print one line per target.
#
# Usage: scripts/fuzz.sh [--time SECONDS] [--jobs N] [--no-build] [TARGET...]
#
#   TARGET       fuzz_http_request fuzz_message_body fuzz_search_body
#                fuzz_kafka_record fuzz_tokenizer fuzz_serve_config
#                fuzz_safetensors fuzz_redis_reply (the fuzz_ prefix may be
#                left out); default all
#   --time S     seconds per target (libFuzzer -max_total_time), default 60
#   --jobs N     targets fuzzed at the same time, default 1 (each uses one core)
#   --no-build   run what build/fuzz holds already (no install, configure or build)
#
# Each target runs with -max_total_time=S -timeout=10 -rss_limit_mb=2048
# -print_final_stats=1 (plus tests/fuzz/<target>.dict when there is one) on
# .cache/fuzz/corpus/<target>, which it grows, seeded from the read-only
# tests/fuzz/corpus/<target> (nothing is ever written under tests/). A crash,
# leak, timeout or out-of-memory input is written to .cache/fuzz/artifacts/<target>/
# and the full log is .cache/fuzz/logs/<target>.log. Summary line per target:
# executions (libFuzzer's stat::number_of_executed_units), seconds, corpus
# files, OK or CRASH (with the kind and the input). Exits 1 when any target
# failed. To keep a failure as a regression seed: see tests/fuzz/README.md.
#
# Env: EMBEDSTREAM_JOBS (build -j, default nproc), EMBEDSTREAM_SKIP_DEPS=1 (skip
# apt checks), EMBEDSTREAM_FUZZ_ARGS (extra libFuzzer flags for every target).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ALL_TARGETS=(fuzz_http_request fuzz_message_body fuzz_search_body fuzz_kafka_record
             fuzz_tokenizer fuzz_serve_config fuzz_safetensors fuzz_redis_reply)
SECONDS_PER_TARGET=60
PARALLEL=1
BUILD=1
declare -a targets=()

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
# option_value NAME ARGS...: the value after option NAME, checked to be a count.
option_value() {
  [[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
  is_count "$2" || die "$1 needs a whole number > 0, not '$2'"
  printf '%s\n' "$2"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) SECONDS_PER_TARGET="$(option_value "$@")"; shift 2 ;;
    --time=*) SECONDS_PER_TARGET="$(option_value --time "${1#--time=}")"; shift ;;
    --jobs) PARALLEL="$(option_value "$@")"; shift 2 ;;
    --jobs=*) PARALLEL="$(option_value --jobs "${1#--jobs=}")"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) script_help fuzz.sh; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
      t="$1"
      [[ "$t" == fuzz_* ]] || t="fuzz_$t"
      [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$1' (targets: ${ALL_TARGETS[*]})"
      targets+=("$t"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

BUILD_DIR="$REPO_ROOT/build/fuzz"
BIN_DIR="$BUILD_DIR/tests/fuzz"
SEEDS="$REPO_ROOT/tests/fuzz"
WORK="$REPO_ROOT/.cache/fuzz"

if [[ $BUILD -eq 1 ]]; then
  bash "$REPO_ROOT/scripts/install_deps.sh" build fuzz
  check_preset fuzz
  command -v cmake >/dev/null || die "cmake not found (scripts/install_deps.sh installs it)"
  command -v clang++ >/dev/null || die "clang++ not found (scripts/install_deps.sh fuzz installs clang)"
  t0=$SECONDS
  log "configure: cmake --preset fuzz"
  cmake --preset fuzz --log-level=WARNING >/dev/null || die "cmake configure failed for preset 'fuzz'"
  JOBS="$(jobs_count)"
  log "build: cmake --build --preset fuzz -j$JOBS --target ${targets[*]}"
  cmake --build --preset fuzz -j"$JOBS" --target "${targets[@]}" \
    || die "build failed for preset 'fuzz' (see the compiler output above)"
  log "built ${#targets[@]} fuzz targets in build/fuzz ($((SECONDS - t0)) s)"
fi
for t in "${targets[@]}"; do
  [[ -x "$BIN_DIR/$t" ]] || die "$BIN_DIR/$t is not built (run without --no-build)"
done

# Sanitizer reports: stop at the first error, with a symbolized stack.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && command -v llvm-symbolizer >/dev/null 2>&1; then
  ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"
  export ASAN_SYMBOLIZER_PATH
fi
read -r -a extra_args <<<"${EMBEDSTREAM_FUZZ_ARGS:-}"

# run_target NAME: fuzzes NAME; writes its summary line to $WORK/logs/NAME.summary.
run_target() {
  local t="$1" corpus="$WORK/corpus/$1" artifacts="$WORK/artifacts/$1"
  local logf="$WORK/logs/$1.log" rc=0 t0=$SECONDS
  mkdir -p "$corpus" "$artifacts" "$WORK/logs"
  local -a args=("-max_total_time=$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
                 -print_final_stats=1 "-artifact_prefix=$artifacts/")
  [[ -f "$SEEDS/$t.dict" ]] && args+=("-dict=$SEEDS/$t.dict")
  # The HTTP reader's limits (16 KiB of headers, a 32 KiB buffer) need inputs
  # larger than libFuzzer's default 4096 bytes.
  [[ "$t" == fuzz_http_request ]] && args+=(-max_len=40000)
  args+=("${extra_args[@]}")
  # The working corpus first (libFuzzer writes new inputs there), the seeds second (read only).
  "$BIN_DIR/$t" "${args[@]}" "$corpus" "$SEEDS/corpus/$t" >"$logf" 2>&1 || rc=$?
  local secs=$((SECONDS - t0)) execs verdict files
  execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$logf" | tail -n 1)"
  files="$(find "$corpus" -type f | wc -l)"
  if [[ $rc -eq 0 ]]; then
    verdict=OK
  else
    local kind=crash input
    if grep -q 'ERROR: libFuzzer: timeout' "$logf"; then kind=timeout
    elif grep -q 'ERROR: LeakSanitizer' "$logf"; then kind=leak
    elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$logf"; then kind=out-of-memory
    elif grep -q 'FUZZ_CHECK failed' "$logf"; then kind="invariant: $(grep -m1 'FUZZ_CHECK failed' "$logf" | sed 's/^FUZZ_CHECK failed: //')"
    elif grep -q 'runtime error:' "$logf"; then kind="UB: $(grep -m1 'runtime error:' "$logf" | sed 's/.*runtime error: //')"
    elif grep -qE 'ERROR: AddressSanitizer: [a-z-]+' "$logf"; then kind="$(grep -m1 -oE 'AddressSanitizer: [a-z-]+' "$logf")"
    fi
    input="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logf" | tail -n 1)"
    verdict="CRASH ($kind; exit $rc; input ${input:-none, see the log})"
  fi
  printf '%-18s executions %10s  seconds %5d  corpus %6d  %s\n' \
    "$t" "${execs:-?}" "$secs" "$files" "$verdict" >"$WORK/logs/$t.summary"
  [[ $rc -eq 0 ]]
}

log "fuzzing ${#targets[@]} targets, ${SECONDS_PER_TARGET} s each, $PARALLEL at a time (logs: .cache/fuzz/logs/)"
mkdir -p "$WORK/logs"
for t in "${targets[@]}"; do rm -f "$WORK/logs/$t.summary"; done
declare -a running=()
for t in "${targets[@]}"; do
  while [[ ${#running[@]} -ge $PARALLEL ]]; do
    wait -n || true
    declare -a still=()
    for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && still+=("$pid"); done
    running=("${still[@]}")
  done
  log "  $t ..."
  run_target "$t" &
  running+=("$!")
done
wait || true

failed=0
for t in "${targets[@]}"; do
  if [[ -f "$WORK/logs/$t.summary" ]]; then
    cat "$WORK/logs/$t.summary"
    grep -q '  OK$' "$WORK/logs/$t.summary" || failed=$((failed + 1))
  else
    printf '%-18s did not finish (see .cache/fuzz/logs/%s.log)\n' "$t" "$t"
    failed=$((failed + 1))
  fi
done
if [[ $failed -gt 0 ]]; then
  log "fuzz: $failed of ${#targets[@]} targets FAILED (inputs in .cache/fuzz/artifacts/, logs in .cache/fuzz/logs/)"
  exit 1
fi
log "fuzz: OK (${#targets[@]} targets, ${SECONDS_PER_TARGET} s each)"
