#!/usr/bin/env bash
# Install what the browser tests (tests/e2e/test_dashboard.mjs) need:
#   - Debian's `chromium` (/usr/bin/chromium), from scripts/deps/test.txt, only
#     when it is missing;
#   - playwright-core, pinned in tests/e2e/package.json + package-lock.json
#     (npm checks each package's sha512), into tests/e2e/node_modules
#     (gitignored), only when missing or when the lock file changed, with the
#     Node.js of the test venv (scripts/install_test_env.sh). Playwright's own
#     browser download is never used.
# Idempotent: when both are present it runs no apt-get and no npm (well under
# a second).
#
# Usage: scripts/install_browser.sh [--check]
#   --check   install nothing; exit 0 when ready, 1 (saying what is missing) otherwise
#
# EMBEDSTREAM_CHROMIUM=/path/to/chrome uses another browser (nothing installed);
# EMBEDSTREAM_SKIP_DEPS=1 skips the apt-get step like scripts/install_deps.sh.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_check_args "$@"

E2E_DIR="$REPO_ROOT/tests/e2e"
CHROMIUM="${EMBEDSTREAM_CHROMIUM:-/usr/bin/chromium}"
PW_PKG="$E2E_DIR/node_modules/playwright-core/package.json"
# npm ci records what it installed here; a changed lock file means reinstall.
STAMP="$E2E_DIR/node_modules/.package-lock.json"

# --- Node.js (the test venv's) ----------------------------------------------
if [[ $CHECK -eq 1 ]]; then
  bash "$REPO_ROOT/scripts/install_test_env.sh" --check || exit 1
else
  bash "$REPO_ROOT/scripts/install_test_env.sh"
fi
VENV_BIN="$(test_venv_dir)/bin"
export PATH="$VENV_BIN:$PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" -ge 20 ]] || die "node $(node --version) is too old: playwright-core needs Node.js >= 20"

# --- chromium --------------------------------------------------------------
need_chromium=0
[[ -x "$CHROMIUM" ]] || need_chromium=1
# playwright-core: present and the version the lock file pins?
want_pw="$(node -p 'require(process.argv[1]).packages["node_modules/playwright-core"].version' \
             "$E2E_DIR/package-lock.json")"
have_pw=""
[[ -f "$PW_PKG" ]] && have_pw="$(node -p 'require(process.argv[1]).version' "$PW_PKG")"
need_npm=0
if [[ "$have_pw" != "$want_pw" || ! -f "$STAMP" || "$E2E_DIR/package-lock.json" -nt "$STAMP" ]]; then
  need_npm=1
fi

if [[ $CHECK -eq 1 ]]; then
  rc=0
  [[ $need_chromium -eq 1 ]] && { warn "missing: $CHROMIUM"; rc=1; }
  [[ $need_npm -eq 1 ]] && { warn "missing: playwright-core $want_pw in $E2E_DIR/node_modules"; rc=1; }
  [[ $rc -eq 0 ]] && log "browser tests: chromium and playwright-core $want_pw present"
  exit $rc
fi

if [[ $need_chromium -eq 1 ]]; then
  if [[ -n "${EMBEDSTREAM_CHROMIUM:-}" ]]; then
    die "EMBEDSTREAM_CHROMIUM=$CHROMIUM is not an executable"
  fi
  if [[ "${EMBEDSTREAM_SKIP_DEPS:-0}" == 1 ]]; then
    die "EMBEDSTREAM_SKIP_DEPS=1 but $CHROMIUM is missing: install chromium yourself"
  fi
  install_group test
  [[ -x "$CHROMIUM" ]] || die "scripts/install_deps.sh test ran but $CHROMIUM is missing"
fi

if [[ $need_npm -eq 1 ]]; then
  log "npm ci (playwright-core $want_pw) in tests/e2e ..."
  t0=$SECONDS
  (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed in $E2E_DIR"
  log "installed playwright-core in $((SECONDS - t0)) s"
fi

log "browser tests: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"), playwright-core $want_pw"
