# shellcheck shell=bash disable=SC2034,SC2153 # globals are shared with run.sh
# runs.sh — the pgbench runs of bench/run.sh: what each mode runs and how
# one run is recorded. Sourced, never run.

# MODES in table order. Each is one pgbench invocation bounded by -T.
MODES=(select-simple select-extended select-prepared latency-c1 pipeline churn)

# mode_args prints the pgbench arguments of a mode (besides connection,
# -n and -T, which every run gets).
mode_args() {
  case $1 in
    select-simple) echo "-S -M simple -c $CLIENTS -j $THREADS" ;;
    select-extended) echo "-S -M extended -c $CLIENTS -j $THREADS" ;;
    select-prepared) echo "-S -M prepared -c $CLIENTS -j $THREADS" ;;
    latency-c1) echo "-S -M simple -c 1 -j 1" ;;
    # pgbench accepts \startpipeline only with -M extended or prepared;
    # extended so PgBouncer (no prepared statements in transaction mode
    # before 1.21) is measured on pipelining alone. -s sets :scale, which
    # custom scripts do not read from pgbench_branches.
    pipeline) echo "-f bench/pipeline.sql -M extended -s $SCALE -c $CLIENTS -j $THREADS" ;;
    churn) echo "-S -M simple -C -c $CLIENTS -j $THREADS" ;;
    *) die "unknown mode $1" ;;
  esac
}

mode_clients() {
  case $1 in latency-c1) echo 1 ;; *) echo "$CLIENTS" ;; esac
}

target_port() {
  case $1 in
    direct) echo "$PG_PORT" ;;
    pgbouncer) echo "$PGBOUNCER_PORT" ;;
    sluice) echo "$SLUICE_PORT" ;;
  esac
}

# ensure_alive restarts a pooler that died during an earlier run, so one
# crash costs its own runs, not the rest of the benchmark; the crash is
# recorded in $WORK/events.
ensure_alive() {
  case $1 in
    sluice)
      if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
        echo "sluice exited before round $2 $3 (see its log); restarted" | tee -a "$WORK/events" >&2
        tail -n 5 "$SLUICE_DIR/sluice.log" >>"$WORK/events" || true
        untrack "$SLUICE_PID"
        start_sluice "$SLUICE_PORT"
      fi
      ;;
    pgbouncer)
      if ! kill -0 "$PGBOUNCER_PID" 2>/dev/null; then
        echo "pgbouncer exited before round $2 $3; restarted" | tee -a "$WORK/events" >&2
        untrack "$PGBOUNCER_PID"
        start_pgbouncer "$PGBOUNCER_PORT"
      fi
      ;;
  esac
}

# run_one runs one mode against one target and appends a line to
# $WORK/runs.tsv: round, mode, target, clients, exit status, log, args. A
# hung run is killed after -T plus 60 s and recorded with exit 124.
run_one() {
  local round=$1 mode=$2 target=$3 port args clients log rc prof_pid=
  port=$(target_port "$target")
  args=$(mode_args "$mode")
  clients=$(mode_clients "$mode")
  log=$WORK/runs/r$round-$mode-$target.log
  ensure_alive "$target" "$round" "$mode"
  if [ "$target" = sluice ] && [ "$mode" = select-extended ] && [ "$round" = 1 ] && [ -n "$PPROF_URL" ]; then
    curl -sf -o "$WORK/sluice-cpu.pprof" "$PPROF_URL/profile?seconds=$((DURATION > 2 ? DURATION - 1 : 1))" &
    prof_pid=$!
  fi
  set +e
  # shellcheck disable=SC2086 # args is a word list by design
  PGPASSWORD=$BENCH_PASSWORD timeout -k 5 $((DURATION + 60)) "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" \
    -U "$BENCH_USER" -n -T "$DURATION" $args "$BENCH_DB" >"$log" 2>&1
  rc=$?
  set -e
  if [ -n "$prof_pid" ]; then
    wait "$prof_pid" || say "cpu profile capture failed"
    curl -sf -o "$WORK/sluice-allocs.pprof" "$PPROF_URL/allocs" || say "allocation profile capture failed"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$target" "$clients" "$rc" "$log" "$args" >>"$WORK/runs.tsv"
  printf 'bench: round %s %-16s %-9s exit %-3s %s\n' "$round" "$mode" "$target" "$rc" \
    "$(grep -m1 -E '^tps = ' "$log" | cut -d' ' -f1-3 || echo 'no tps')" >&2
}
