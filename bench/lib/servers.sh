# shellcheck shell=bash disable=SC2034,SC2153 # globals are shared with run.sh
# servers.sh — installs and starts the three targets of bench/run.sh on
# loopback: a private PostgreSQL cluster (never a system one), PgBouncer and
# Sluice, each on a free port from internal/freeport. Sourced, never run.

PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin
BENCH_USER=bench
BENCH_PASSWORD=bench
BENCH_DB=bench

# install_missing uses Debian's packages, like scripts/testenv.sh.
install_missing() {
  local pkgs=()
  [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] || pkgs+=("postgresql-$PGVER")
  command -v psql >/dev/null || pkgs+=("postgresql-client-$PGVER")
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || pkgs+=(pgbouncer)
  command -v curl >/dev/null || pkgs+=(curl)
  [ ${#pkgs[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing ${pkgs[*]}; install them (apt-get install ${pkgs[*]}) or run as root"
  say "installing ${pkgs[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${pkgs[@]}" >/dev/null
  # Debian starts a system PgBouncer/PostgreSQL on install; we never use or
  # touch those, every server here is our own on a free port.
}

PGBOUNCER_BIN=
PGBOUNCER_VERSION=
PGBOUNCER_PREPARED=
find_pgbouncer() {
  PGBOUNCER_BIN=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  [ -x "$PGBOUNCER_BIN" ] || die "pgbouncer not found"
  PGBOUNCER_VERSION=$("$PGBOUNCER_BIN" --version | awk 'NR == 1 {print $2}')
  # PgBouncer 1.21 added max_prepared_statements: protocol-level named
  # prepared statements in transaction mode. Older ones fail -M prepared.
  local major minor
  IFS=. read -r major minor _ <<<"$PGBOUNCER_VERSION"
  if [ "${major:-0}" -gt 1 ] || { [ "${major:-0}" = 1 ] && [ "${minor:-0}" -ge 21 ]; }; then
    PGBOUNCER_PREPARED="max_prepared_statements = 200"
    PGBOUNCER_NOTE="PgBouncer $PGBOUNCER_VERSION carries protocol-level prepared statements in transaction mode (max_prepared_statements = 200 set here)"
  else
    PGBOUNCER_NOTE="PgBouncer $PGBOUNCER_VERSION predates max_prepared_statements (added in 1.21): in transaction mode it passes named Parse messages to whichever server it picks, so -M prepared is expected to fail"
  fi
}

# start_pg initialises a cluster in $WORK/pg and creates the bench role and
# database; the role's SCRAM verifier ends up in $BENCH_VERIFIER for the
# poolers, so all three targets authenticate clients the same way.
start_pg() {
  local port=$1
  mkdir -p "$WORK/pg"
  echo postgres >"$WORK/pwfile"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$WORK/pg" "$WORK/pwfile"; fi
  as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --pwfile="$WORK/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
  cat >>"$WORK/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$WORK/pg'
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_statement = 'none'
CONF
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$WORK/pg/server.log" >&2; die "PostgreSQL did not start"; }
  PGDATA_STARTED=$WORK/pg
  as_pg psql -X -q -h "$WORK/pg" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL >/dev/null
SET password_encryption = 'scram-sha-256';
CREATE ROLE $BENCH_USER LOGIN PASSWORD '$BENCH_PASSWORD';
CREATE DATABASE $BENCH_DB OWNER $BENCH_USER;
SQL
  BENCH_VERIFIER=$(as_pg psql -X -h "$WORK/pg" -p "$port" -U postgres -d postgres -Atc \
    "SELECT rolpassword FROM pg_authid WHERE rolname = '$BENCH_USER'")
  case "$BENCH_VERIFIER" in SCRAM-SHA-256\$*) ;; *) die "unexpected verifier for $BENCH_USER" ;; esac
}

# write_pgbouncer_config: transaction pooling, SCRAM against the verifier
# PostgreSQL stores (PgBouncer then logs in upstream with SCRAM
# pass-through), connection logging off like Sluice's log level below.
write_pgbouncer_config() {
  local port=$1 pgport=$2 dir=$WORK/pgbouncer
  mkdir -p "$dir"
  printf '"%s" "%s"\n' "$BENCH_USER" "$BENCH_VERIFIER" >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
$BENCH_DB = host=127.0.0.1 port=$pgport dbname=$BENCH_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $POOL
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $MAX_CLIENTS
max_db_connections = 0
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
$PGBOUNCER_PREPARED
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; fi
}

PGBOUNCER_PID=
start_pgbouncer() {
  local port=$1 u=()
  # PgBouncer refuses to run as root; -u drops to postgres in-process (no
  # fork), so $! is PgBouncer's own pid.
  if [ "$(id -u)" = 0 ]; then u=(-u postgres); fi
  "$PGBOUNCER_BIN" "${u[@]}" "$WORK/pgbouncer/pgbouncer.ini" >>"$WORK/pgbouncer/stdout.log" 2>&1 &
  PGBOUNCER_PID=$!
  track "$PGBOUNCER_PID"
  wait_sql pgbouncer "$port" "$PGBOUNCER_PID" "$WORK/pgbouncer/pgbouncer.log"
}

# SLUICE_DIR holds Sluice's config and log (bench/compare.sh runs two, each
# in a folder of its own).
SLUICE_DIR=
# write_sluice_config [admin port] [auth method]: the same pool size, mode and client auth as
# PgBouncer. Log level warn: Sluice logs every login at info, PgBouncer's
# log_connections is off above.
write_sluice_config() {
  local port=$1 pgport=$2 admin=${3:-} method=${4:-scram-sha-256} password=$BENCH_VERIFIER
  # md5 needs the plaintext (PostgreSQL's verifier is SCRAM); only the idle
  # run's fallback below uses it.
  [ "$method" = md5 ] && password=$BENCH_PASSWORD
  mkdir -p "$SLUICE_DIR"
  {
    cat <<YAML
log:
  level: warn
  format: json
listen: 127.0.0.1:$port
max_client_conn: $MAX_CLIENTS
auth:
  method: $method
  users:
    - name: $BENCH_USER
      password: '$password'
      server_password: '$BENCH_PASSWORD'
pool:
  mode: transaction
  default_pool_size: $POOL
  min_pool_size: 0
databases:
  - name: $BENCH_DB
    host: 127.0.0.1
    port: $pgport
    dbname: $BENCH_DB
YAML
    if [ -n "$admin" ]; then
      printf 'admin:\n  listen: 127.0.0.1:%s\n' "$admin"
    fi
  } >"$SLUICE_DIR/sluice.yaml"
}

SLUICE_PID=
start_sluice() {
  local port=$1
  "$SLUICE_BIN" --config "$SLUICE_DIR/sluice.yaml" >>"$SLUICE_DIR/sluice.log" 2>&1 &
  SLUICE_PID=$!
  track "$SLUICE_PID"
  wait_sql sluice "$port" "$SLUICE_PID" "$SLUICE_DIR/sluice.log"
}

restart_sluice() {
  untrack "$SLUICE_PID"
  stop_pid "$SLUICE_PID"
  start_sluice "$1"
}

restart_pgbouncer() {
  untrack "$PGBOUNCER_PID"
  stop_pid "$PGBOUNCER_PID"
  start_pgbouncer "$1"
}

# probe_pprof enables Sluice's admin port when its config accepts one and
# checks for net/http/pprof there; PPROF_URL is empty when there is none,
# and PPROF_NOTE says why.
PPROF_URL=
PPROF_NOTE=
probe_pprof_config() {
  local port=$1 pgport=$2 admin=$3
  write_sluice_config "$port" "$pgport" "$admin"
  if "$SLUICE_BIN" check-config --config "$SLUICE_DIR/sluice.yaml" >"$SLUICE_DIR/check-admin.log" 2>&1; then
    ADMIN_PORT=$admin
  else
    PPROF_NOTE="not captured: this Sluice build has no admin port (check-config refuses admin.listen: $(grep -m1 -o 'admin[^"]*' "$SLUICE_DIR/check-admin.log" || echo unknown key))"
    write_sluice_config "$port" "$pgport"
    ADMIN_PORT=
  fi
}

probe_pprof_endpoint() {
  [ -n "${ADMIN_PORT:-}" ] || return 0
  local base=http://127.0.0.1:$ADMIN_PORT/debug/pprof
  if curl -sf -o /dev/null "$base/goroutine?debug=1"; then
    PPROF_URL=$base
  else
    PPROF_NOTE="not captured: Sluice's admin port (127.0.0.1:$ADMIN_PORT) does not serve /debug/pprof/goroutine"
  fi
}
