#!/usr/bin/env bash
# run.sh — result cache benchmark figures (issue 4):
#   1. a repeated expensive read (an aggregate over a 200k-row table):
#      TPS through Sluice with the cache vs directly, same run (-c 4 -T $T);
#   2. latency at -c 1 of a PK lookup: directly, as an L1 hit (instance A),
#      and as an L2 hit (instance B, filled through A, whose L1 is too small
#      to keep anything, so each read is answered from Redis).
# The hit levels are proven by the deltas of sluice_resultcache_hits_total.
#
#   bash integration/cache/bench/run.sh [seconds per run, default 10]
#
# Starts PostgreSQL and Redis with scripts/testenv.sh if they aren't
# running, builds cmd/sluice into a temporary folder, and stops what it
# started (by pid) on exit.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
T=${1:-10}

if [ ! -f .testenv/env ] || ! (source .testenv/env && pg_isready -q -h "$SLUICE_TEST_PGHOST" -p "$SLUICE_TEST_PGPORT"); then
  bash scripts/testenv.sh start >/dev/null
fi
source .testenv/env
export PGPASSWORD=$SLUICE_TEST_PGPASSWORD PGUSER=$SLUICE_TEST_PGUSER
PGBENCH=$SLUICE_TEST_PGBIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=pgbench
PGH=$SLUICE_TEST_PGHOST PGP=$SLUICE_TEST_PGPORT
DB=cache_bench

WORK=$(mktemp -d /tmp/sluice-cache-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/sluice" ./cmd/sluice

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

psql -q -h "$PGH" -p "$PGP" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql -q -h "$PGH" -p "$PGP" -d $DB <<'SQL'
CREATE TABLE big (id int PRIMARY KEY, grp int, x numeric, y float8);
INSERT INTO big SELECT g, g % 100, g * 1.01, random() FROM generate_series(1, 200000) g;
CREATE TABLE kv (id int PRIMARY KEY, v text);
INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
VACUUM ANALYZE;
SQL

PREFIX=cachebench$$
# sluice_config NAME PORT ADMIN_PORT EXTRA_CACHE_YAML
sluice_config() {
  cat >"$WORK/$1.yaml" <<YAML
listen: 127.0.0.1:$2
admin: {listen: "127.0.0.1:$3"}
log: {level: warn, format: json}
auth:
  users:
    - {name: "$PGUSER", password: "$PGPASSWORD"}
pool: {mode: transaction, default_pool_size: 8, server_check_delay: 0s}
databases:
  - {name: "*", host: "$PGH", port: $PGP, sslmode: disable}
cache:
  mode: rules
  redis: {addrs: ["$SLUICE_TEST_REDIS_ADDR"], key_prefix: "$PREFIX"}
$4
rules:
  - {name: cache-bench, match: {relations_any: [big, kv]}, cache: {ttl: 10m}}
YAML
}
start_sluice() { # NAME PORT
  "$WORK/sluice" -config "$WORK/$1.yaml" 2>"$WORK/$1.log" &
  PIDS+=($!)
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p "$2" && return 0; sleep 0.1; done
  echo "sluice $1 did not start:"; cat "$WORK/$1.log"; exit 1
}
hits() { # ADMIN_PORT LEVEL
  curl -s "http://127.0.0.1:$1/metrics" | awk -v l="sluice_resultcache_hits_total{level=\"$2\"}" '$1==l {print $2; f=1} END {if (!f) print 0}'
}
# minus a b: a - b; awk reads Prometheus's exponent form (1.02e+06), bc does not.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a - b }'; }
misses() { curl -s "http://127.0.0.1:$1/metrics" | awk '$1=="sluice_resultcache_misses_total" {print $2; f=1} END {if (!f) print 0}'; }

A=$(freeport); AA=$(freeport); B=$(freeport); BA=$(freeport)
sluice_config a "$A" "$AA" ""
# B keeps (almost) nothing in L1: every read of a filled key is an L2 hit.
sluice_config b "$B" "$BA" "  l1_max_bytes: 4096
  max_entry_size: 4096"
start_sluice a "$A"
start_sluice b "$B"

cat >"$WORK/agg.sql" <<'SQL'
SELECT grp % 10 AS g, count(*), sum(x), avg(y) FROM big GROUP BY 1 ORDER BY 1;
SQL
cat >"$WORK/pk.sql" <<'SQL'
\set id random(1, 2000)
SELECT v FROM kv WHERE id = :id;
SQL

bench() { # LABEL PORT ARGS...
  local label=$1 port=$2; shift 2
  "$PGBENCH" -h 127.0.0.1 -p "$port" -n "$@" $DB >"$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  local tps lat
  tps=$(awk '/^tps = / {print $3}' "$WORK/out")
  lat=$(awk '/^latency average = / {print $4}' "$WORK/out")
  printf '%-44s tps %12s   latency avg %8s ms\n' "$label" "$tps" "$lat"
}

echo "== expensive aggregate over 200k rows, -c 4 -j 2 -T $T, simple and prepared protocol"
for m in simple prepared; do
  bench "direct ($m)" "$PGP" -M $m -c 4 -j 2 -T "$T" -f "$WORK/agg.sql"
  h0=$(hits "$AA" l1)
  bench "sluice A, cache ($m)" "$A" -M $m -c 4 -j 2 -T "$T" -f "$WORK/agg.sql"
  echo "   (A l1 hits during the run: $(minus "$(hits "$AA" l1)" "$h0"))"
done

echo "== PK lookup of 2000 keys, -c 1 -T $T, -M simple"
# Fill every key through A (L1 of A and L2).
"$PGBENCH" -h 127.0.0.1 -p "$A" -n -M simple -c 2 -t 20000 -f "$WORK/pk.sql" $DB >/dev/null
bench "direct PK lookup" "$PGP" -M simple -c 1 -T "$T" -f "$WORK/pk.sql"
l1=$(hits "$AA" l1); m0=$(misses "$AA")
bench "sluice A: L1 hit" "$A" -M simple -c 1 -T "$T" -f "$WORK/pk.sql"
echo "   (A: l1 hits $(minus "$(hits "$AA" l1)" "$l1"), misses $(minus "$(misses "$AA")" "$m0"))"
b1=$(hits "$BA" l1); b2=$(hits "$BA" l2); bm=$(misses "$BA")
bench "sluice B: L2 hit (filled through A)" "$B" -M simple -c 1 -T "$T" -f "$WORK/pk.sql"
echo "   (B: l1 hits $(minus "$(hits "$BA" l1)" "$b1"), l2 hits $(minus "$(hits "$BA" l2)" "$b2"), misses $(minus "$(misses "$BA")" "$bm"))"

psql -q -h "$PGH" -p "$PGP" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
