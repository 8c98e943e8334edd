#!/usr/bin/env bash
# bench/sse/run.sh: bench_sse against a real `embedstream serve` (issue 4).
#
# Starts build/<preset>/embedstream serve (embedded store in a temporary
# --data-dir, no Kafka) on a free port, waits for /ready, runs
# build/<preset>/bench/bench_sse --url ... --server-pid ... with the arguments
# given here, stops the server and exits with bench_sse's code.
# It builds nothing: cmake --build build/release --target embedstream bench_sse
#
#   bench/sse/run.sh                                   # 1000 clients, 20 messages/s, 10 s
#   bench/sse/run.sh --clients 1000 --rate 40 --seconds 30
#   PRESET=ci SERVE_ARGS="--threads 1" bench/sse/run.sh
#
# Env: PRESET (release), PORT (a free one), SERVE_ARGS (extra serve flags),
#      KEEP_DATA=1 (keep the data dir and server log).
# The server needs an open-file limit above the client count (>= 1100 for
# 1000 clients); this script raises the soft limit up to the hard one.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build/${PRESET:-release}
serve_bin=$build/embedstream
bench_bin=$build/bench/bench_sse
# shellcheck source=bench/sse/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_bins run.sh "$serve_bin" "$bench_bin"
# 1000 SSE streams are 1000 sockets in the server.
raise_fd_limit run.sh

port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
data=$(mktemp -d "${TMPDIR:-/tmp}/embedstream-sse-bench.XXXXXX")
log=$data/serve.log
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ ${KEEP_DATA:-0} == 1 ]]; then echo "run.sh: data and log kept in $data" >&2; else rm -rf "$data"; fi
}
trap cleanup EXIT

# The store directory: --data-dir when this serve has it, else the environment.
data_args=(--data-dir "$data/store")
if ! "$serve_bin" serve --help 2>/dev/null | grep -q -- '--data-dir'; then
  data_args=()
  export EMBEDSTREAM_DATA_DIR=$data/store
fi

# Embedded mode: no Kafka even if the environment names brokers.
cd "$root"
env -u KAFKA_BOOTSTRAP_SERVERS "$serve_bin" serve --host 127.0.0.1 --port "$port" \
  "${data_args[@]}" ${SERVE_ARGS:-} >"$log" 2>&1 &
server_pid=$!

url=http://127.0.0.1:$port
for _ in $(seq 1 240); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: embedstream serve exited; its log:" >&2
    tail -20 "$log" >&2
    exit 2
  fi
  if curl -sf "$url/ready" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
if ! curl -sf "$url/ready" >/dev/null 2>&1; then
  echo "run.sh: $url/ready did not answer 200 within 120 s; server log:" >&2
  tail -20 "$log" >&2
  exit 2
fi
echo "run.sh: embedstream serve pid $server_pid on $url (open-file limit $(ulimit -n), $(nproc) cores)"

rc=0
"$bench_bin" --url "$url" --server-pid "$server_pid" "$@" || rc=$?
if (( rc != 0 )); then
  echo "run.sh: bench_sse exited $rc; server log tail:" >&2
  tail -5 "$log" >&2
fi
exit $rc
