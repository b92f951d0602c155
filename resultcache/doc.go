// Package resultcache stores the wire bytes of read results (RowDescription,
// DataRows, CommandComplete, as one opaque []byte given by the proxy) and
// hands them back for later identical reads, in an in-process L1 (otter,
// bounded in bytes) and an optional Redis L2 shared by every Sluice instance.
//
// It owns: cache keys (Key, NormalizeComments), eligibility against the
// server catalogs (Check: volatility from pg_proc, views and partitions
// resolved to base tables), per-relation versions and their invalidation
// (local, Redis INCR + PUBLISH, and a logical replication follower for
// writes made directly on PostgreSQL), coalescing of concurrent misses,
// refresh-ahead, the Redis circuit breaker, auto mode and purge.
//
// It must not touch: client or server connections of the proxy (it never
// reads or writes a socket of a client; its only PostgreSQL connections are
// its own catalog and replication connections, dialed through Deps), SQL
// analysis (rewrite/ gives it plain values through the proxy), or framing
// (the payload is opaque: the proxy captures it and writes it back as-is).
package resultcache
