package monitor

import (
	"time"
)

// UnanalyzedQuery is shown for statements recorded without normalized text
// (the proxy could not analyze them; they share fingerprint 0).
const UnanalyzedQuery = "<not analyzed>"

// QueryStats is one row of /api/v1/queries: pg_stat_statements as the
// client sees it (including time spent in Sluice and cache hits).
type QueryStats struct {
	Fingerprint   string    `json:"fingerprint"` // 16 hex digits
	Database      string    `json:"database"`
	User          string    `json:"user"`
	Query         string    `json:"query"` // normalized text
	Calls         uint64    `json:"calls"`
	Rows          int64     `json:"rows"`
	MaxRows       int64     `json:"max_rows"`
	Errors        uint64    `json:"errors"`
	TotalTimeMs   float64   `json:"total_time_ms"`
	MeanTimeMs    float64   `json:"mean_time_ms"`
	P50Ms         float64   `json:"p50_ms"`
	P95Ms         float64   `json:"p95_ms"`
	P99Ms         float64   `json:"p99_ms"`
	MaxMs         float64   `json:"max_ms"`
	CacheHits     uint64    `json:"cache_hits"`
	CacheLookups  uint64    `json:"cache_lookups"`
	CacheHitRatio float64   `json:"cache_hit_ratio"`
	Rules         []string  `json:"rules"`
	FirstSeen     time.Time `json:"first_seen"`
	HasExample    bool      `json:"has_example"`
}

func (e *fpEntry) stats() QueryStats {
	q := QueryStats{
		Fingerprint: fpHex(e.fp), Database: e.database, User: e.user, Query: e.normalized,
		Calls: e.calls, Rows: e.rows, MaxRows: e.maxRows, Errors: e.errors,
		TotalTimeMs: float64(e.totalNs) / 1e6,
		P50Ms:       e.sk.Quantile(0.5) * 1e3, P95Ms: e.sk.Quantile(0.95) * 1e3,
		P99Ms: e.sk.Quantile(0.99) * 1e3, MaxMs: e.sk.Max() * 1e3,
		CacheHits: e.hits, CacheLookups: e.lookups, Rules: e.rules,
		FirstSeen: e.firstSeen, HasExample: e.example != "",
	}
	if q.Rules == nil {
		q.Rules = []string{}
	}
	if q.Query == "" {
		q.Query = UnanalyzedQuery
	}
	if e.calls > 0 {
		q.MeanTimeMs = q.TotalTimeMs / float64(e.calls)
	}
	if e.lookups > 0 {
		q.CacheHitRatio = float64(e.hits) / float64(e.lookups)
	}
	return q
}

// all returns every row; cost is proportional to the table, fine for an
// API request or an analysis tick, never for the request path.
func (t *fpTable) all() []QueryStats {
	out := make([]QueryStats, 0, t.entries.Load())
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				out = append(out, e.stats())
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// lookup returns one fingerprint's statistics and its example SQL.
func (t *fpTable) lookup(fp uint64, database string) (QueryStats, string, bool) {
	sh := &t.shards[(fp^fp>>32)%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for e := sh.m[fp]; e != nil; e = e.next {
		if e.database == database {
			return e.stats(), e.example, true
		}
	}
	return QueryStats{}, "", false
}
