#!/usr/bin/env bash
# run.sh — benchmark Sluice against PgBouncer and direct PostgreSQL with
# pgbench, all on loopback, and write the table to bench/results/latest.md.
# `make bench` runs this. See docs/bench.md for what each run means.
#
#   bash bench/run.sh [--quick] [--only direct,pgbouncer,sluice]
#                     [--duration S] [--rounds N] [--scale N] [--clients N]
#                     [--pool-size N] [--idle-conns N] [--no-idle] [--out FILE]
#                     [--modes LIST] [--commit REF] [--keep]
#
# Runs are interleaved target by target inside each round (direct, pgbouncer,
# sluice for one mode, then the next mode), so drift on the machine hits all
# targets alike; the table reports the median of the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib/common.sh
. "$ROOT/bench/lib/common.sh"
# shellcheck source=bench/lib/servers.sh
. "$ROOT/bench/lib/servers.sh"
# shellcheck source=bench/lib/runs.sh
. "$ROOT/bench/lib/runs.sh"
# shellcheck source=bench/lib/idle.sh
. "$ROOT/bench/lib/idle.sh"

DURATION=7
ROUNDS=3
SCALE=10
CLIENTS=16
THREADS=2
POOL=8
IDLE_N=5000
IDLE_CONCURRENCY=16
ONLY=direct,pgbouncer,sluice
IDLE=1
KEEP=0
OUT=
QUICK=0
COMMIT=
MODES_ARG=

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; }

ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 DURATION=3 ROUNDS=1 IDLE_N=1000 ;;
    --only) ONLY=${2:?--only needs a list}; shift ;;
    --modes) MODES_ARG=${2:?--modes needs a list}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --scale) SCALE=${2:?}; shift ;;
    --clients) CLIENTS=${2:?}; shift ;;
    --pool-size) POOL=${2:?}; shift ;;
    --idle-conns) IDLE_N=${2:?}; shift ;;
    --no-idle) IDLE=0 ;;
    --out) OUT=${2:?}; shift ;;
    --commit) COMMIT=${2:?--commit needs a git revision}; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument $1" ;;
  esac
  shift
done
for v in DURATION ROUNDS SCALE CLIENTS POOL IDLE_N; do
  case ${!v} in '' | *[!0-9]* | 0) die "$v must be a positive integer, not '${!v}'" ;; esac
done
TARGETS=()
for t in direct pgbouncer sluice; do
  case ",$ONLY," in *",$t,"*) TARGETS+=("$t") ;; esac
done
[ ${#TARGETS[@]} -gt 0 ] || die "--only names none of direct, pgbouncer, sluice"
if [ -z "$OUT" ]; then
  # A smoke test or partial run must not overwrite the committed results.
  if [ "$QUICK" = 1 ] || [ "$ONLY" != direct,pgbouncer,sluice ] || [ -n "$MODES_ARG" ]; then
    OUT=$ROOT/bench/results/quick.md
  else
    OUT=$ROOT/bench/results/latest.md
  fi
fi
if [ -n "$MODES_ARG" ]; then
  picked=()
  for m in "${MODES[@]}"; do
    case ",$MODES_ARG," in *",$m,"*) picked+=("$m") ;; esac
  done
  [ ${#picked[@]} -gt 0 ] || die "--modes names none of ${MODES[*]}"
  MODES=("${picked[@]}")
fi
has_target() { case " ${TARGETS[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
budget=$((ROUNDS * ${#MODES[@]} * ${#TARGETS[@]} * (DURATION + 1)))
say "${ROUNDS} round(s) x ${#MODES[@]} modes x ${#TARGETS[@]} targets x ${DURATION} s: about $((budget / 60)) min of pgbench, plus setup and the idle runs"
[ "$budget" -le 510 ] || say "warning: this exceeds the 10-minute budget of make bench"
command -v go >/dev/null || die "go is required (to build Sluice and the helpers)"
install_missing
find_pgbouncer

# Idle clients need one descriptor each in the pooler and in the client
# program; raise the soft limit as far as the hard limit allows.
MAX_CLIENTS=$((IDLE_N + 200))
hard=$(ulimit -Hn)
want=$((IDLE_N * 2 + 1000))
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
  ulimit -n "$want"
else
  ulimit -n "$hard"
  if [ "$IDLE" = 1 ] && [ "$hard" -lt $((IDLE_N + 500)) ]; then
    IDLE_N=$((hard - 500))
    say "open-file hard limit is $hard: idle connections lowered to $IDLE_N"
  fi
fi

make_work
SLUICE_DIR=$WORK/sluice

SLUICE_BIN=$WORK/sluice-bin
if [ -n "$COMMIT" ]; then
  SLUICE_REV=$(git rev-parse --short "$COMMIT^{commit}") || die "--commit $COMMIT: not a revision"
  say "building sluice from commit $SLUICE_REV and the bench helpers from the tree"
  build_rev "$SLUICE_REV" "$SLUICE_BIN"
else
  SLUICE_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -z "$(git status --porcelain -- cmd config proxy rewrite resultcache monitor internal 2>/dev/null)" ] || echo ' + uncommitted changes in the tree')"
  say "building sluice and the bench helpers from the working tree"
  go build -o "$SLUICE_BIN" ./cmd/sluice || die "building sluice from the working tree failed (use --commit HEAD to bench the last commit)"
fi
go build -o "$WORK/report" ./bench/report
go build -o "$WORK/idleconns" ./bench/idleconns

read -r PG_PORT PGBOUNCER_PORT SLUICE_PORT ADMIN_PORT <<<"$(go run ./internal/freeport 4 | tr '\n' ' ')"
say "postgres :$PG_PORT, pgbouncer :$PGBOUNCER_PORT, sluice :$SLUICE_PORT (work folder $WORK)"

start_pg "$PG_PORT"
say "initialising pgbench data, scale $SCALE"
PGPASSWORD=$BENCH_PASSWORD "$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U "$BENCH_USER" -i -q -s "$SCALE" \
  "$BENCH_DB" >"$WORK/init.log" 2>&1 || { tail -n 20 "$WORK/init.log" >&2; die "pgbench -i failed"; }

if has_target pgbouncer; then
  write_pgbouncer_config "$PGBOUNCER_PORT" "$PG_PORT"
  start_pgbouncer "$PGBOUNCER_PORT"
fi
if has_target sluice; then
  probe_pprof_config "$SLUICE_PORT" "$PG_PORT" "$ADMIN_PORT"
  start_sluice "$SLUICE_PORT"
  probe_pprof_endpoint
fi

for round in $(seq "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    for target in $(rotated "$round" "${TARGETS[@]}"); do
      run_one "$round" "$mode" "$target"
    done
  done
done

IDLE_FILES=()
if [ "$IDLE" = 1 ]; then
  for target in sluice pgbouncer; do
    if has_target "$target"; then idle_run "$target"; fi
  done
fi

PROFILE_SECTION=
if [ -s "$WORK/sluice-cpu.pprof" ]; then
  go tool pprof -top -nodecount=30 "$SLUICE_BIN" "$WORK/sluice-cpu.pprof" >"$ROOT/bench/results/profile-cpu.txt" 2>/dev/null || true
  go tool pprof -top -sample_index=alloc_space -nodecount=30 "$SLUICE_BIN" "$WORK/sluice-allocs.pprof" \
    >"$ROOT/bench/results/profile-allocs.txt" 2>/dev/null || true
  PROFILE_SECTION="CPU and allocation profiles of Sluice during round 1 of select-extended: bench/results/profile-cpu.txt, bench/results/profile-allocs.txt."
else
  PROFILE_SECTION=${PPROF_NOTE:-not captured}
fi

ELAPSED=$(($(date +%s) - START))
mkdir -p "$(dirname "$OUT")"
{
  echo "# Sluice benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, $(uname -sr)"
  echo "- versions: $("$PGBIN/postgres" --version), $("$PGBOUNCER_BIN" --version | head -1), $("$PGBIN/pgbench" --version | cut -d' ' -f1,3), sluice $SLUICE_REV"
  echo "- command: \`bash bench/run.sh${ARGS:+ $ARGS}\` (took ${ELAPSED} s)"
  echo "- settings: pgbench scale $SCALE, -T $DURATION s per run, $ROUNDS round(s) (median shown), $CLIENTS clients / $THREADS threads unless noted, pipeline = 10 point reads per \\startpipeline/\\endpipeline; PgBouncer and Sluice both in transaction mode with pool size $POOL; SCRAM-SHA-256 client auth on all three targets (poolers hold PostgreSQL's verifier)"
  echo "- everything (PostgreSQL, both poolers, pgbench) shares the same $(nproc) cores; load average (1, 5, 15 min) at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- $PGBOUNCER_NOTE"
  if has_target sluice; then
    if [ -n "${ADMIN_PORT:-}" ]; then
      echo "- Sluice ran with its admin port on (admin.listen), as deployed; log level warn"
    else
      echo "- Sluice ran without an admin port (this build has none); log level warn"
    fi
  fi
  echo
  IDLE_ARG=()
  if [ ${#IDLE_FILES[@]} -gt 0 ]; then IDLE_ARG=(-idle "$(IFS=,; echo "${IDLE_FILES[*]}")"); fi
  echo "## Issue 6 targets"
  echo
  "$WORK/report" -section targets -runs "$WORK/runs.tsv" "${IDLE_ARG[@]}"
  echo
  echo "## pgbench"
  echo
  "$WORK/report" -section runs -runs "$WORK/runs.tsv"
  echo
  echo "## Idle client connections"
  echo
  if [ ${#IDLE_FILES[@]} -gt 0 ]; then
    "$WORK/report" -section idle "${IDLE_ARG[@]}"
  else
    echo "not measured"
  fi
  echo
  echo "## Profile"
  echo
  echo "$PROFILE_SECTION"
  if [ -s "$WORK/events" ]; then
    echo
    echo "## Events during the run"
    echo
    sed 's/^/    /' "$WORK/events"
  fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
say "results written to ${OUT#"$ROOT"/} in ${ELAPSED} s"
