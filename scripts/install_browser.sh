#!/usr/bin/env bash
# Install what the browser tests (tests/e2e/test_dashboard.mjs) need:
#   - Debian's `chromium` (/usr/bin/chromium), only when it is missing;
#   - playwright-core, pinned in tests/e2e/package.json + package-lock.json,
#     into tests/e2e/node_modules (gitignored), only when missing or when the
#     lock file changed. Playwright's own browser download is never used.
# Idempotent: when both are present it runs no apt-get and no npm (well under
# a second).
#
# Usage: scripts/install_browser.sh [--check]
#   --check   install nothing; exit 0 when ready, 1 (saying what is missing) otherwise
#
# Needs Node.js >= 20 with npm on PATH, and root or sudo for apt-get.
# EMBEDSTREAM_CHROMIUM=/path/to/chrome uses another browser (nothing installed);
# EMBEDSTREAM_SKIP_DEPS=1 skips the apt-get step like scripts/install_deps.sh.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

check=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

E2E_DIR="$REPO_ROOT/tests/e2e"
CHROMIUM="${EMBEDSTREAM_CHROMIUM:-/usr/bin/chromium}"
PW_PKG="$E2E_DIR/node_modules/playwright-core/package.json"
# npm ci records what it installed here; a changed lock file means reinstall.
STAMP="$E2E_DIR/node_modules/.package-lock.json"

# --- Node.js ---------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed (need Node.js >= 20 with npm)"
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

if [[ $check -eq 1 ]]; then
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
  command -v apt-get >/dev/null 2>&1 \
    || die "no apt-get: install Chromium yourself and set EMBEDSTREAM_CHROMIUM=/path/to/it"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
      || die "not root and sudo is not installed. As root, run: apt-get update && apt-get install -y --no-install-recommends chromium"
    if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
  fi
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
       -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300
       -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  log "apt-get update ..."
  "${APT[@]}" update -qq >/dev/null || die "apt-get update failed (network? sudo password needed?)"
  log "apt-get install chromium ..."
  t0=$SECONDS
  logf="$(mktemp)"
  # fonts-liberation: metric-compatible fonts so pages render text legibly.
  if ! "${APT[@]}" install --no-install-recommends chromium fonts-liberation >"$logf" 2>&1; then
    tail -n 30 "$logf" >&2
    rm -f "$logf"
    die "apt-get install chromium failed"
  fi
  rm -f "$logf"
  [[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing"
  log "installed chromium in $((SECONDS - t0)) s"
fi

if [[ $need_npm -eq 1 ]]; then
  command -v npm >/dev/null 2>&1 || die "npm is not installed"
  log "npm ci (playwright-core $want_pw) in tests/e2e ..."
  t0=$SECONDS
  (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed in $E2E_DIR"
  log "installed playwright-core in $((SECONDS - t0)) s"
fi

log "browser tests: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"), playwright-core $want_pw"
