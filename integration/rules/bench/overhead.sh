#!/usr/bin/env bash
# overhead.sh — pgbench -S TPS through Sluice with 20 non-matching rules
# against the same Sluice without rules (issue 3: within 5%).
#
#   bash integration/rules/bench/overhead.sh [--rounds N] [--duration S]
#        [--clients N] [--scale N] [--protocol simple|extended|prepared]
#
# Builds bin/sluice, starts the test servers (scripts/testenv.sh start),
# loads pgbench data into a fresh database, starts two Sluice processes
# (transaction pooling, same pool size) from two generated configs, and
# runs -T S rounds alternating between them (and PostgreSQL directly, for
# reference), so drift on the machine hits both alike. Prints each run,
# the medians, the ratio of the medians and the median of the per-round
# ratios rules/no-rules; exits 1 when the latter is below 0.95. Sluice
# always analyzes statements (the monitor and the
# result cache use the analysis), so the baseline has the analyzer on:
# the figure is the cost of the rules on the hot path.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD

ROUNDS=5
DURATION=5
CLIENTS=8
SCALE=10
PROTOCOL=simple
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --clients) CLIENTS=${2:?}; shift ;;
    --scale) SCALE=${2:?}; shift ;;
    --protocol) PROTOCOL=${2:?}; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "overhead.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

go build -o bin/sluice ./cmd/sluice
bash scripts/testenv.sh start >/dev/null
# shellcheck disable=SC1091
. "$ROOT/.testenv/env"
PGBENCH=$SLUICE_TEST_PGBIN/pgbench
export PGPASSWORD=$SLUICE_TEST_PGPASSWORD PGSSLMODE=disable
PSQL=(psql -X -q -h "$SLUICE_TEST_PGHOST" -p "$SLUICE_TEST_PGPORT" -U "$SLUICE_TEST_PGUSER")

WORK=$(mktemp -d /tmp/sluice-overhead.XXXXXX)
# Our own copy, so a concurrent rebuild of bin/sluice cannot swap it.
cp bin/sluice "$WORK/sluice"
DB=sluice_overhead_$$
PIDS=()
MAIN=$BASHPID
cleanup() {
  [ "$BASHPID" = "$MAIN" ] || return 0 # not in $(...) subshells
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK" # KEEP=1 keeps configs and logs
}
trap cleanup EXIT

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
"$PGBENCH" -i -q -s "$SCALE" -h "$SLUICE_TEST_PGHOST" -p "$SLUICE_TEST_PGPORT" -U "$SLUICE_TEST_PGUSER" "$DB" >"$WORK/init.log" 2>&1

# config NAME RULES writes $WORK/NAME.yaml.
config() {
  cat >"$WORK/$1.yaml" <<YAML
listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
auth:
  users:
    - {name: "$SLUICE_TEST_PGUSER", password: "$SLUICE_TEST_PGPASSWORD"}
pool:
  mode: transaction
  default_pool_size: $CLIENTS
databases:
  - {name: "*", host: "$SLUICE_TEST_PGHOST", port: $SLUICE_TEST_PGPORT, sslmode: disable}
$2
YAML
}

# Twenty rules that each look at pgbench -S's statement and do not match
# it: relations, patterns, kinds, fingerprints, sessions and combinations.
RULES="rules:"
for i in 1 2 3 4; do
  RULES+="
  - {name: rel-$i, match: {relations_any: [orders_$i, public.lineitem_$i]}, max_rows: 100}
  - {name: pat-$i, match: {pattern: 'FROM no_such_table_$i WHERE'}, hint: \"SeqScan(t$i)\"}
  - {name: kind-$i, match: {kind: [delete, truncate], relations_all: [pgbench_accounts, t$i]}, block: \"no\"}
  - {name: app-$i, match: {application_name: ['/^reporting-$i'], relations_any: [pgbench_accounts]}, max_rows: 10}
  - {name: fp-$i, match: {fingerprint: '00000000000000a$i'}, cache: {ttl: 30s}}"
done
config plain ""
config rules "$RULES"
[ "$(grep -c 'name: ' "$WORK/rules.yaml")" -ge 20 ] || { echo "overhead.sh: expected 20 rules" >&2; exit 1; }

# start_sluice NAME starts bin/sluice and sets ADDR_NAME to its port.
start_sluice() {
  "$WORK/sluice" -config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  local port=
  for _ in $(seq 100); do
    port=$(grep -o '"addr":"127.0.0.1:[0-9]*","version"' "$WORK/$1.log" 2>/dev/null | head -1 | sed 's/.*:\([0-9]*\)",.*/\1/' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$WORK/$1.log" >&2; echo "overhead.sh: sluice ($1) did not start" >&2; exit 1; }
  printf -v "PORT_$1" %s "$port"
}
start_sluice plain
start_sluice rules
PORT_direct=$SLUICE_TEST_PGPORT

# run TARGET prints the TPS of one pgbench -S run.
run() {
  local port_var=PORT_$1
  timeout -k 5 $((DURATION + 30)) "$PGBENCH" -S -n -M "$PROTOCOL" -c "$CLIENTS" -j 2 -T "$DURATION" \
    -h 127.0.0.1 -p "${!port_var}" -U "$SLUICE_TEST_PGUSER" "$DB" 2>"$WORK/pgbench.err" |
    awk '/^tps = / {print $3; exit}'
}

median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$WORK/plain.tps"
: >"$WORK/rules.tps"
: >"$WORK/direct.tps"
echo "pgbench -S -M $PROTOCOL -c $CLIENTS -j 2 -T $DURATION, scale $SCALE, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
  # Alternate which Sluice goes first, so neither always runs warmer.
  if [ $((r % 2)) = 1 ]; then order="plain rules direct"; else order="rules plain direct"; fi
  line="round $r:"
  for target in $order; do
    tps=$(run "$target") || true
    [ -n "$tps" ] || { cat "$WORK/pgbench.err" >&2; echo "overhead.sh: pgbench against $target failed or hung past -T + 30s" >&2; exit 1; }
    echo "$tps" >>"$WORK/$target.tps"
    line+=" $target=$tps"
  done
  echo "$line"
done
p=$(median <"$WORK/plain.tps")
w=$(median <"$WORK/rules.tps")
d=$(median <"$WORK/direct.tps")
ratio=$(awk -v a="$w" -v b="$p" 'BEGIN {printf "%.3f", a / b}')
# Each round's two runs are back to back, so their ratio cancels the
# machine's drift between rounds; the median of those is the verdict.
paired=$(paste "$WORK/rules.tps" "$WORK/plain.tps" | awk '{printf "%.4f\n", $1 / $2}' | median)
echo "median TPS: sluice without rules $p, sluice with 20 non-matching rules $w, postgres direct $d"
echo "ratio of medians rules/no-rules: $ratio; median of per-round ratios: $paired (target >= 0.95)"
awk -v r="$paired" 'BEGIN {exit !(r >= 0.95)}'
