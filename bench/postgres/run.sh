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
#      KEEP_DATA=1 (keep the data dir; the server is stopped either way),
#      NO_CPU_WINDOW=1 (skip cpu_window.py: no server/bench CPU per catch-up).
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
# bench_postgres binaries built before DropTables dropped <embeddings>_progress
# left that table behind (DROP ... CASCADE drops only its foreign key), so the
# sink cases' progress rows marked every catch-up row done: Drain 0 rows in
# 0.00 s. This event trigger drops it with the text table; with a newer binary
# it finds nothing left to drop.
"$pg" psql --port "$port" --data "$data" -- -X -q -v ON_ERROR_STOP=1 -f - >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION bench_pg_drop_progress() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects()
             WHERE object_type = 'table' AND object_name = 'bench_pg_text')
     AND to_regclass('bench_pg_embeddings_progress') IS NOT NULL THEN
    DROP TABLE bench_pg_embeddings_progress;
  END IF;
END $$;
-- For cpu_window.py: the catch-up's acked rows so far (-1: no progress table).
CREATE OR REPLACE FUNCTION bench_pg_progress_count() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  IF to_regclass('bench_pg_embeddings_progress') IS NULL THEN RETURN -1; END IF;
  EXECUTE 'SELECT count(*) FROM bench_pg_embeddings_progress' INTO n;
  RETURN n;
END $$;
DROP EVENT TRIGGER IF EXISTS bench_pg_drop_progress;
CREATE EVENT TRIGGER bench_pg_drop_progress ON sql_drop EXECUTE FUNCTION bench_pg_drop_progress();
SQL
echo "run.sh: PostgreSQL on 127.0.0.1:$port (data $data), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# cpu_window.py runs the bench and adds the server's and the bench's CPU time
# during each catch-up (from /proc; NO_CPU_WINDOW=1 runs the bench alone).
if [[ ${NO_CPU_WINDOW:-0} == 1 ]]; then
  "$bench_bin" "$@"
else
  python3 "$root/bench/postgres/cpu_window.py" --data "$data" --port "$port" -- "$bench_bin" "$@"
fi
