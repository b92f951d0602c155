// Package cache holds the end-to-end tests of the result cache through a
// real Sluice (internal/sluicetest) in front of real PostgreSQL and Redis
// (internal/testenv): hits per protocol and pool mode proven by metrics,
// byte-identical answers, read-your-writes for every kind of write,
// row-level security, the key, ineligible statements, logical replication,
// Redis outages and extended-protocol batches. bench/ holds the benchmark
// script (cache vs direct TPS, L1/L2 hit latency).
//
// It owns only this directory; it never touches proxy/, resultcache/ or
// any other package's code, and each test works in its own database so
// tests can run in parallel.
package cache
