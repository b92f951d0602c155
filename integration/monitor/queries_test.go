package monitor_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/monitor"
)

// TestQueriesFingerprints: statements run through Sluice with the simple
// and the extended protocol appear in /api/v1/queries under their
// normalized text with calls, rows, errors, latency and, for a cached
// statement, the cache hit ratio; sort and limit work.
func TestQueriesFingerprints(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT+`CREATE TABLE c (id int PRIMARY KEY, v text); INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 10) g;`,
		func(b string) string {
			return b + "cache: {mode: rules, default_ttl: 60s}\nrules:\n  - {name: cache-c, match: {relations_any: [c]}, cache: {ttl: 60s}}\n"
		})
	simple := e.connect(pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(pgx.QueryExecModeCacheStatement)

	// Simple protocol, different literals: one fingerprint, 7 calls.
	for i := 1; i <= 7; i++ {
		if n := count(t, simple, "SELECT id, v FROM t WHERE id <= "+itoa(i*2)); n != i*2 {
			t.Fatalf("rows %d", n)
		}
	}
	// Extended protocol with a parameter: 5 calls, 1 row each.
	for i := 1; i <= 5; i++ {
		if n := count(t, ext, "SELECT v FROM t WHERE id = $1", i); n != 1 {
			t.Fatalf("rows %d", n)
		}
	}
	// A cached read: 1 miss then 4 hits.
	for range 5 {
		if n := count(t, ext, "SELECT id, v FROM c WHERE id < $1", 4); n != 3 {
			t.Fatalf("rows %d", n)
		}
	}
	// An error.
	if _, err := simple.Exec(context.Background(), "SELECT no_such_column FROM t WHERE id = 1"); err == nil {
		t.Fatal("expected an error")
	}

	tests := []struct {
		name     string
		parts    []string
		calls    uint64
		rows     int64
		errors   uint64
		hitRatio float64 // -1: don't check
	}{
		{"simple, literals normalized", []string{"SELECT id, v FROM t WHERE id <= $1"}, 7, 2 + 4 + 6 + 8 + 10 + 12 + 14, 0, -1},
		{"extended", []string{"SELECT v FROM t WHERE id = $1"}, 5, 5, 0, -1},
		{"cached", []string{"SELECT id, v FROM c WHERE id < $1"}, 5, 15, 0, 0.8},
		{"error", []string{"no_such_column"}, 1, 0, 1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := e.query(tc.parts...)
			if q == nil {
				t.Fatalf("no fingerprint with %q in %+v", tc.parts, e.queries())
			}
			if q.Calls != tc.calls || (tc.rows >= 0 && q.Rows != tc.rows) || q.Errors != tc.errors {
				t.Errorf("%q: calls %d rows %d errors %d, want %d %d %d", q.Query, q.Calls, q.Rows, q.Errors, tc.calls, tc.rows, tc.errors)
			}
			if len(q.Fingerprint) != 16 || q.Database != e.db || q.User != e.pg.User {
				t.Errorf("fingerprint %q database %q user %q", q.Fingerprint, q.Database, q.User)
			}
			if tc.errors == 0 && (q.MeanTimeMs <= 0 || q.P95Ms <= 0 || q.P50Ms > q.P95Ms || q.P95Ms > q.P99Ms*1.0001 || q.TotalTimeMs < q.MeanTimeMs) {
				t.Errorf("%q latency: total %v mean %v p50 %v p95 %v p99 %v", q.Query, q.TotalTimeMs, q.MeanTimeMs, q.P50Ms, q.P95Ms, q.P99Ms)
			}
			if tc.hitRatio >= 0 {
				if q.CacheHits != 4 || q.CacheLookups != 5 || q.CacheHitRatio < tc.hitRatio-0.001 || q.CacheHitRatio > tc.hitRatio+0.001 {
					t.Errorf("%q cache: hits %d lookups %d ratio %v, want 4/5", q.Query, q.CacheHits, q.CacheLookups, q.CacheHitRatio)
				}
				if len(q.Rules) != 1 || q.Rules[0] != "cache-c" {
					t.Errorf("%q rules %v, want [cache-c]", q.Query, q.Rules)
				}
			} else if q.CacheHits != 0 {
				t.Errorf("%q: %d cache hits without a cache rule", q.Query, q.CacheHits)
			}
		})
	}

	t.Run("prepare round trips are not statements", func(t *testing.T) {
		for _, q := range e.queries() {
			if q.Query == monitor.UnanalyzedQuery || q.Fingerprint == "0000000000000000" {
				t.Errorf("an unanalyzed entry in /api/v1/queries for plain pgx traffic: %+v", q)
			}
		}
	})

	// sort=calls&limit=1 gives the most called statement of this database.
	var r monitor.QueriesResponse
	e.getJSON("/api/v1/queries?sort=calls&limit=1&database="+e.db, &r)
	if len(r.Queries) != 1 || r.Queries[0].Calls != 7 || r.Total < 4 {
		t.Errorf("sort=calls&limit=1: %+v (total %d)", r.Queries, r.Total)
	}
	e.getJSON("/api/v1/queries?sort=rows&limit=2&database="+e.db, &r)
	if len(r.Queries) != 2 || r.Queries[0].Rows != 56 || r.Queries[1].Rows != 15 {
		t.Errorf("sort=rows&limit=2: %+v", r.Queries)
	}
	e.getJSON("/api/v1/queries?sort=errors&limit=1&database="+e.db, &r)
	if len(r.Queries) != 1 || r.Queries[0].Errors != 1 {
		t.Errorf("sort=errors&limit=1: %+v", r.Queries)
	}
	for _, bad := range []string{"?sort=nope", "?limit=0", "?limit=abc", "?limit=100001"} {
		if resp := e.request("GET", "/api/v1/queries"+bad, nil); resp.code != http.StatusBadRequest {
			t.Errorf("/api/v1/queries%s: %d, want 400", bad, resp.code)
		}
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
