#!/usr/bin/env bash
# bench/postgres/run.sh: bench_postgres against a throwaway PostgreSQL 16 +
# pgvector server (issue 5).
#
# Starts scripts/pg.sh on a free port with a fresh data dir under
# .cache/pg/bench-<port>, runs build/<preset>/bench/bench_postgres with the
# arguments given here and DATABASE_* pointing at that server, then stops the
# server and deletes the data dir. It builds nothing:
#   cmake --build build/release --target bench_postgres
#
#   bench/postgres/run.sh                          # 4,096 texts, batches 256 and 1024
#   bench/postgres/run.sh --repeat 3 --explore     # the figures in README.md
#   PRESET=ci bench/postgres/run.sh --texts 1024
#
# Env: PRESET (release), BENCH_BIN (overrides the binary), PORT (a free one),
#      KEEP_DATA=1 (keep the data dir; the server is stopped either way).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_bin=${BENCH_BIN:-$root/build/${PRESET:-release}/bench/bench_postgres}
if [[ ! -x $bench_bin ]]; then
  echo "run.sh: $bench_bin not found; build it: cmake --build build/${PRESET:-release} --target bench_postgres" >&2
  exit 2
fi

# A free port below the ephemeral range (the server binds it a moment later).
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
}
port=${PORT:-$(free_port)}
data=$root/.cache/pg/bench-$port
pg=$root/scripts/pg.sh
cleanup() {
  "$pg" stop --port "$port" --data "$data" >/dev/null 2>&1 || true
  if [[ ${KEEP_DATA:-0} == 1 ]]; then
    echo "run.sh: data dir kept in $data" >&2
  else
    "$pg" reset --port "$port" --data "$data" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

"$pg" start --port "$port" --data "$data" --owner-pid $$ >/dev/null
eval "$("$pg" env --port "$port" --data "$data")"
echo "run.sh: PostgreSQL on 127.0.0.1:$port (data $data), $(nproc) cores"
"$bench_bin" "$@"
