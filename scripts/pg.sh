#!/usr/bin/env bash
# A real PostgreSQL 16 + pgvector server for tests and local use, from the PyPI
# wheel `pgserver` (its site-packages/pgserver/pginstall/{bin,lib,share}), on
# 127.0.0.1 with a TCP port. No Docker, no system PostgreSQL.
#
# Usage: scripts/pg.sh COMMAND [--port P] [--data DIR] [options]
#
#   fetch     venv .cache/pg/venv + pip install pgserver==$PGSERVER_VERSION (once; then
#             instant, no pip call); prints the pginstall path (stdout)
#   start  [--timeout S] [--owner-pid PID]
#             fetch if needed; initdb DIR once (an existing cluster is reused, so a
#             restart keeps the data); start postgres; wait until it accepts TCP
#             connections (pg_isready); create the role, the database and the
#             `vector` extension; prints the DSN (stdout). Already running: says so,
#             exits 0. --owner-pid: stop the server when process PID ends (so a
#             killed test run leaves no server behind)
#   stop                    pg_ctl stop -m fast (keeps the data)
#   status                  running? (exit 0) / not running (exit 3)
#   psql   [PSQL ARGS...]   the bundled psql, connected over TCP to the test database
#   env                     export lines: DATABASE_HOST/PORT/NAME/USER/PASSWORD/URL, PG*
#   logs   [-n N] [-f]      tail the server log
#   reset                   stop, then delete the data dir
#
# Defaults: --port $DATABASE_PORT, else the port the data dir was last started
# with, else 5433; --data $EMBEDSTREAM_PG_DATA or .cache/pg/data. Role, password and
# database: $DATABASE_USER (postgres), $DATABASE_PASSWORD (postgres), $DATABASE_NAME
# (text_messages_db), as in seed 001. As root, postgres runs as the system user
# $EMBEDSTREAM_PG_OS_USER (embedstream-pg; created with useradd if missing), since
# PostgreSQL refuses to run as root. See docs/POSTGRES_TEST_DB.md.
set -euo pipefail
# shellcheck source=scripts/common.sh disable=SC1091  # followed with shellcheck -x
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PGSERVER_VERSION="${PGSERVER_VERSION:-0.1.4}"   # PostgreSQL 16.2 + pgvector 0.6.2
# sha256 of pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
# (Debian 12's Python 3.11); empty for a version of your own unless you set it.
if [[ "$PGSERVER_VERSION" == 0.1.4 ]]; then
  PGSERVER_SHA256="${PGSERVER_SHA256-d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813}"
else
  PGSERVER_SHA256="${PGSERVER_SHA256-}"
fi
CACHE="${EMBEDSTREAM_PG_CACHE:-$REPO_ROOT/.cache/pg}"
VENV="$CACHE/venv"
STAMP="$VENV/.embedstream-pgserver"
OS_USER="${EMBEDSTREAM_PG_OS_USER:-embedstream-pg}"
DB_USER="${DATABASE_USER:-postgres}"
DB_PASSWORD="${DATABASE_PASSWORD:-postgres}"
DB_NAME="${DATABASE_NAME:-text_messages_db}"
DEFAULT_PORT=5433
READY_TIMEOUT=60
MARKER=".embedstream-pg"      # in the data dir: made by this script (and who the superuser is)
CONF="embedstream.conf"       # in the data dir: port, addresses, socket dir (rewritten by start)

usage() { script_help pg.sh; }

# ---------------------------------------------------------------- prerequisites

need_venv() {
  # Debian's python3 has venv but not ensurepip without python3-venv.
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && return 0
  install_group test \
    || die "python3 with venv is needed (Debian: scripts/install_deps.sh test)"
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || die "python3 cannot make a venv with pip (Debian: apt-get install python3-venv)"
}

# ---------------------------------------------------------------- fetch

stamp_ok() {  # the pinned version installed completely? sets PGINSTALL
  [[ -f "$STAMP" ]] || return 1
  local ver path
  { read -r ver; read -r path; } <"$STAMP" || return 1
  [[ "$ver" == "pgserver=$PGSERVER_VERSION" && -x "$path/bin/postgres" ]] || return 1
  PGINSTALL="$path"
  PGBIN="$path/bin"
}

cmd_fetch() {
  if stamp_ok; then
    log "pgserver $PGSERVER_VERSION: present ($PGINSTALL)"
    echo "$PGINSTALL"
    return 0
  fi
  mkdir -p "$CACHE"
  chmod 755 "$CACHE"
  # Several test processes may start servers at once: one install.
  # The lock sits beside the install, which several checkouts may share (see
  # relocate_install).
  mkdir -p "$(dirname "$VENV")"
  exec 8>"$(dirname "$VENV")/.fetch.lock"
  flock 8
  if stamp_ok; then
    flock -u 8
    log "pgserver $PGSERVER_VERSION: installed by another process ($PGINSTALL)"
    echo "$PGINSTALL"
    return 0
  fi
  need_venv
  local t0 out="$CACHE/fetch.log"
  t0="$(now_ms)"
  log "installing pgserver $PGSERVER_VERSION (PostgreSQL 16 + pgvector, ~11 MB wheel) into $VENV ..."
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    die "fetch: 'python3 -m venv $VENV' failed (full output: $out)"
  fi
  # --no-deps: only the bundled binaries are used, not pgserver's Python API
  # (which would also need fasteners, platformdirs, psutil).
  # The pinned wheel is checked by sha256 (pip refuses any other file); a
  # PGSERVER_VERSION of your own is installed unchecked unless you also set
  # PGSERVER_SHA256.
  local req="$CACHE/requirements.txt"
  if [[ -n "$PGSERVER_SHA256" ]]; then
    printf 'pgserver==%s --hash=sha256:%s\n' "$PGSERVER_VERSION" "$PGSERVER_SHA256" >"$req"
  else
    warn "PGSERVER_VERSION=$PGSERVER_VERSION has no PGSERVER_SHA256: installing it unchecked"
    printf 'pgserver==%s\n' "$PGSERVER_VERSION" >"$req"
  fi
  if ! "$VENV/bin/python" -m pip install -q --no-deps --only-binary=:all: \
        ${PGSERVER_SHA256:+--require-hashes} --disable-pip-version-check -r "$req" >>"$out" 2>&1; then
    tail -n 20 "$out" >&2
    die "fetch: pip install pgserver==$PGSERVER_VERSION failed (full output: $out).
    Is PyPI reachable? Is there a wheel for this Python ($(python3 -V 2>&1)) and platform?"
  fi
  local path
  path="$("$VENV/bin/python" - <<'PY'
import pathlib, sysconfig
print(pathlib.Path(sysconfig.get_paths()["purelib"]) / "pgserver" / "pginstall")
PY
)"
  [[ -x "$path/bin/postgres" && -x "$path/bin/initdb" && -x "$path/bin/psql" ]] \
    || die "fetch: the pgserver wheel has no $path/bin/{postgres,initdb,psql}"
  compgen -G "$path/share/postgresql/extension/vector.control" >/dev/null \
    || compgen -G "$path/share/extension/vector.control" >/dev/null \
    || die "fetch: the pgserver wheel has no pgvector (vector.control) under $path/share"
  chmod -R a+rX "$VENV"   # readable by $OS_USER when we are root
  printf 'pgserver=%s\n%s\n' "$PGSERVER_VERSION" "$path" >"$STAMP"
  flock -u 8
  stamp_ok
  log "pgserver $PGSERVER_VERSION: $("$PGBIN/postgres" --version), $(du -sh "$VENV" | cut -f1) in $(since "$t0")"
  echo "$PGINSTALL"
}

ensure_fetched() { stamp_ok || cmd_fetch >/dev/null; }

# ---------------------------------------------------------------- running as the postgres OS user

need_os_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  id -u "$OS_USER" >/dev/null 2>&1 && return 0
  command -v useradd >/dev/null 2>&1 || die "need useradd to create the system user $OS_USER"
  log "creating the system user $OS_USER (PostgreSQL does not run as root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "embedstream test PostgreSQL" "$OS_USER" \
    || id -u "$OS_USER" >/dev/null 2>&1 \
    || die "useradd $OS_USER failed"
}

as_pg() {  # as_pg CMD ARGS...: run as $OS_USER when root, else as ourselves; from /
  if [[ $(id -u) -ne 0 ]]; then
    (cd / && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$OS_USER" -- "$@")
  else
    local q
    q="$(printf '%q ' "$@")"
    (cd / && su -s /bin/sh "$OS_USER" -c "$q")
  fi
}

give_to_pg() {  # chown PATH... to $OS_USER when root
  [[ $(id -u) -ne 0 ]] || chown "$OS_USER:" "$@"
}

# As root, postgres runs as $OS_USER, which must reach its binaries and its
# data dir. A checkout under a private home (/root is 0700 on Debian) is out of
# its reach: then the install goes to $SYSTEM_DIR/install and each data dir to
# $SYSTEM_DIR/data/<name>-<checksum of the path asked for>, with a symlink at
# that path pointing there, so every command given that path finds it.
SYSTEM_DIR="${EMBEDSTREAM_PG_SYSTEM_DIR:-/var/lib/embedstream-pg}"

reachable_by_pg() {  # reachable_by_pg PATH: $OS_USER can traverse to PATH's nearest existing dir
  local p="$1"
  while [[ ! -d "$p" ]]; do p="$(dirname "$p")"; done
  as_pg test -x "$p"
}

relocate_install() {
  [[ $(id -u) -eq 0 ]] || return 0
  need_os_user
  reachable_by_pg "$VENV" && return 0
  # One install per version: another checkout's (or version's) fetch never
  # deletes binaries a running server uses.
  VENV="$SYSTEM_DIR/install/pgserver-$PGSERVER_VERSION/venv"
  STAMP="$VENV/.embedstream-pgserver"
  mkdir -p "$(dirname "$VENV")"
  chmod 755 "$SYSTEM_DIR" "$SYSTEM_DIR/install" "$(dirname "$VENV")"
}

relocate_data() {  # sets DATA to a dir $OS_USER can reach (see above)
  [[ $(id -u) -eq 0 ]] || return 0
  if [[ -L "$DATA" ]]; then DATA="$(readlink -m "$DATA")"; return 0; fi
  # Only `start` makes a data dir; the other commands look where it would be.
  [[ "${PG_COMMAND:-}" == start ]] || return 0
  need_os_user
  reachable_by_pg "$(dirname "$DATA")" && return 0
  local asked="$DATA" real
  real="$SYSTEM_DIR/data/$(basename "$asked")-$(printf '%s' "$asked" | cksum | cut -d' ' -f1)"
  mkdir -p "$SYSTEM_DIR/data" "$(dirname "$asked")"
  chmod 755 "$SYSTEM_DIR" "$SYSTEM_DIR/data"
  # An empty directory made for us (a test's mkdtemp) becomes the symlink.
  if [[ -d "$asked" ]]; then
    rmdir "$asked" 2>/dev/null \
      || die "$asked is out of reach for $OS_USER (a parent lacks o+x) and not empty: choose a --data under a reachable directory"
  fi
  ln -sfn "$real" "$asked"
  log "$asked: out of reach for $OS_USER, using $real (symlinked)"
  DATA="$real"
}

# ---------------------------------------------------------------- options and paths

PORT=""
DATA=""

parse_common() {  # --port/--data anywhere (for psql: only before the psql arguments)
  parse_port_data "$@"
  if [[ -n "$DATA" ]]; then
    DATA="$(abspath_from_caller "$DATA")"
  elif [[ -n "${EMBEDSTREAM_PG_DATA:-}" ]]; then
    DATA="$(abspath_from_caller "$EMBEDSTREAM_PG_DATA")"
  else
    DATA="$CACHE/data"
  fi
  DATA="${DATA%/}"
  ASKED_DATA="$DATA"
  relocate_data
  LOGFILE="$DATA/postgres.log"
  if [[ -z "$PORT" ]]; then
    PORT="${DATABASE_PORT:-$(configured_port)}"
    PORT="${PORT:-$DEFAULT_PORT}"
  fi
  check_port
}

conf_value() {  # conf_value KEY: from $DATA/embedstream.conf (written by start)
  [[ -f "$DATA/$CONF" ]] || return 0
  sed -n "s/^$1 = '\{0,1\}\([^']*\)'\{0,1\}\$/\1/p" "$DATA/$CONF" 2>/dev/null | head -n1
}
configured_port() { conf_value port; }

is_cluster() { [[ -f "$DATA/PG_VERSION" ]]; }
ours() { [[ -f "$DATA/$MARKER" ]]; }

server_pid() {  # the postmaster of $DATA, if it runs
  [[ -f "$DATA/postmaster.pid" ]] || return 1
  local pid
  pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *postgres* ]] || return 1
  printf '%s\n' "$pid"
}

running() {
  server_pid >/dev/null || return 1
  ensure_fetched
  as_pg "$PGBIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

urlencode() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [a-zA-Z0-9._~-]) out+="$c" ;;
      *) out+="$(printf '%%%02X' "'$c")" ;;
    esac
  done
  printf '%s' "$out"
}

dsn() {
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$(urlencode "$DB_USER")" \
    "$(urlencode "$DB_PASSWORD")" "$PORT" "$(urlencode "$DB_NAME")"
}

tcp_env() {  # the libpq environment for the test database over TCP
  export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER="$DB_USER" PGPASSWORD="$DB_PASSWORD" \
         PGDATABASE="$DB_NAME" PGCONNECT_TIMEOUT=10
}

# ---------------------------------------------------------------- start

socket_dir_for() {  # the data dir itself, unless the socket path would be too long
  local sock="$DATA/.s.PGSQL.$PORT"
  if [[ ${#sock} -le 100 ]]; then
    printf '%s\n' "$DATA"
  else
    printf '/tmp/embedstream-pg-%s\n' "$(printf '%s' "$DATA" | cksum | cut -d' ' -f1)"
  fi
}

init_cluster() {
  local t0 pwfile
  t0="$(now_ms)"
  if [[ -e "$DATA" && -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "initdb: $DATA exists, is not empty and holds no PostgreSQL cluster; refusing to touch it (choose another --data)"
  fi
  mkdir -p "$DATA"
  chmod 700 "$DATA"
  give_to_pg "$DATA"
  local parent
  parent="$(dirname "$DATA")"
  as_pg test -x "$parent" -a -w "$DATA" \
    || die "initdb: user $OS_USER cannot reach $DATA (every parent directory needs o+x; $parent does not allow it)"
  pwfile="$(mktemp)"
  printf '%s\n' "$DB_PASSWORD" >"$pwfile"
  give_to_pg "$pwfile"
  log "initdb $DATA (superuser $DB_USER, scram-sha-256 over TCP) ..."
  local out
  if ! out="$(as_pg "$PGBIN/initdb" -D "$DATA" -U "$DB_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C \
        --no-instructions 2>&1)"; then
    rm -f "$pwfile"
    printf '%s\n' "$out" | tail -n 30 >&2
    die "initdb: failed for $DATA (output above)"
  fi
  rm -f "$pwfile"
  printf 'superuser=%s\n' "$DB_USER" >"$DATA/$MARKER"
  printf "\n# scripts/pg.sh: port, addresses, socket dir\ninclude_if_exists = '%s'\n" "$CONF" \
    >>"$DATA/postgresql.conf"
  give_to_pg "$DATA/$MARKER"
  log "initdb: done in $(since "$t0")"
}

write_conf() {
  local sockdir="$1" tmp="$DATA/$CONF.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/pg.sh start; rewritten on every start.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$sockdir'
unix_socket_permissions = 0700
shared_buffers = '32MB'
max_connections = 50
fsync = on
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
  give_to_pg "$tmp"
  mv "$tmp" "$DATA/$CONF"
}

admin_psql() {  # psql as the bootstrap superuser over the unix socket (trust), db postgres
  local su sockdir
  su="$(sed -n 's/^superuser=//p' "$DATA/$MARKER")"
  sockdir="$(conf_value unix_socket_directories)"
  env -u PGPASSWORD -u PGSERVICE PGCONNECT_TIMEOUT=10 \
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$PORT" -U "${su:-postgres}" -d postgres "$@"
}

setup_database() {  # role with password, database, vector extension; idempotent
  local out
  if ! out="$(admin_psql -v user="$DB_USER" -v pw="$DB_PASSWORD" -v db="$DB_NAME" 2>&1 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
\connect :"db"
CREATE EXTENSION IF NOT EXISTS vector;
SQL
)"; then
    printf '%s\n' "$out" >&2
    fail "setup" "creating role '$DB_USER', database '$DB_NAME' or the vector extension failed"
  fi
  # Prove the way clients connect: TCP, password auth, pgvector loaded.
  tcp_env
  if ! out="$("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -c \
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'; SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector" 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "setup" "cannot connect as '$DB_USER' to '$DB_NAME' over TCP with the password, or pgvector does not work"
  fi
  VECTOR_VERSION="$(head -n1 <<<"$out")"
}

cmd_start() {
  parse_common "$@"
  parse_start_args "${ARGS[@]+"${ARGS[@]}"}"
  local t_all
  t_all="$(now_ms)"
  ensure_fetched
  need_os_user
  start_lock "$CACHE/locks/$(printf '%s' "$DATA" | cksum | cut -d' ' -f1).lock"

  if running; then
    same_port_or_die
    log "PostgreSQL is already running on 127.0.0.1:$PORT (pid $(server_pid), data $DATA)"
    dsn
    return 0
  fi
  die_if_port_busy "$PORT" "choose another with --port or DATABASE_PORT" "start: "

  if is_cluster; then
    local v
    v="$(cat "$DATA/PG_VERSION")"
    [[ "$v" == 16 ]] || die "start: $DATA holds a PostgreSQL $v cluster; this is PostgreSQL 16 (choose another --data, or: $0 reset --data $DATA)"
    ours || die "start: $DATA holds a cluster this script did not make; refusing to use it"
    log "reusing the cluster in $DATA"
  else
    init_cluster
  fi

  local sockdir
  sockdir="$(socket_dir_for)"
  if [[ "$sockdir" != "$DATA" ]]; then
    mkdir -p "$sockdir"
    chmod 700 "$sockdir"
    give_to_pg "$sockdir"
  fi
  write_conf "$sockdir"

  local t0 t_ready
  t0="$(now_ms)"
  # -w -t: pg_ctl waits for the postmaster to report "ready". It puts postgres
  # in its own session with stdout/stderr to the log file; fds 8 and 9 (locks)
  # must not stay open in it.
  local out
  if ! out="$(as_pg "$PGBIN/pg_ctl" start -D "$DATA" -l "$LOGFILE" -w -t "$READY_TIMEOUT" \
        2>&1 8>&- 9>&-)"; then
    printf '%s\n' "$out" >&2
    fail "start" "pg_ctl start failed or postgres was not ready in $READY_TIMEOUT s (data $DATA, port $PORT)"
  fi
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; do
    ((SECONDS < deadline)) || fail "start" "pg_isready: no answer on 127.0.0.1:$PORT after $READY_TIMEOUT s"
    server_pid >/dev/null || fail "start" "postgres exited during start-up"
    sleep 0.2
  done
  t_ready="$(since "$t0")"
  setup_database
  local pid
  pid="$(server_pid)"
  if [[ -n "$OWNER_PID" ]]; then
    start_watchdog "$CACHE/watchdog.log" "$OWNER_PID" "$pid" "$REPO_ROOT/scripts/pg.sh" stop --data "$DATA"
  fi
  log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $NF}') + pgvector ${VECTOR_VERSION:-?} ready on 127.0.0.1:$PORT (pid $pid, ready in $t_ready, total $(since "$t_all"); data $DATA; log $LOGFILE)"
  local where="--port $PORT"
  [[ "$DATA" == "$CACHE/data" ]] || where+=" --data $DATA"
  log "user $DB_USER, database $DB_NAME; eval \"\$(scripts/pg.sh env $where)\" sets DATABASE_* and PG*"
  dsn
}

# ---------------------------------------------------------------- stop / status / reset

cmd_stop() {
  parse_common "$@"
  no_args stop
  if ! server_pid >/dev/null; then
    log "no server is running on $DATA"
    return 0
  fi
  ensure_fetched
  local t0
  t0="$(now_ms)"
  local out
  if ! out="$(as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "stop" "pg_ctl stop -m fast failed (data $DATA)"
  fi
  log "stopped PostgreSQL on $DATA ($(since "$t0"); the data is kept)"
}

cmd_status() {
  parse_common "$@"
  no_args status
  if running; then
    echo "running: pid $(server_pid), 127.0.0.1:$(configured_port), data $DATA"
  else
    echo "not running (data dir $DATA)"
    return 3
  fi
}

cmd_reset() {
  parse_common "$@"
  no_args reset
  local asked="$ASKED_DATA"
  cmd_stop --data "$DATA"
  if [[ ! -e "$DATA" ]]; then
    if [[ -L "$asked" ]]; then rm -f "$asked"; fi
    log "no data dir $DATA"
    return 0
  fi
  if ! ours && [[ -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "reset: $DATA was not made by this script; refusing to delete it"
  fi
  local sockdir
  sockdir="$(conf_value unix_socket_directories)"
  rm -rf "$DATA"
  if [[ -L "$asked" ]]; then rm -f "$asked"; fi
  [[ "$sockdir" == /tmp/embedstream-pg-* ]] && rm -rf "$sockdir"
  log "deleted $DATA"
}

# ---------------------------------------------------------------- clients

cmd_psql() {
  PASSTHROUGH=1 parse_common "$@"
  ensure_fetched
  tcp_env
  exec "$PGBIN/psql" "${ARGS[@]+"${ARGS[@]}"}"
}

cmd_env() {
  parse_common "$@"
  no_args env
  local k v
  for k in DATABASE_HOST DATABASE_PORT DATABASE_NAME DATABASE_USER DATABASE_PASSWORD DATABASE_URL \
           PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE; do
    case "$k" in
      DATABASE_HOST|PGHOST) v=127.0.0.1 ;;
      DATABASE_PORT|PGPORT) v="$PORT" ;;
      DATABASE_NAME|PGDATABASE) v="$DB_NAME" ;;
      DATABASE_USER|PGUSER) v="$DB_USER" ;;
      DATABASE_PASSWORD|PGPASSWORD) v="$DB_PASSWORD" ;;
      DATABASE_URL) v="$(dsn)" ;;
    esac
    printf 'export %s=%q\n' "$k" "$v"
  done
}

cmd_logs() {
  parse_common "$@"
  tail_log "$LOGFILE" "${ARGS[@]+"${ARGS[@]}"}"
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd="$1"; shift
PG_COMMAND="$cmd"
case "$cmd" in -h|--help|help) ;; *) relocate_install ;; esac
case "$cmd" in
  fetch)  [[ $# -eq 0 ]] || die "fetch takes no arguments"; cmd_fetch ;;
  start)  cmd_start "$@" ;;
  stop)   cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  psql)   cmd_psql "$@" ;;
  env)    cmd_env "$@" ;;
  logs)   cmd_logs "$@" ;;
  reset)  cmd_reset "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
