// Package rules tests the rewrite rules end to end THROUGH Sluice (issue 3):
// an in-process Sluice (internal/sluicetest) in front of the test
// PostgreSQL (internal/testenv), driven with pgx and psql, comparing what a
// client gets through Sluice with what PostgreSQL answers directly. Every
// test works in a database of its own, so tests run in parallel.
//
// It owns only this folder: no production code lives here and it changes
// none. bench/overhead.sh measures the pgbench -S cost of the analyzer and
// 20 non-matching rules.
package rules
