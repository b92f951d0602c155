# shellcheck shell=bash disable=SC2034,SC2153 # globals are shared with run.sh
# idle.sh — the idle-connection memory run of bench/run.sh: a fresh pooler
# process, bench/idleconns opening IDLE_N clients through it, the JSON
# result in $WORK/idle-<target>.json. Sourced, never run.

# idle_once runs bench/idleconns against a running pooler.
idle_once() {
  local target=$1 pid=$2 port=$3
  say "opening $IDLE_N idle connections through $target"
  "$WORK/idleconns" -target "$target" -pid "$pid" -n "$IDLE_N" -concurrency "$IDLE_CONCURRENCY" \
    -dsn "postgres://$BENCH_USER:$BENCH_PASSWORD@127.0.0.1:$port/$BENCH_DB?sslmode=disable" \
    >"$WORK/idle-$target.json" 2>"$WORK/idle-$target.log"
}

# idle_run measures one pooler. If pgx cannot complete a SCRAM login
# through Sluice (a protocol bug, which this run reports rather than
# hides), Sluice is measured again with md5 logins: the memory an idle
# client holds after login does not depend on the method.
idle_run() {
  local target=$1
  if [ "$target" = sluice ]; then
    write_sluice_config "$SLUICE_PORT" "$PG_PORT" "$ADMIN_PORT"
    restart_sluice "$SLUICE_PORT"
    if ! idle_once sluice "$SLUICE_PID" "$SLUICE_PORT" && grep -q 'SASL' "$WORK/idle-sluice.log"; then
      {
        echo "idle run: pgx (pgconn) could not log in to Sluice with SCRAM-SHA-256:"
        grep -m1 -o 'failed SASL auth.*' "$WORK/idle-sluice.log" | sed 's/^/  /'
        echo "  Sluice's idle-connection figure below was measured with auth.method md5 instead."
      } | tee -a "$WORK/events" >&2
      write_sluice_config "$SLUICE_PORT" "$PG_PORT" "$ADMIN_PORT" md5
      restart_sluice "$SLUICE_PORT"
      idle_once sluice "$SLUICE_PID" "$SLUICE_PORT" || true
    fi
  else
    restart_pgbouncer "$PGBOUNCER_PORT"
    idle_once pgbouncer "$PGBOUNCER_PID" "$PGBOUNCER_PORT" || true
  fi
  if [ -s "$WORK/idle-$target.json" ]; then
    IDLE_FILES+=("$WORK/idle-$target.json")
  else
    tail -n 5 "$WORK/idle-$target.log" >&2
    echo "idle run against $target produced no result: $(tail -n 1 "$WORK/idle-$target.log")" >>"$WORK/events"
  fi
}
