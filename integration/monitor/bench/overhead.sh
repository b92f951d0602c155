#!/usr/bin/env bash
# overhead.sh — pgbench -S TPS through Sluice with monitoring on
# (monitor: {enabled: true}) against the same Sluice with it off
# (enabled: false) (issue 5: within 5%).
#
#   bash integration/monitor/bench/overhead.sh [--rounds N] [--duration S]
#        [--clients N] [--scale N] [--protocol simple|extended|prepared]
#        [--bin PATH]   (a prebuilt sluice instead of building bin/sluice)
#
# Builds bin/sluice, starts the test servers (scripts/testenv.sh start),
# loads pgbench data once into a fresh database, starts two Sluice
# processes (transaction pooling, same pool size) on free ports picked by
# internal/freeport, and runs -T S rounds alternating between them (which
# goes first alternates too), so drift on the machine hits both alike.
# Prints each run, the medians and the ratio on/off; exits 1 when the
# ratio is below 0.95.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD

ROUNDS=5
DURATION=5
CLIENTS=8
SCALE=10
PROTOCOL=simple
BIN=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --clients) CLIENTS=${2:?}; shift ;;
    --scale) SCALE=${2:?}; shift ;;
    --protocol) PROTOCOL=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "overhead.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$BIN" ]; then
  go build -o bin/sluice ./cmd/sluice
  BIN=$ROOT/bin/sluice
fi
bash scripts/testenv.sh start >/dev/null
# shellcheck disable=SC1091
. "$ROOT/.testenv/env"
PGBENCH=$SLUICE_TEST_PGBIN/pgbench
export PGPASSWORD=$SLUICE_TEST_PGPASSWORD PGSSLMODE=disable
PSQL=(psql -X -q -h "$SLUICE_TEST_PGHOST" -p "$SLUICE_TEST_PGPORT" -U "$SLUICE_TEST_PGUSER")

WORK=$(mktemp -d /tmp/sluice-monoverhead.XXXXXX)
DB=sluice_monoverhead_$$
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  # A Sluice that does not drain (hung clients) is killed.
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
"$PGBENCH" -i -q -s "$SCALE" -h "$SLUICE_TEST_PGHOST" -p "$SLUICE_TEST_PGPORT" -U "$SLUICE_TEST_PGUSER" "$DB" >"$WORK/init.log" 2>&1

mapfile -t PORTS < <(go run ./internal/freeport 4)
[ "${#PORTS[@]}" = 4 ] || { echo "overhead.sh: freeport gave ${#PORTS[@]} ports" >&2; exit 1; }

# config NAME ENABLED CLIENT_PORT ADMIN_PORT writes $WORK/NAME.yaml.
config() {
  cat >"$WORK/$1.yaml" <<YAML
listen: 127.0.0.1:$3
admin: {listen: "127.0.0.1:$4"}
log: {level: warn, format: json}
auth:
  users:
    - {name: "$SLUICE_TEST_PGUSER", password: "$SLUICE_TEST_PGPASSWORD"}
pool:
  mode: transaction
  default_pool_size: $CLIENTS
databases:
  - {name: "*", host: "$SLUICE_TEST_PGHOST", port: $SLUICE_TEST_PGPORT, sslmode: disable}
monitor: {enabled: $2}
YAML
}
config on true "${PORTS[0]}" "${PORTS[1]}"
config off false "${PORTS[2]}" "${PORTS[3]}"
PORT_on=${PORTS[0]}
PORT_off=${PORTS[2]}

# start_sluice NAME starts bin/sluice and waits for its client port.
start_sluice() {
  "$BIN" -config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  local port_var=PORT_$1
  for _ in $(seq 100); do
    if "$SLUICE_TEST_PGBIN/pg_isready" -q -h 127.0.0.1 -p "${!port_var}" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  cat "$WORK/$1.log" >&2
  echo "overhead.sh: sluice ($1) did not start" >&2
  exit 1
}
start_sluice on
start_sluice off

# Monitoring really is on in one and off in the other: only "on" keeps
# per-fingerprint statistics.
check_mode() {
  timeout 30 "$PGBENCH" -S -n -t 10 -c 1 -h 127.0.0.1 -p "$2" -U "$SLUICE_TEST_PGUSER" "$DB" >/dev/null 2>&1
  local body
  body=$(curl -sf "http://127.0.0.1:$3/api/v1/bottlenecks")
  if ! grep -Eq '"enabled": *'"$1" <<<"$body"; then
    echo "overhead.sh: expected monitor enabled=$1, got: $body" >&2
    exit 1
  fi
}
check_mode true "$PORT_on" "${PORTS[1]}"
check_mode false "$PORT_off" "${PORTS[3]}"

# run TARGET prints the TPS of one pgbench -S run.
run() {
  local port_var=PORT_$1
  # A hung Sluice must fail the run, not stall it.
  timeout $((DURATION + 30)) "$PGBENCH" -S -n -M "$PROTOCOL" -c "$CLIENTS" -j 2 -T "$DURATION" \
    -h 127.0.0.1 -p "${!port_var}" -U "$SLUICE_TEST_PGUSER" "$DB" 2>"$WORK/pgbench.err" |
    awk '/^tps = / {print $3; exit}'
}

median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$WORK/on.tps"
: >"$WORK/off.tps"
echo "pgbench -S -M $PROTOCOL -c $CLIENTS -j 2 -T $DURATION, scale $SCALE, $ROUNDS rounds, nproc $(nproc)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
  line="round $r:"
  for target in $order; do
    tps=$(run "$target") || tps=
    [ -n "$tps" ] || { cat "$WORK/pgbench.err" >&2; echo "overhead.sh: pgbench against $target failed" >&2; exit 1; }
    echo "$tps" >>"$WORK/$target.tps"
    line+=" monitor_$target=$tps"
  done
  echo "$line"
done
on=$(median <"$WORK/on.tps")
off=$(median <"$WORK/off.tps")
ratio=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')
echo "median TPS: monitoring on $on, monitoring off $off"
echo "ratio on/off: $ratio (target >= 0.95)"
awk -v r="$ratio" 'BEGIN {exit !(r >= 0.95)}'
