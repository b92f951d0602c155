// Package monitor holds the end-to-end tests of the admin port through a
// real Sluice (internal/sluicetest) in front of real PostgreSQL
// (internal/testenv): every endpoint with and without a token, the JSON
// APIs against real traffic, the Prometheus exposition parsed with the
// text parser, and each kind of finding triggered for real (pool wait,
// index advice with hypopg, idle in transaction, uncached read, latency
// regression). bench/ holds the monitoring-overhead script (pgbench -S,
// monitoring on vs off).
//
// It owns only this directory; it never touches monitor/, proxy/ or any
// other package's code, and each test works in its own database so tests
// can run in parallel.
package monitor
