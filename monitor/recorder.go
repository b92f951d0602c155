package monitor

import "time"

// QueryEvent describes one completed client statement. The proxy fills it
// on the request path; the Recorder neither keeps nor modifies Rules, and
// keeps Normalized and Example by reference, so both must be immutable
// strings (Normalized is normally the analyzer cache's shared string).
type QueryEvent struct {
	Database, User string
	Fingerprint    uint64
	Normalized     string
	// Example is the SQL text as sent; one bounded example per fingerprint
	// is kept for EXPLAIN in index advice.
	Example  string
	Duration time.Duration
	Rows     int64
	SQLState string // "" on success
	// CacheHit: served from the result cache. Cacheable: the analyzer
	// judged it a read the cache could serve (whether or not a rule did).
	CacheHit  bool
	Cacheable bool
	Rules     []string // rewrite rules applied
}

// Recorder is called by the proxy for every statement and pool checkout.
// Implementations are safe for concurrent use and cheap: no global lock,
// no allocation once a fingerprint is known.
type Recorder interface {
	Query(QueryEvent)
	PoolWait(database, user string, d time.Duration)
}

// Nop is the Recorder used when monitoring is disabled.
type Nop struct{}

// Query does nothing.
func (Nop) Query(QueryEvent) {}

// PoolWait does nothing.
func (Nop) PoolWait(string, string, time.Duration) {}
