// Command report turns the raw output of bench/run.sh into the markdown
// tables of bench/results/latest.md: it parses each pgbench log, takes the
// median over rounds per (mode, target), computes the ratios to direct
// PostgreSQL and to PgBouncer, and renders the idle-connection results
// written by bench/idleconns.
//
// It only reads files the script wrote; it never connects to a server and
// never starts a process.
package main
