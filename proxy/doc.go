// Package proxy owns the PostgreSQL wire protocol on both sides: the
// listener, client sessions (startup, auth, the request loop), server
// connections and their pools, cancel routing and the relay between them.
// It deals in frames and bytes; SQL meaning comes from rewrite/ and cached
// answers from resultcache/, both as plain values through the request
// stages in stages.go. It never parses SQL itself and never serves HTTP.
package proxy
