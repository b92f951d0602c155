package monitor_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCachePurge: with a cache rule, a repeated read is a hit; after
// POST /api/v1/cache/purge (by relation, by fingerprint, all) the next
// read is a miss again, seen both in the instance's per-fingerprint cache
// hits and in sluice_resultcache_misses_total.
func TestCachePurge(t *testing.T) {
	t.Parallel()
	e := start(t, tableT+"CREATE TABLE u (id int);", "cache: {mode: rules, default_ttl: 60s}\nrules:\n  - {name: cache-t, match: {relations_any: [t]}, cache: {ttl: 60s}}\n")
	c := e.connect(pgx.QueryExecModeSimpleProtocol)
	const read = "SELECT id, v FROM t WHERE id <= 5"
	hits := func() uint64 {
		q := e.query("SELECT id, v FROM t WHERE id <= $1")
		if q == nil {
			t.Fatalf("no fingerprint for %q", read)
		}
		return q.CacheHits
	}
	// untilHit repeats the read until it is served from cache (the fill
	// completes after the answer went to the client, so the very next
	// read may still miss).
	untilHit := func() {
		t.Helper()
		h0 := hits()
		for range 50 {
			count(t, c, read)
			if hits() > h0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%q never served from cache", read)
	}
	count(t, c, read) // miss, fill
	untilHit()
	fp := e.query("SELECT id, v FROM t WHERE id <= $1").Fingerprint

	for _, tc := range []struct {
		name string
		body string
	}{
		{"relation", `{"relation":"public.t"}`},
		{"fingerprint", `{"fingerprint":"` + fp + `"}`},
		{"all", `{"all":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h0 := hits()
			m0 := sample(e.scrape(), "sluice_resultcache_misses_total")
			r := e.request(http.MethodPost, "/api/v1/cache/purge", []byte(tc.body))
			if r.code != http.StatusOK {
				t.Fatalf("purge %s: %d %s", tc.body, r.code, r.body)
			}
			var out struct {
				Purged int `json:"purged"`
			}
			if err := json.Unmarshal(r.body, &out); err != nil || out.Purged < 1 {
				t.Errorf("purge %s: %s, want purged >= 1", tc.body, r.body)
			}
			count(t, c, read) // must be a miss now (and fill again)
			if h := hits(); h != h0 {
				t.Errorf("read after purge %s was served from cache (%d -> %d hits)", tc.body, h0, h)
			}
			if m := sample(e.scrape(), "sluice_resultcache_misses_total"); m < m0+1 {
				t.Errorf("sluice_resultcache_misses_total %v -> %v after a purged read", m0, m)
			}
			untilHit() // refilled
		})
	}
	// Purging an unrelated relation leaves the entry alone.
	r := e.request(http.MethodPost, "/api/v1/cache/purge", []byte(`{"relation":"public.u"}`))
	if r.code != http.StatusOK {
		t.Fatalf("purge other: %d %s", r.code, r.body)
	}
	h0 := hits()
	count(t, c, read)
	if h := hits(); h != h0+1 {
		t.Errorf("purging another relation evicted t's entry (hits %d -> %d)", h0, h)
	}
}

// TestCachePurgeWithoutCache: with cache.mode off the purge endpoint says
// there is no cache (501) rather than pretending.
func TestCachePurgeWithoutCache(t *testing.T) {
	t.Parallel()
	e := start(t, "", "cache: {mode: "+"off}\n")
	if r := e.request(http.MethodPost, "/api/v1/cache/purge", []byte(`{"all":true}`)); r.code != http.StatusNotImplemented {
		t.Errorf("purge without a cache: %d %s, want 501", r.code, r.body)
	}
}
