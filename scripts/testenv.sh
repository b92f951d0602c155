#!/usr/bin/env bash
# testenv.sh start|stop|env — a throwaway PostgreSQL 15 and Redis on loopback,
# in a temporary folder, never touching a system cluster.
#
#   start  installs missing packages (apt-get), starts both servers on free
#          ports and writes .testenv/env (shell exports) in the repo.
#   stop   stops what start started, by pid, and removes the folder.
#   env    prints the env file.
#
# Variables written to .testenv/env (read by internal/testenv):
#   SLUICE_TEST_PGHOST SLUICE_TEST_PGPORT SLUICE_TEST_PGUSER SLUICE_TEST_PGPASSWORD
#   SLUICE_TEST_PGBIN SLUICE_TEST_PGDATA SLUICE_TEST_REDIS_ADDR SLUICE_TEST_REDIS_BIN
#   SLUICE_TEST_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.testenv
PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin

need_install() {
  [ -x "$PGBIN/postgres" ] || return 0
  command -v redis-server >/dev/null || return 0
  command -v psql >/dev/null || return 0
  [ -x "$PGBIN/pgbench" ] || return 0
  [ -f /usr/share/postgresql/$PGVER/extension/hypopg.control ] || return 0
  return 1
}

install() {
  if need_install; then
    echo "testenv: installing PostgreSQL $PGVER and Redis with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql-$PGVER postgresql-client-$PGVER postgresql-$PGVER-hypopg redis-server >/dev/null
  fi
  # The dashboard's browser test (monitor/) runs in Debian's Chromium; it
  # fails under `make test` without it, so install it when apt can.
  if ! command -v chromium >/dev/null && [ -z "${SLUICE_CHROMIUM:-}" ] && [ "$(id -u)" = 0 ]; then
    echo "testenv: installing chromium with apt-get (dashboard browser test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; } ||
      echo "testenv: chromium could not be installed; the dashboard browser test will fail" >&2
  fi
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if [ -f "$STATE/env" ]; then
    # shellcheck disable=SC1091
    . "$STATE/env"
    if [ -n "${SLUICE_TEST_PGDATA:-}" ] && as_pg "$PGBIN/pg_ctl" -D "$SLUICE_TEST_PGDATA" status >/dev/null 2>&1; then
      echo "testenv: already running ($STATE/env)" >&2
      return 0
    fi
    stop || true
  fi
  install
  mkdir -p "$STATE"
  local dir ports pgport redisport
  dir=$(mktemp -d /tmp/sluice-testenv.XXXXXX)
  chmod 755 "$dir"
  ports=$(go run ./internal/freeport 2)
  pgport=$(echo "$ports" | sed -n 1p)
  redisport=$(echo "$ports" | sed -n 2p)
  mkdir -p "$dir/pg" "$dir/redis"
  echo postgres > "$dir/pwfile"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir/pg" "$dir/pwfile"; fi
  as_pg "$PGBIN/initdb" -D "$dir/pg" -U postgres --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$dir/pg'
max_connections = 400
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
log_min_messages = warning
log_statement = 'none'
CONF
  # Replication connections for the logical-replication follower.
  echo "host replication all 127.0.0.1/32 scram-sha-256" >>"$dir/pg/pg_hba.conf"
  as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w -t 60 start >/dev/null
  redis-server --port "$redisport" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$dir/redis/redis.pid" --dir "$dir/redis" --logfile "$dir/redis/redis.log" \
    --save '' --appendonly no >/dev/null
  for _ in $(seq 50); do
    redis-cli -p "$redisport" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  cat >"$STATE/env" <<ENV
export SLUICE_TEST_DIR=$dir
export SLUICE_TEST_PGHOST=127.0.0.1
export SLUICE_TEST_PGPORT=$pgport
export SLUICE_TEST_PGUSER=postgres
export SLUICE_TEST_PGPASSWORD=postgres
export SLUICE_TEST_PGBIN=$PGBIN
export SLUICE_TEST_PGDATA=$dir/pg
export SLUICE_TEST_REDIS_ADDR=127.0.0.1:$redisport
export SLUICE_TEST_REDIS_BIN=$(command -v redis-server)
ENV
  echo "testenv: postgres on 127.0.0.1:$pgport, redis on 127.0.0.1:$redisport ($dir)" >&2
}

stop() {
  [ -f "$STATE/env" ] || return 0
  # shellcheck disable=SC1091
  . "$STATE/env"
  if [ -d "${SLUICE_TEST_PGDATA:-/nonexistent}" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$SLUICE_TEST_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  local pidf=${SLUICE_TEST_DIR:-/nonexistent}/redis/redis.pid
  if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; fi
  case "${SLUICE_TEST_DIR:-}" in /tmp/sluice-testenv.*) rm -rf "$SLUICE_TEST_DIR" ;; esac
  rm -f "$STATE/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) cat "$STATE/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
