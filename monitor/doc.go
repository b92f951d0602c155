// Package monitor owns Sluice's admin HTTP port: health and readiness probes,
// the Prometheus endpoint, JSON statistics (pools, clients, servers,
// per-fingerprint query statistics, host and process metrics), the bottleneck
// analysis with its recommendations, and the embedded dashboard.
//
// It sees the proxy only through the small types declared here: the proxy
// calls a Recorder on the request path and implements Source for snapshots;
// cmd/sluice wires the rest (dialing a monitoring connection, reload, cache
// purge and statistics) through Deps. Monitor must not import proxy/,
// rewrite/ or resultcache/, and must never keep its own copy of connection
// state: it reads the states the proxy owns.
//
// The Recorder is on the hot path: it takes one shard lock per query, does
// no global locking, and does not allocate once a fingerprint is known.
// Everything else (sampling, analysis, database polling) runs on timers at a
// low rate, never per request.
package monitor
