# shellcheck shell=bash disable=SC2034,SC2153 # globals are shared with run.sh
# common.sh — logging, errors and process bookkeeping shared by bench/run.sh.
# Sourced, never run. Everything started is recorded by pid so cleanup stops
# exactly what this run started and nothing else.

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# as_pg runs a command as the postgres OS user when we are root (initdb and
# postgres refuse to run as root), else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# PIDS holds every long-running process this run started (PgBouncer and
# Sluice); PostgreSQL is stopped through pg_ctl with its data directory.
PIDS=()
PGDATA_STARTED=

track() { PIDS+=("$1"); }

untrack() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# stop_pid sends TERM, waits up to 10 s, then KILLs: one pid, ours.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  if [ -n "$PGDATA_STARTED" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_STARTED" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      say "work folder kept: $WORK"
    else
      case "$WORK" in /tmp/sluice-bench.*) rm -rf "$WORK" ;; esac
    fi
  fi
  exit "$rc"
}

# wait_sql waits until psql can log in through host:port and run SELECT 1,
# or the process with the given pid (if any) dies, or 30 s pass.
wait_sql() {
  local name=$1 port=$2 pid=${3:-} logfile=${4:-}
  for _ in $(seq 300); do
    if PGPASSWORD=$BENCH_PASSWORD PGCONNECT_TIMEOUT=2 psql -X -q -h 127.0.0.1 -p "$port" -U "$BENCH_USER" \
      -d "$BENCH_DB" -Atc 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      [ -n "$logfile" ] && tail -n 20 "$logfile" >&2
      die "$name exited during startup (log: $logfile)"
    fi
    sleep 0.1
  done
  [ -n "$logfile" ] && tail -n 20 "$logfile" >&2
  die "$name did not accept a login on 127.0.0.1:$port within 30 s"
}

# make_work creates the run's work folder ($WORK, with runs/ in it) and
# arranges for cleanup on exit and on Ctrl-C.
make_work() {
  WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
  chmod 755 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$WORK/runs"
}

# build_rev REV OUT builds Sluice at a committed revision, exported apart
# from the working tree, so a half-edited tree neither breaks the build nor
# mislabels the results. -trimpath keeps the build cache valid across work
# folders.
build_rev() {
  local rev=$1 out=$2 src
  src=$(mktemp -d "$WORK/src.XXXXXX")
  git archive "$rev" | tar -x -C "$src"
  (cd "$src" && go build -trimpath -o "$out" ./cmd/sluice) || die "building sluice at $rev failed"
}

# rotated ROUND ITEM... prints the items one per line, starting ROUND-1
# places later (round 1: a b c; round 2: b c a; ...), so in interleaved
# runs no target always runs first or always follows the same one.
rotated() {
  local round=$1 i n
  shift
  n=$#
  for ((i = 0; i < n; i++)); do
    local k=$(((i + round - 1) % n + 1))
    echo "${!k}"
  done
}
