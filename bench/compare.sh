#!/usr/bin/env bash
# compare.sh — two builds of Sluice side by side, with PgBouncer as the
# yardstick: is a change faster, and by how much, on this noisy machine?
#
#   bash bench/compare.sh [--rounds N] [--duration S] [--modes LIST]
#                         [--clients N] [--pool-size N] [--scale N] [--keep]
#                         BASE NEW
#
# BASE and NEW are git revisions; "tree" is the working tree. Both builds run
# at once in front of one PostgreSQL, each with the config `make bench`
# gives Sluice, next to PgBouncer. Each round runs every mode against the
# three in turn, the order rotating from round to round. Per run it records
# TPS and the pooler's CPU per transaction (utime + stime of its process
# from /proc, over the run). It prints, per mode and target, the runs and
# their medians, and NEW's median ratio to BASE's: CPU per transaction is
# steadier than TPS when the machine's speed drifts. Defaults: 5 rounds of
# 5 s, modes select-simple,select-extended,latency-c1,pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib/common.sh
. "$ROOT/bench/lib/common.sh"
# shellcheck source=bench/lib/servers.sh
. "$ROOT/bench/lib/servers.sh"
# shellcheck source=bench/lib/runs.sh
. "$ROOT/bench/lib/runs.sh"

DURATION=5
ROUNDS=5
SCALE=10
CLIENTS=16
THREADS=2
POOL=8
KEEP=0
MODES_ARG=select-simple,select-extended,latency-c1,pipeline
REVS=()

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --modes) MODES_ARG=${2:?}; shift ;;
    --clients) CLIENTS=${2:?}; shift ;;
    --pool-size) POOL=${2:?}; shift ;;
    --scale) SCALE=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage; die "unknown argument $1" ;;
    *) REVS+=("$1") ;;
  esac
  shift
done
[ ${#REVS[@]} = 2 ] || { usage; die "name two revisions, BASE and NEW"; }
for v in DURATION ROUNDS SCALE CLIENTS POOL; do
  case ${!v} in '' | *[!0-9]* | 0) die "$v must be a positive integer, not '${!v}'" ;; esac
done
picked=()
for m in "${MODES[@]}"; do
  case ",$MODES_ARG," in *",$m,"*) picked+=("$m") ;; esac
done
[ ${#picked[@]} -gt 0 ] || die "--modes names none of ${MODES[*]}"
MODES=("${picked[@]}")

command -v go >/dev/null || die "go is required (to build Sluice)"
install_missing
find_pgbouncer
MAX_CLIENTS=$((CLIENTS + 200))

make_work

# build REV OUT: a revision (bench/lib/common.sh), or the working tree.
build() {
  if [ "$1" = tree ]; then
    go build -trimpath -o "$2" ./cmd/sluice || die "building sluice from the working tree failed"
  else
    build_rev "$1" "$2"
  fi
}
LABEL_A=${REVS[0]}
LABEL_B=${REVS[1]}
for i in 0 1; do
  if [ "${REVS[$i]}" != tree ]; then
    REVS[i]=$(git rev-parse --short "${REVS[$i]}^{commit}") || die "${REVS[$i]}: not a revision"
  fi
done
say "building sluice at ${REVS[0]} (base) and ${REVS[1]} (new)"
build "${REVS[0]}" "$WORK/sluice-a"
build "${REVS[1]}" "$WORK/sluice-b"

read -r PG_PORT PGBOUNCER_PORT PORT_A PORT_B ADMIN_A ADMIN_B <<<"$(go run ./internal/freeport 6 | tr '\n' ' ')"
start_pg "$PG_PORT"
say "initialising pgbench data, scale $SCALE"
PGPASSWORD=$BENCH_PASSWORD "$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U "$BENCH_USER" -i -q -s "$SCALE" \
  "$BENCH_DB" >"$WORK/init.log" 2>&1 || { tail -n 20 "$WORK/init.log" >&2; die "pgbench -i failed"; }
write_pgbouncer_config "$PGBOUNCER_PORT" "$PG_PORT"
start_pgbouncer "$PGBOUNCER_PORT"
# start_build NAME PORT ADMIN: the build $WORK/sluice-NAME, its config and
# log in $WORK/NAME; its pid is left in SLUICE_PID.
start_build() {
  SLUICE_DIR=$WORK/$1 SLUICE_BIN=$WORK/sluice-$1
  write_sluice_config "$2" "$PG_PORT" "$3"
  start_sluice "$2"
}
start_build a "$PORT_A" "$ADMIN_A"
PID_A=$SLUICE_PID
start_build b "$PORT_B" "$ADMIN_B"
PID_B=$SLUICE_PID

TARGETS=(pgbouncer base new)
port_of() { case $1 in pgbouncer) echo "$PGBOUNCER_PORT" ;; base) echo "$PORT_A" ;; new) echo "$PORT_B" ;; esac; }
pid_of() { case $1 in pgbouncer) echo "$PGBOUNCER_PID" ;; base) echo "$PID_A" ;; new) echo "$PID_B" ;; esac; }
# ticks PID: the process's utime + stime, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

say "$ROUNDS round(s) x ${#MODES[@]} modes x 3 targets x $DURATION s (pgbouncer :$PGBOUNCER_PORT, base :$PORT_A, new :$PORT_B)"
: >"$WORK/runs.tsv"
for round in $(seq "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    for target in $(rotated "$round" "${TARGETS[@]}"); do
      pid=$(pid_of "$target")
      kill -0 "$pid" 2>/dev/null || die "$target (pid $pid) is gone; its log is in $WORK"
      log=$WORK/runs/r$round-$mode-$target.log
      t0=$(ticks "$pid")
      # shellcheck disable=SC2046 # mode_args is a word list by design
      PGPASSWORD=$BENCH_PASSWORD timeout -k 5 $((DURATION + 60)) "$PGBIN/pgbench" -h 127.0.0.1 \
        -p "$(port_of "$target")" -U "$BENCH_USER" -n -T "$DURATION" $(mode_args "$mode") "$BENCH_DB" >"$log" 2>&1 || true
      t1=$(ticks "$pid")
      tps=$(grep -m1 -oP '^tps = \K[0-9.]+' "$log" || echo 0)
      tx=$(grep -m1 -oP 'processed: \K[0-9]+' "$log" || echo 0)
      cpu=$(awk -v d=$((t1 - t0)) -v tx="$tx" -v hz="$HZ" 'BEGIN { if (tx > 0) printf "%.1f", d * 1e6 / hz / tx; else print "-" }')
      printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$target" "$tps" "$cpu" >>"$WORK/runs.tsv"
      printf 'bench: round %s %-16s %-9s tps %8.0f  cpu/tx %s µs\n' "$round" "$mode" "$target" "$tps" "$cpu" >&2
    done
  done
done

# The table: per mode and target, the runs and the medians; new vs base.
awk -F'\t' -v base="$LABEL_A (${REVS[0]})" -v new="$LABEL_B (${REVS[1]})" '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  if (!($2 in seen)) { seen[$2] = 1; order[++nm] = $2 }
  tps[$2, $3] = tps[$2, $3] (tps[$2, $3] == "" ? "" : " ") int($4 + 0.5)
  if ($5 != "-") cpu[$2, $3] = cpu[$2, $3] (cpu[$2, $3] == "" ? "" : " ") $5
}
END {
  printf "\nbase = %s, new = %s; medians of the rounds; CPU is the pooler process per transaction\n\n", base, new
  printf "| mode | target | TPS median | TPS per round | CPU µs/tx median | CPU per round |\n|---|---|---:|---|---:|---|\n"
  for (k = 1; k <= nm; k++) {
    m = order[k]
    for (t = 1; t <= 3; t++) {
      g = t == 1 ? "pgbouncer" : t == 2 ? "base" : "new"
      mt[g] = median(tps[m, g]); mc[g] = median(cpu[m, g])
      printf "| %s | %s | %.0f | %s | %.1f | %s |\n", m, g, mt[g], tps[m, g], mc[g], cpu[m, g]
    }
    r[m] = sprintf("| %s | %.3f | %.3f | %.3f | %.3f |", m, mt["new"] / mt["base"], mc["new"] / mc["base"], mt["base"] / mt["pgbouncer"], mt["new"] / mt["pgbouncer"])
  }
  printf "\n| mode | new/base TPS | new/base CPU per tx | base/PgBouncer TPS | new/PgBouncer TPS |\n|---|---:|---:|---:|---:|\n"
  for (k = 1; k <= nm; k++) print r[order[k]]
}' "$WORK/runs.tsv"
