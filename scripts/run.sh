#!/usr/bin/env bash
# THE main-job command: install system packages, fetch the model, build the release
# binary, then run it (default subcommand: serve).
#
# Usage: scripts/run.sh [embedstream args...]
#   scripts/run.sh                       # = embedstream serve
#   scripts/run.sh serve --port 5000
#   scripts/run.sh --help
#
# Set-up output goes to stderr, so the binary's stdout stays clean for pipes.
# EMBEDSTREAM_MODEL_DIR picks the model directory (default models/all-MiniLM-L6-v2).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PRESET="${EMBEDSTREAM_RUN_PRESET:-release}"

bash "$REPO_ROOT/scripts/install_deps.sh" build >&2
check_preset "$PRESET"
EMBEDSTREAM_MODEL_DIR="$(default_model_dir)"
export EMBEDSTREAM_MODEL_DIR
bash "$REPO_ROOT/scripts/fetch_model.sh" --dest "$EMBEDSTREAM_MODEL_DIR" >&2
EMBEDSTREAM_DEPS_DONE=1 bash "$REPO_ROOT/scripts/build.sh" "$PRESET" --target embedstream >&2

BIN=""
for b in "build/$PRESET/embedstream" "build/$PRESET/src/app/embedstream"; do
  if [[ -x "$REPO_ROOT/$b" ]]; then BIN="$REPO_ROOT/$b"; break; fi
done
[[ -n "$BIN" ]] || die "build finished but no embedstream binary in build/$PRESET"

log "EMBEDSTREAM_MODEL_DIR=$EMBEDSTREAM_MODEL_DIR"
if [[ $# -eq 0 ]]; then set -- serve; fi
log "exec ${BIN#"$REPO_ROOT"/} $*"
cd "$CALLER_PWD"   # relative paths in the arguments mean what the user meant
exec "$BIN" "$@"
