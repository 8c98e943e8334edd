#!/usr/bin/env bash
# A real Apache Kafka 4.x broker for tests: single node, KRaft combined mode
# (broker + controller in one JVM), on 127.0.0.1, from Maven Central jars.
#
# Usage: scripts/kafka.sh COMMAND [options]
#
#   fetch                     download the jars into .cache/kafka/libs (once; then instant)
#   start  [--port P] [--dir DIR] [--keep-data] [--timeout S] [--config KEY=VALUE]...
#          [--owner-pid PID]
#                             fetch if needed, (re)create the data dir, format it, start
#                             the broker in the background and wait until it answers
#                             admin requests; prints the bootstrap address (stdout).
#                             Already running there: says so, prints it, exits 0.
#                             --keep-data: reuse the data dir as it is (restart with the
#                             topics and messages of the last run; formats only if empty)
#                             --owner-pid: stop the broker when process PID ends (so a
#                             killed test run leaves no broker behind)
#   stop   [--port P] [--dir DIR] [--keep-data] [--all]
#                             SIGTERM, up to 30 s, then SIGKILL. Deletes the topic data
#                             unless --keep-data (the logs stay until the next start).
#                             --all: every broker started from this checkout
#   status [--port P] [--dir DIR]       running? pid, memory, bootstrap (exit 3 if not running)
#   topics [--port P]                   list topics
#   describe [--port P] [TOPIC]         partitions and leaders of one or all topics
#   create-topic NAME [--partitions N] [--port P]   (default 3 partitions, replication 1)
#   produce TOPIC [--port P] [--key-separator SEP]  one message per stdin line
#   consume TOPIC [--port P] [--max-messages N] [--timeout-ms MS] [--group G]
#          [--keys] [--key-separator SEP]
#                             from the beginning; stops after N messages or MS idle
#   logs   [--port P] [-n LINES] [-f]   tail the broker's log
#   run-class CLASS [ARGS...]           any class on the Kafka classpath, e.g.
#                             org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
#
# Defaults: --port $EMBEDSTREAM_KAFKA_PORT or 9092 (the controller listens on P+1);
# --dir $EMBEDSTREAM_KAFKA_DIR or .cache/kafka/data-<port>. Version: $KAFKA_VERSION
# (default below; must exist on Maven Central for kafka_2.13 and kafka-tools).
# JVM options: $KAFKA_HEAP_OPTS (default -Xms64m -Xmx512m), $KAFKA_JVM_PERFORMANCE_OPTS,
# $KAFKA_OPTS (appended). Needs Java 17+ and Maven (scripts/install_deps.sh test
# installs them when missing). $EMBEDSTREAM_MAVEN_REPO: Maven's local repository
# (default .cache/kafka/m2).
# See docs/KAFKA_TEST_BROKER.md.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
CONF_DIR="$REPO_ROOT/scripts/kafka"
CACHE="${EMBEDSTREAM_KAFKA_CACHE:-$REPO_ROOT/.cache/kafka}"
LIBS="$CACHE/libs"
STAMP="$LIBS/.complete"
READY_TIMEOUT=90
STOP_TIMEOUT=30

usage() { script_help kafka.sh; }

# ---------------------------------------------------------------- prerequisites

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n1
}

need_java() {
  if ! command -v java >/dev/null 2>&1; then
    install_group test
    command -v java >/dev/null 2>&1 \
      || die "Java 17+ is needed (Debian: scripts/install_deps.sh test installs it, with maven)"
  fi
  local v
  v="$(java_major)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka 4 needs Java 17 or newer; 'java' is version ${v:-unknown}"
}

need_mvn() {
  command -v mvn >/dev/null 2>&1 && return 0
  install_group test
  command -v mvn >/dev/null 2>&1 \
    || die "Maven is needed to fetch the Kafka jars (Debian: scripts/install_deps.sh test installs maven)"
}

# ---------------------------------------------------------------- fetch

stamp_text() {
  printf 'kafka=%s pom=%s\n' "$KAFKA_VERSION" "$(sha256sum "$CONF_DIR/pom.xml" | cut -c1-16)"
}

libs_complete() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_text)" ]]; }

cmd_fetch() {
  [[ $# -eq 0 ]] || die "fetch takes no arguments"
  if libs_complete; then
    log "Kafka $KAFKA_VERSION jars: present ($LIBS)"
    return 0
  fi
  mkdir -p "$CACHE"
  # Several test processes may start brokers at once: one download.
  exec 8>"$CACHE/.fetch.lock"
  flock 8
  if libs_complete; then
    flock -u 8
    log "Kafka $KAFKA_VERSION jars: fetched by another process ($LIBS)"
    return 0
  fi
  need_java
  need_mvn
  log "fetching Kafka $KAFKA_VERSION (kafka_2.13, kafka-tools, log4j2) from Maven Central ..."
  local t0=$SECONDS tmp="$CACHE/libs.tmp.$$" out="$CACHE/fetch.log"
  rm -rf "$tmp"
  # -C: a download whose checksum does not match Maven Central's fails the fetch.
  if ! mvn -B -q -C -Dstyle.color=never -f "$CONF_DIR/pom.xml" \
        -Dmaven.repo.local="${EMBEDSTREAM_MAVEN_REPO:-$CACHE/m2}" \
        -Dkafka.version="$KAFKA_VERSION" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" \
        dependency:copy-dependencies >"$out" 2>&1; then
    rm -rf "$tmp"
    { grep -m 3 -E 'Could not|Failed to execute|UnknownHost|Connect' "$out" || tail -n 20 "$out"; } \
      | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "Maven could not fetch Kafka $KAFKA_VERSION (full output: $out).
    Is Maven Central reachable? Do org.apache.kafka:kafka_2.13, kafka-tools and kafka-tools-api
    $KAFKA_VERSION all exist there? (4.4.0 did not, in November 2026: kafka-tools-api missing)"
  fi
  local j
  for j in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" \
           "kafka-clients-$KAFKA_VERSION.jar"; do
    [[ -f "$tmp/$j" ]] || { rm -rf "$tmp"; die "fetch incomplete: $j missing (see $out)"; }
  done
  compgen -G "$tmp/log4j-core-*.jar" >/dev/null || { rm -rf "$tmp"; die "fetch incomplete: log4j-core missing"; }
  stamp_text >"$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  flock -u 8
  log "Kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | cut -f1) in $((SECONDS - t0)) s"
}

ensure_libs() { libs_complete || cmd_fetch; need_java; }

# ---------------------------------------------------------------- helpers

PORT="${EMBEDSTREAM_KAFKA_PORT:-9092}"
DIR=""

resolve_dir() {
  if [[ -n "$DIR" ]]; then
    DIR="$(abspath_from_caller "$DIR")"
  elif [[ -n "${EMBEDSTREAM_KAFKA_DIR:-}" ]]; then
    DIR="$(abspath_from_caller "$EMBEDSTREAM_KAFKA_DIR")"
  else
    DIR="$CACHE/data-$PORT"
  fi
  PIDFILE="$DIR/kafka.pid"
}

check_port_arg() {
  [[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1 && "$PORT" -le 65534 ]] || die "bad port '$PORT'"
}

# Pid of the broker whose data dir is $DIR, if it runs (checks the command line,
# so a stale pid file whose pid was reused is not taken for the broker).
broker_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *" kafka.Kafka $DIR/server.properties"* ]] || return 1
  printf '%s\n' "$pid"
}

# The port the broker in $DIR was configured with (from its server.properties).
configured_port() {
  sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$DIR/server.properties" 2>/dev/null | head -n1
}

TOOLS_JVM=(-Xms16m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
           "-Dlog4j2.configurationFile=$CONF_DIR/tools-log4j2.xml")

run_class() {  # run_class CLASS ARGS... (a Kafka CLI tool, logging WARN to stderr)
  java "${TOOLS_JVM[@]}" -cp "$LIBS/*" "$@"
}

admin_config() {  # short timeouts so a not-yet-ready broker fails fast
  local f="$CACHE/admin.properties"
  mkdir -p "$CACHE"
  printf '%s\n' request.timeout.ms=5000 default.api.timeout.ms=10000 \
    socket.connection.setup.timeout.ms=2000 socket.connection.setup.timeout.max.ms=2000 >"$f.$$"
  mv "$f.$$" "$f"
  printf '%s\n' "$f"
}

log_tail() {  # (not common.sh's: two log files)
  local n="${1:-40}"
  if [[ -s "$DIR/logs/server.log" ]]; then
    echo "--- $DIR/logs/server.log (last $n lines) ---"
    tail -n "$n" "$DIR/logs/server.log"
  fi
  if [[ -s "$DIR/kafka.out" ]]; then
    echo "--- $DIR/kafka.out (last $n lines) ---"
    tail -n "$n" "$DIR/kafka.out"
  fi
}

new_cluster_id() {  # a Kafka Uuid: 16 random bytes, base64url without padding, not starting with '-'
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && break
  done
  printf '%s\n' "$id"
}

rss_mib() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

# Parses the options shared by most commands; the rest go to ARGS.
parse_common() {
  ARGS=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port)   [[ $# -ge 2 ]] || die "--port needs a value"; PORT="$2"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --dir)    [[ $# -ge 2 ]] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
      --dir=*)  DIR="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) ARGS+=("$1"); shift ;;
    esac
  done
  check_port_arg
  resolve_dir
}

# ---------------------------------------------------------------- start / stop

wait_ready() {  # wait_ready PID: until the admin API answers, the process dies, or the timeout
  local pid="$1" deadline=$((SECONDS + READY_TIMEOUT)) cfg err
  cfg="$(admin_config)"
  err="$DIR/ready-check.err"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail 60 >&2
      die "the broker exited during start-up (logs above; data dir $DIR)"
    fi
    if port_open "$PORT" &&
       timeout 30 java "${TOOLS_JVM[@]}" -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
         --bootstrap-server "127.0.0.1:$PORT" --command-config "$cfg" --list >/dev/null 2>"$err"; then
      rm -f "$err"
      return 0
    fi
    sleep 0.5
  done
  log_tail 60 >&2
  [[ -s "$err" ]] && { echo "--- last readiness check ---"; tail -n 5 "$err"; } >&2
  die "the broker on port $PORT was not ready after $READY_TIMEOUT s (pid $pid still running; stop it with: $0 stop --port $PORT)"
}

cmd_start() {
  local keep=0 owner=""
  local -a extra=()
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --keep-data) keep=1; shift ;;
      --timeout)   [[ $# -ge 2 ]] || die "--timeout needs a value"; READY_TIMEOUT="$2"; shift 2 ;;
      --timeout=*) READY_TIMEOUT="${1#*=}"; shift ;;
      --config)    [[ $# -ge 2 && "$2" == *=* ]] || die "--config needs KEY=VALUE"; extra+=("$2"); shift 2 ;;
      --config=*)  extra+=("${1#*=}"); shift ;;
      --owner-pid) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--owner-pid needs a pid"; owner="$2"; shift 2 ;;
      *) die "start: unknown argument '$1' (see --help)" ;;
    esac
  done
  local ctrl=$((PORT + 1))
  local t_all=$SECONDS

  ensure_libs
  start_lock "$CACHE/locks/port-$PORT.lock"

  local pid
  if pid="$(broker_pid)"; then
    local cport
    cport="$(configured_port)"
    [[ "$cport" == "$PORT" ]] || die "a broker (pid $pid) already runs on data dir $DIR with port $cport"
    log "a broker from this script is already running on port $PORT (pid $pid, data dir $DIR)"
    echo "127.0.0.1:$PORT"
    return 0
  fi
  local p
  for p in "$PORT" "$ctrl"; do
    die_if_port_busy "$p" "choose another with --port; the controller uses port+1"
  done

  # Data dir: fresh unless --keep-data. Only ever delete a directory this script made.
  if [[ -e "$DIR" && $keep -eq 0 ]]; then
    if [[ -f "$DIR/.kafka-test-broker" ]] || [[ -d "$DIR" && -z "$(ls -A "$DIR")" ]]; then
      rm -rf "$DIR"
    else
      die "$DIR exists and was not made by this script; refusing to delete it (choose another --dir)"
    fi
  fi
  if [[ -e "$DIR" && ! -f "$DIR/.kafka-test-broker" && -n "$(ls -A "$DIR")" ]]; then
    die "$DIR exists and was not made by this script (choose another --dir)"
  fi
  mkdir -p "$DIR/logs"
  touch "$DIR/.kafka-test-broker"

  {
    sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$ctrl|g" -e "s|@DATA_DIR@|$DIR|g" \
      "$CONF_DIR/server.properties.in"
    if [[ ${#extra[@]} -gt 0 ]]; then
      echo "# --config"
      printf '%s\n' "${extra[@]}"
    fi
  } >"$DIR/server.properties.$$"
  mv "$DIR/server.properties.$$" "$DIR/server.properties"

  if [[ -f "$DIR/kraft-logs/meta.properties" ]]; then
    log "reusing the data in $DIR (cluster $(sed -n 's/^cluster.id=//p' "$DIR/kraft-logs/meta.properties"))"
  else
    local cid
    cid="$(new_cluster_id)"
    if ! run_class kafka.tools.StorageTool format -t "$cid" -c "$DIR/server.properties" \
          >"$DIR/format.log" 2>&1; then
      cat "$DIR/format.log" >&2
      die "formatting the storage in $DIR failed"
    fi
  fi

  # shellcheck disable=SC2206  # the option variables are word lists on purpose
  local -a jvm=(${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}
                ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:MaxDirectMemorySize=256m -Djava.awt.headless=true}
                ${KAFKA_OPTS:-})
  local t0=$SECONDS
  # setsid: its own session, so a Ctrl-C in the caller's terminal does not reach it.
  # The inner shell writes its pid, then exec's java (same pid).
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    java "${jvm[@]}" \
      -Dlog4j2.configurationFile="$CONF_DIR/log4j2.xml" -Dkafka.logs.dir="$DIR/logs" \
      -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
      </dev/null >"$DIR/kafka.out" 2>&1 8>&- 9>&- &
  local _
  for _ in $(seq 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || die "could not start java (see $DIR/kafka.out)"
  wait_ready "$pid"
  if [[ -n "$owner" ]]; then
    start_watchdog "$DIR/watchdog.log" "$owner" "$pid" "$REPO_ROOT/scripts/kafka.sh" stop --port "$PORT" --dir "$DIR"
  fi
  log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$PORT (pid $pid, $(rss_mib "$pid") MiB RSS, ready in $((SECONDS - t0)) s, total $((SECONDS - t_all)) s; data $DIR)"
  echo "127.0.0.1:$PORT"
}

stop_dir() {  # stop the broker of $DIR (if any); $1 = keep data (0/1)
  local keep="$1" pid
  if pid="$(broker_pid)"; then
    local t0=$SECONDS
    stop_pid "$pid" "$STOP_TIMEOUT" broker
    log "stopped the broker on port ${PORT} (pid $pid, $((SECONDS - t0)) s)"
  else
    log "no broker from this script is running in $DIR"
  fi
  rm -f "$PIDFILE"
  if [[ "$keep" -eq 0 && -f "$DIR/.kafka-test-broker" ]]; then
    rm -rf "$DIR/kraft-logs"
  fi
}

cmd_stop() {
  local keep=0 all=0
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --keep-data) keep=1; shift ;;
      --all) all=1; shift ;;
      *) die "stop: unknown argument '$1' (see --help)" ;;
    esac
  done
  if [[ $all -eq 0 ]]; then
    stop_dir "$keep"
    return 0
  fi
  local pf found=0
  for pf in "$CACHE"/data-*/kafka.pid ${EMBEDSTREAM_KAFKA_DIR:+"$EMBEDSTREAM_KAFKA_DIR/kafka.pid"}; do
    [[ -f "$pf" ]] || continue
    DIR="$(dirname "$pf")"
    PIDFILE="$pf"
    PORT="$(configured_port)"
    found=1
    stop_dir "$keep"
  done
  [[ $found -eq 1 ]] || log "no brokers from this script are running"
}

cmd_status() {
  parse_common "$@"
  [[ ${#ARGS[@]} -eq 0 ]] || die "status: unknown argument '${ARGS[0]}'"
  local pid
  if pid="$(broker_pid)"; then
    echo "running: pid $pid, bootstrap 127.0.0.1:$(configured_port), $(rss_mib "$pid") MiB RSS, data $DIR"
  else
    echo "not running (data dir $DIR)"
    return 3
  fi
}

bootstrap_args() { echo "--bootstrap-server" "127.0.0.1:$PORT"; }

cmd_topics() {
  parse_common "$@"
  [[ ${#ARGS[@]} -eq 0 ]] || die "topics: unknown argument '${ARGS[0]}'"
  ensure_libs
  # shellcheck disable=SC2046
  run_class org.apache.kafka.tools.TopicCommand $(bootstrap_args) --list
}

cmd_describe() {
  parse_common "$@"
  ensure_libs
  local -a t=()
  [[ ${#ARGS[@]} -gt 0 ]] && t=(--topic "${ARGS[0]}")
  # shellcheck disable=SC2046
  run_class org.apache.kafka.tools.TopicCommand $(bootstrap_args) --describe "${t[@]+"${t[@]}"}"
}

cmd_create_topic() {
  local name="" parts=3
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --partitions)   [[ $# -ge 2 ]] || die "--partitions needs a value"; parts="$2"; shift 2 ;;
      --partitions=*) parts="${1#*=}"; shift ;;
      -*) die "create-topic: unknown argument '$1'" ;;
      *) [[ -z "$name" ]] || die "create-topic: one topic name"; name="$1"; shift ;;
    esac
  done
  [[ -n "$name" ]] || die "create-topic NAME [--partitions N]"
  [[ "$parts" =~ ^[0-9]+$ && "$parts" -ge 1 ]] || die "bad --partitions '$parts'"
  ensure_libs
  # shellcheck disable=SC2046
  run_class org.apache.kafka.tools.TopicCommand $(bootstrap_args) --create --if-not-exists \
    --topic "$name" --partitions "$parts" --replication-factor 1 >/dev/null
  log "topic $name: $parts partitions"
}

cmd_produce() {
  local topic="" sep=""
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --key-separator) [[ $# -ge 2 ]] || die "--key-separator needs a value"; sep="$2"; shift 2 ;;
      -*) die "produce: unknown argument '$1'" ;;
      *) topic="$1"; shift ;;
    esac
  done
  [[ -n "$topic" ]] || die "produce TOPIC (messages on stdin, one per line)"
  ensure_libs
  local -a keyopts=()
  [[ -n "$sep" ]] && keyopts=(--reader-property parse.key=true --reader-property "key.separator=$sep")
  # shellcheck disable=SC2046
  run_class org.apache.kafka.tools.ConsoleProducer $(bootstrap_args) --topic "$topic" \
    --command-property acks=all "${keyopts[@]+"${keyopts[@]}"}"
}

cmd_consume() {
  local topic="" maxm="" tmo=10000 group="" keys=0 ksep=""
  parse_common "$@"
  set -- "${ARGS[@]+"${ARGS[@]}"}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --max-messages) [[ $# -ge 2 ]] || die "--max-messages needs a value"; maxm="$2"; shift 2 ;;
      --timeout-ms)   [[ $# -ge 2 ]] || die "--timeout-ms needs a value"; tmo="$2"; shift 2 ;;
      --group)        [[ $# -ge 2 ]] || die "--group needs a value"; group="$2"; shift 2 ;;
      --keys)         keys=1; shift ;;
      --key-separator) [[ $# -ge 2 ]] || die "--key-separator needs a value"; keys=1; ksep="$2"; shift 2 ;;
      -*) die "consume: unknown argument '$1'" ;;
      *) topic="$1"; shift ;;
    esac
  done
  [[ -n "$topic" ]] || die "consume TOPIC [--max-messages N] [--timeout-ms MS] [--group G] [--keys]"
  ensure_libs
  local -a opts=(--from-beginning --timeout-ms "$tmo")
  [[ -n "$maxm" ]] && opts+=(--max-messages "$maxm")
  [[ -n "$group" ]] && opts+=(--group "$group")
  [[ $keys -eq 1 ]] && opts+=(--formatter-property print.key=true)
  [[ -n "$ksep" ]] && opts+=(--formatter-property "key.separator=$ksep")
  local rc=0
  # shellcheck disable=SC2046
  run_class org.apache.kafka.tools.consumer.ConsoleConsumer $(bootstrap_args) --topic "$topic" \
    "${opts[@]}" 2> >(grep -v -e 'TimeoutException' -e '^Processed a total of' -e 'consumer rebalance protocol (KIP-848)' -e '^\s*at ' >&2) || rc=$?
  # the console consumer exits 1 after --timeout-ms; that is the normal end here
  [[ $rc -eq 0 || $rc -eq 1 ]] || return "$rc"
}

cmd_logs() {
  parse_common "$@"
  parse_logs_args "${ARGS[@]+"${ARGS[@]}"}"
  local n="$LOGS_N" follow="$LOGS_FOLLOW"
  [[ -d "$DIR" ]] || die "no data dir $DIR"
  if [[ $follow -eq 1 ]]; then
    exec tail -n "$n" -F "$DIR/logs/server.log" "$DIR/kafka.out"
  fi
  log_tail "$n"
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd="$1"; shift
case "$cmd" in
  fetch)        cmd_fetch "$@" ;;
  start)        cmd_start "$@" ;;
  stop)         cmd_stop "$@" ;;
  status)       cmd_status "$@" ;;
  topics)       cmd_topics "$@" ;;
  describe)     cmd_describe "$@" ;;
  create-topic) cmd_create_topic "$@" ;;
  produce)      cmd_produce "$@" ;;
  consume)      cmd_consume "$@" ;;
  logs)         cmd_logs "$@" ;;
  run-class)    [[ $# -ge 1 ]] || die "run-class CLASS [ARGS...]"; ensure_libs; run_class "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
