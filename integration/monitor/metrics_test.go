package monitor_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsExposition scrapes /metrics through a real Sluice, parses it
// with the Prometheus text parser, and checks the names, types and labels
// of the proxy, rewrite, result cache and monitor metrics plus the Go and
// process collectors, and that they move with real traffic.
func TestMetricsExposition(t *testing.T) {
	// Not parallel: the registry is process-wide and this test checks
	// gauges (client connections) that parallel tests would move.
	e := start(t, tableT, "cache: {mode: rules, default_ttl: 60s}\nrules:\n  - {name: cache-t, match: {relations_any: [t]}, cache: {ttl: 60s}}\n")
	before := e.scrape()

	conns := []*pgx.Conn{e.connect(pgx.QueryExecModeSimpleProtocol), e.connect(pgx.QueryExecModeCacheStatement)}
	for range 3 {
		count(t, conns[0], "SELECT id, v FROM t WHERE id <= 5")
		count(t, conns[1], "SELECT v FROM t WHERE id = $1", 2)
	}
	exec(t, conns[0], "UPDATE t SET v = 'y' WHERE id = 3")
	if _, err := conns[0].Exec(context.Background(), "SELECT 1/0"); err == nil {
		t.Fatal("division by zero did not fail")
	}
	if _, err := conns[0].Exec(context.Background(), "SELECT * FROM no_such_table"); err == nil {
		t.Fatal("missing table did not fail")
	}
	after := e.scrape()

	types := []struct {
		name   string
		typ    dto.MetricType
		labels []string // label names every series has
	}{
		{"sluice_proxy_client_connections", dto.MetricType_GAUGE, nil},
		{"sluice_proxy_server_connections_opened_total", dto.MetricType_COUNTER, nil},
		{"sluice_proxy_pool_wait_seconds", dto.MetricType_HISTOGRAM, nil},
		{"sluice_proxy_request_duration_seconds", dto.MetricType_HISTOGRAM, nil},
		{"sluice_proxy_errors_total", dto.MetricType_COUNTER, []string{"class"}},
		{"sluice_proxy_client_bytes_received_total", dto.MetricType_COUNTER, nil},
		{"sluice_proxy_client_bytes_sent_total", dto.MetricType_COUNTER, nil},
		{"sluice_rewrite_analysis_cache_hits_total", dto.MetricType_COUNTER, nil},
		{"sluice_rewrite_analysis_cache_misses_total", dto.MetricType_COUNTER, nil},
		{"sluice_rewrite_rule_matches_total", dto.MetricType_COUNTER, nil},
		{"sluice_resultcache_hits_total", dto.MetricType_COUNTER, []string{"level"}},
		{"sluice_resultcache_misses_total", dto.MetricType_COUNTER, nil},
		{"sluice_resultcache_fills_total", dto.MetricType_COUNTER, nil},
		{"sluice_resultcache_invalidations_total", dto.MetricType_COUNTER, nil},
		{"sluice_monitor_query_duration_seconds", dto.MetricType_HISTOGRAM, []string{"database"}},
		{"sluice_monitor_queries_total", dto.MetricType_COUNTER, []string{"database", "cache"}},
		{"sluice_monitor_query_rows_total", dto.MetricType_COUNTER, []string{"database"}},
		{"sluice_monitor_query_errors_total", dto.MetricType_COUNTER, []string{"database", "sqlstate_class"}},
		{"sluice_monitor_fingerprints", dto.MetricType_GAUGE, nil},
		{"go_goroutines", dto.MetricType_GAUGE, nil},
		{"go_gc_duration_seconds", dto.MetricType_SUMMARY, nil},
		{"go_memstats_heap_alloc_bytes", dto.MetricType_GAUGE, nil},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, nil},
		{"process_cpu_seconds_total", dto.MetricType_COUNTER, nil},
		{"process_open_fds", dto.MetricType_GAUGE, nil},
	}
	for _, tc := range types {
		t.Run("type "+tc.name, func(t *testing.T) {
			f := after[tc.name]
			if f == nil {
				t.Fatalf("%s not exposed", tc.name)
			}
			if f.GetType() != tc.typ {
				t.Errorf("%s is %v, want %v", tc.name, f.GetType(), tc.typ)
			}
			if f.GetHelp() == "" {
				t.Errorf("%s has no HELP", tc.name)
			}
			for _, m := range f.GetMetric() {
				for _, l := range tc.labels {
					found := false
					for _, lp := range m.GetLabel() {
						found = found || lp.GetName() == l
					}
					if !found {
						t.Errorf("%s series %v lacks label %q", tc.name, m.GetLabel(), l)
					}
				}
			}
		})
	}

	grew := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"sluice_proxy_pool_wait_seconds", nil, 1},
		{"sluice_proxy_request_duration_seconds", nil, 8},
		{"sluice_proxy_errors_total", []string{"class", "22"}, 1}, // division_by_zero 22012
		{"sluice_proxy_errors_total", []string{"class", "42"}, 1}, // undefined_table 42P01
		{"sluice_proxy_client_bytes_received_total", nil, 1},
		{"sluice_proxy_client_bytes_sent_total", nil, 1},
		{"sluice_rewrite_analysis_cache_hits_total", nil, 1},
		{"sluice_rewrite_rule_matches_total", []string{"rule", "cache-t"}, 1},
		{"sluice_resultcache_fills_total", nil, 1},
		{"sluice_resultcache_misses_total", nil, 1},
		{"sluice_resultcache_hits_total", []string{"level", "l1"}, 1},
		{"sluice_resultcache_invalidations_total", nil, 1},
		{"sluice_monitor_queries_total", []string{"database", e.db}, 9},
		{"sluice_monitor_queries_total", []string{"database", e.db, "cache", "hit"}, 1},
		{"sluice_monitor_query_duration_seconds", []string{"database", e.db}, 9},
		{"sluice_monitor_query_errors_total", []string{"database", e.db, "sqlstate_class", "22"}, 1},
		{"sluice_monitor_query_errors_total", []string{"database", e.db, "sqlstate_class", "42"}, 1},
		{"sluice_monitor_query_rows_total", []string{"database", e.db}, 5},
	}
	for _, tc := range grew {
		t.Run("grew "+tc.name, func(t *testing.T) {
			if d := sample(after, tc.name, tc.labels...) - sample(before, tc.name, tc.labels...); d < tc.min {
				t.Errorf("%s%v grew by %v, want >= %v", tc.name, tc.labels, d, tc.min)
			}
		})
	}
	if n := sample(after, "sluice_proxy_client_connections"); n < 2 {
		t.Errorf("sluice_proxy_client_connections = %v with 2 clients connected", n)
	}
	if n := sample(after, "go_goroutines"); n < 5 {
		t.Errorf("go_goroutines = %v", n)
	}
	if n := sample(after, "process_resident_memory_bytes"); n < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v", n)
	}
}

// TestMetricsPoolWait: with one server and concurrent clients the pool
// wait histogram records waits in its upper buckets.
func TestMetricsPoolWait(t *testing.T) {
	e := startYAML(t, "", func(b string) string { return replacePoolSize(b, 1) })
	before := e.scrape()
	var wg sync.WaitGroup
	for range 3 {
		c := e.connect(pgx.QueryExecModeSimpleProtocol)
		wg.Go(func() { exec(t, c, "SELECT pg_sleep(0.2)") })
	}
	wg.Wait()
	after := e.scrape()
	// slow counts observations above the largest bucket bound <= 0.1 s.
	slow := func(fams map[string]*dto.MetricFamily) uint64 {
		var n uint64
		for _, m := range fams["sluice_proxy_pool_wait_seconds"].GetMetric() {
			h := m.GetHistogram()
			var below uint64
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() <= 0.1 {
					below = b.GetCumulativeCount()
				}
			}
			n += h.GetSampleCount() - below
		}
		return n
	}
	if d := slow(after) - slow(before); d < 1 {
		t.Errorf("no pool wait >= 0.1s recorded with 3 clients on a pool of 1 running pg_sleep(0.2)")
	}
}
