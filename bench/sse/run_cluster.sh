#!/usr/bin/env bash
# bench/sse/run_cluster.sh: bench_sse against 2 `embedstream serve` instances
# that share a Kafka input topic and an events bus (issue 16).
#
# Starts its own Kafka broker (scripts/kafka.sh) and, for the redis bus, its
# own Redis (scripts/redis.sh) on free ports, then for each bus asked:
#   - creates a fresh 4-partition input topic and a fresh events namespace
#     (events.topic / events.redis_prefix), so event ids start at 1,
#   - starts 2 instances: --ingest kafka (POST /messages -> the input topic),
#     one consumer group, --events-bus <bus>, sinks = each one's embedded store,
#   - waits for /ready on both and until their consumer group is balanced (both
#     own a partition, the 4 between them: no rebalance during the run),
#   - runs build/<preset>/bench/bench_sse --url A --url B --server-pid PA
#     --server-pid PB --other-pid <broker> [--other-pid <redis>] with the
#     arguments given here (clients and POSTs go round-robin over A and B),
#   - stops the 2 instances.
# Then it stops the broker and Redis (also on failure or Ctrl-C) and prints
# the one-line result of each bus. It builds nothing:
#   cmake --build build/release --target embedstream bench_sse
#
#   bench/sse/run_cluster.sh                                   # both buses, 1000 clients, 20 msg/s, 10 s
#   PRESET=ci bench/sse/run_cluster.sh --bus both --clients 1000 --rate 20 --seconds 30
#   bench/sse/run_cluster.sh --bus redis --seconds 10 --p99-max-ms 100
#
# --bus kafka|redis|both (default both); every other argument goes to bench_sse.
# Env: PRESET (release), INSTANCES (2), PARTITIONS (4), SERVE_ARGS (extra serve
#      flags, e.g. "--threads 1"), KAFKA_PORT / REDIS_PORT (free ones),
#      KEEP_DATA=1 (keep the data dirs and logs), EMBEDSTREAM_MODEL_DIR,
#      KAFKA_PROPERTIES ("key=value ..." added to the instances' kafka.properties:
#      every librdkafka client of theirs, the events bus's included),
#      TRACE_DIR (bench_sse --trace DIR/trace-<bus>.csv: every event as the
#      first client of each instance saw it; for the kafka bus the events
#      topic is made with message.timestamp.type=LogAppendTime and dumped to
#      DIR/events-kafka.txt: bench/sse/trace_split.py DIR splits each delay
#      at the broker's append time).
# The services it uses elsewhere (a broker on 19092, Redis on 16390, ...) are
# neither used nor touched: it only stops what it started.
# Exit code: 0 every bus passed, 1 a bus failed, 2 setup error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build/${PRESET:-release}
serve_bin=$build/embedstream
bench_bin=$build/bench/bench_sse
instances=${INSTANCES:-2}
partitions=${PARTITIONS:-4}

buses=(kafka redis)
bench_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bus) [[ $# -ge 2 ]] || { echo "run_cluster.sh: --bus needs kafka, redis or both" >&2; exit 2; }
            bus_arg=$2; shift 2 ;;
    --bus=*) bus_arg=${1#*=}; shift ;;
    -h|--help) sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bench_args+=("$1"); shift ;;
  esac
done
case "${bus_arg:-both}" in
  both) buses=(kafka redis) ;;
  kafka|redis) buses=("$bus_arg") ;;
  *) echo "run_cluster.sh: --bus must be kafka, redis or both, not '$bus_arg'" >&2; exit 2 ;;
esac

# shellcheck source=bench/sse/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_bins run_cluster.sh "$serve_bin" "$bench_bin"
# 1000 SSE streams are 1000 sockets in bench_sse (which raises its own soft
# limit) and ~500 per instance (each serve raises its own soft limit to the
# hard one at start-up); raised here too, for older binaries.
raise_fd_limit run_cluster.sh

free_port() {  # a free TCP port on 127.0.0.1 (and, with "pair", port+1 free too)
  python3 - "$@" <<'EOF'
import socket, sys
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if len(sys.argv) > 1 and sys.argv[1] == "pair" and not (p < 65535 and free(p + 1)):
        continue
    print(p); break
EOF
}

work=$(mktemp -d "${TMPDIR:-/tmp}/embedstream-sse-cluster.XXXXXX")
kafka_port=${KAFKA_PORT:-$(free_port pair)}
redis_port=${REDIS_PORT:-$(free_port)}
kafka_started=0
redis_started=0
serve_pids=()

stop_serves() {
  local pid
  for pid in "${serve_pids[@]+"${serve_pids[@]}"}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${serve_pids[@]+"${serve_pids[@]}"}"; do
    wait "$pid" 2>/dev/null || true
  done
  serve_pids=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_serves
  if (( redis_started )); then
    "$root/scripts/redis.sh" stop --port "$redis_port" --data "$work/redis" >>"$work/services.log" 2>&1 || true
  fi
  if (( kafka_started )); then
    "$root/scripts/kafka.sh" stop --port "$kafka_port" --dir "$work/kafka" >>"$work/services.log" 2>&1 || true
  fi
  if [[ ${KEEP_DATA:-0} == 1 ]]; then
    echo "run_cluster.sh: data and logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail_setup() {  # message, [log file to show]
  echo "run_cluster.sh: $1" >&2
  [[ -n ${2:-} && -f $2 ]] && tail -20 "$2" >&2
  exit 2
}

cd "$root"
t0=$SECONDS
# --owner-pid: a watchdog stops them if this script is killed before its trap runs.
kafka_started=1
bootstrap=$("$root/scripts/kafka.sh" start --port "$kafka_port" --dir "$work/kafka" --owner-pid $$ \
  2>>"$work/services.log") || fail_setup "the Kafka broker did not start on port $kafka_port" "$work/services.log"
kafka_pid=$(cat "$work/kafka/kafka.pid")
redis_url=""
redis_pid=""
if [[ " ${buses[*]} " == *" redis "* ]]; then
  redis_started=1
  redis_url=$("$root/scripts/redis.sh" start --port "$redis_port" --data "$work/redis" --owner-pid $$ \
    2>>"$work/services.log") || fail_setup "Redis did not start on port $redis_port" "$work/services.log"
  redis_pid=$(cat "$work/redis/redis.pid")
fi
echo "run_cluster.sh: Kafka $bootstrap (pid $kafka_pid)${redis_url:+, Redis $redis_url (pid $redis_pid)}; up in $((SECONDS - t0)) s; $(nproc) cores, open-file limit $(ulimit -n)"

# Owns-a-partition count of each instance's consumer, from GET /stats.
partition_counts() {
  local url counts=()
  for url in "$@"; do
    counts+=("$(curl -sf "$url/stats" 2>/dev/null | python3 -c \
      'import json,sys
try: print(len(json.load(sys.stdin).get("partitions", [])))
except Exception: print(0)' 2>/dev/null || echo 0)")
  done
  echo "${counts[*]}"
}

run_bus() {  # bus -> bench_sse's exit code
  local bus=$1
  local tag
  tag=$(date +%H%M%S)-$bus-$RANDOM
  local topic=sse-in-$tag group=sse-bench-$tag cfg=$work/$bus.yaml
  "$root/scripts/kafka.sh" create-topic "$topic" --partitions "$partitions" --port "$kafka_port" \
    >>"$work/services.log" 2>&1 || fail_setup "creating the topic $topic failed" "$work/services.log"
  # A fresh events namespace per run: ids start at 1 on the bus.
  cat >"$cfg" <<EOF
events:
  topic: events-$tag
  redis_prefix: 'es:$tag'
kafka:
  properties:
    session.timeout.ms: '6000'
EOF
  local kv
  for kv in ${KAFKA_PROPERTIES:-}; do
    printf "    %s: '%s'\n" "${kv%%=*}" "${kv#*=}" >>"$cfg"
  done
  if [[ -n ${TRACE_DIR:-} && $bus == kafka ]]; then
    # The broker stamps each event when it appends it: the producer's share
    # (publish -> append) and the reader's (append -> read) can be told apart.
    "$root/scripts/kafka.sh" run-class org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "$bootstrap" --create --topic "events-$tag" --partitions 1 \
      --replication-factor 1 --config message.timestamp.type=LogAppendTime >>"$work/services.log" 2>&1 ||
      fail_setup "creating the events topic events-$tag failed" "$work/services.log"
  fi
  local urls=() pids=() i port url
  for ((i = 0; i < instances; i++)); do
    port=$(free_port)
    mkdir -p "$work/$bus-$i"
    # shellcheck disable=SC2086  # SERVE_ARGS is a word list on purpose
    env EMBEDSTREAM_KAFKA_SINKS=store REDIS_URL="$redis_url" \
      "$serve_bin" serve --host 127.0.0.1 --port "$port" --data-dir "$work/$bus-$i/store" \
      -c "$cfg" --kafka-brokers "$bootstrap" --group "$group" --input-topic "$topic" \
      --ingest kafka --events-bus "$bus" ${SERVE_ARGS:-} >"$work/$bus-$i/serve.log" 2>&1 &
    serve_pids+=($!)
    pids+=($!)
    urls+=("http://127.0.0.1:$port")
  done
  for ((i = 0; i < instances; i++)); do
    url=${urls[i]}
    for _ in $(seq 1 240); do
      kill -0 "${pids[i]}" 2>/dev/null || fail_setup "instance $i ($bus) exited; its log:" "$work/$bus-$i/serve.log"
      curl -sf "$url/ready" >/dev/null 2>&1 && break
      sleep 0.5
    done
    curl -sf "$url/ready" >/dev/null 2>&1 ||
      fail_setup "$url/ready did not answer 200 within 120 s; its log:" "$work/$bus-$i/serve.log"
  done
  # Balanced: every instance owns a partition and together they own them all.
  local counts balanced=0 sum c
  for _ in $(seq 1 300); do
    read -r -a counts <<<"$(partition_counts "${urls[@]}")"
    sum=0 balanced=1
    for c in "${counts[@]}"; do (( sum += c )); (( c > 0 )) || balanced=0; done
    (( sum == partitions && balanced )) && break
    balanced=0
    sleep 0.2
  done
  (( balanced )) || fail_setup "the consumer group is not balanced after 60 s (partitions per instance: ${counts[*]})" "$work/$bus-0/serve.log"
  echo "run_cluster.sh: bus $bus: $instances instances ${urls[*]} (pids ${pids[*]}), input topic $topic ($partitions partitions: ${counts[*]} per instance), events topic/prefix events-$tag / es:$tag"

  local args=() rc=0
  for ((i = 0; i < instances; i++)); do args+=(--url "${urls[i]}" --server-pid "${pids[i]}"); done
  args+=(--other-pid "$kafka_pid")
  [[ $bus == redis ]] && args+=(--other-pid "$redis_pid")
  [[ -n ${TRACE_DIR:-} ]] && args+=(--trace "$TRACE_DIR/trace-$bus.csv")
  set +o pipefail  # the pipeline's status is tee's; bench_sse's is PIPESTATUS[0]
  "$bench_bin" "${args[@]}" "${bench_args[@]+"${bench_args[@]}"}" | tee "$work/bench-$bus.out"
  rc=${PIPESTATUS[0]}
  set -o pipefail
  if [[ -n ${TRACE_DIR:-} && $bus == kafka ]]; then
    "$root/scripts/kafka.sh" run-class org.apache.kafka.tools.consumer.ConsoleConsumer \
      --bootstrap-server "$bootstrap" --topic "events-$tag" --from-beginning --timeout-ms 5000 \
      --formatter-property print.timestamp=true --formatter-property print.offset=true \
      >"$TRACE_DIR/events-kafka.txt" 2>>"$work/services.log" || true
    echo "run_cluster.sh: events topic dumped to $TRACE_DIR/events-kafka.txt ($(wc -l <"$TRACE_DIR/events-kafka.txt") records)"
  fi
  if (( rc != 0 )); then
    echo "run_cluster.sh: bench_sse ($bus) exited $rc; server log tails:" >&2
    for ((i = 0; i < instances; i++)); do tail -5 "$work/$bus-$i/serve.log" >&2; done
  fi
  stop_serves
  return "$rc"
}

overall=0
summary=()
for bus in "${buses[@]}"; do
  rc=0
  run_bus "$bus" || rc=$?
  line=$(grep -E '^bus ' "$work/bench-$bus.out" 2>/dev/null || true)
  summary+=("${line:-bus $bus: no result (bench_sse exited $rc)}")
  (( rc > overall )) && overall=$rc
  echo
done
echo "run_cluster.sh: summary ($instances instances, $(nproc) cores, load avg $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  %s\n' "${summary[@]}"
exit "$overall"
