package monitor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sluice-proxy/sluice/monitor"
)

// TestMetricsExposition scrapes /metrics through the admin port, parses it
// with the Prometheus text parser and checks names, types and labels.
func TestMetricsExposition(t *testing.T) {
	cfg := testConfig()
	cfg.Admin.Token = "tok"
	h := startHarness(t, cfg, nil)
	rec := h.m.Recorder()
	rec.Query(monitor.QueryEvent{Database: "metricsdb", Fingerprint: 42, Normalized: "SELECT 1", Duration: 2 * time.Millisecond, Rows: 3, Cacheable: true})
	rec.Query(monitor.QueryEvent{Database: "metricsdb", Fingerprint: 42, Normalized: "SELECT 1", Duration: 2 * time.Millisecond, Rows: 3, CacheHit: true})
	rec.Query(monitor.QueryEvent{Database: "metricsdb", Fingerprint: 43, Normalized: "SELECT x", Duration: time.Millisecond, SQLState: "42703"})
	h.do(t, "GET", "/api/v1/stats", "good", nil)

	r := h.do(t, "GET", "/metrics", "good", nil)
	if r.code != 200 {
		t.Fatalf("/metrics: %d", r.code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	type want struct {
		typ    string
		labels map[string]string // a series with these labels must exist
		value  float64           // counter/gauge value or histogram count; <0: any
	}
	wants := map[string]want{
		"sluice_monitor_query_duration_seconds":    {"HISTOGRAM", map[string]string{"database": "metricsdb"}, 3},
		"sluice_monitor_queries_total":             {"COUNTER", map[string]string{"database": "metricsdb", "cache": "hit"}, 1},
		"sluice_monitor_query_rows_total":          {"COUNTER", map[string]string{"database": "metricsdb"}, 6},
		"sluice_monitor_query_errors_total":        {"COUNTER", map[string]string{"database": "metricsdb", "sqlstate_class": "42"}, 1},
		"sluice_monitor_fingerprints":              {"GAUGE", nil, -1},
		"sluice_monitor_admin_requests_total":      {"COUNTER", map[string]string{"route": "/api/v1/stats", "code": "200"}, -1},
		"sluice_monitor_analysis_duration_seconds": {"HISTOGRAM", map[string]string{"pass": "fast"}, -1},
		"go_goroutines":                            {"GAUGE", nil, -1},
		"go_gc_duration_seconds":                   {"SUMMARY", nil, -1},
		"process_resident_memory_bytes":            {"GAUGE", nil, -1},
	}
	for name, w := range wants {
		fam, ok := fams[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if fam.GetType().String() != w.typ {
			t.Errorf("%s type %s, want %s", name, fam.GetType(), w.typ)
		}
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		found := false
		for _, m := range fam.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			match := true
			for k, v := range w.labels {
				if got[k] != v {
					match = false
				}
			}
			if !match {
				continue
			}
			found = true
			if w.value >= 0 {
				var v float64
				switch w.typ {
				case "COUNTER":
					v = m.GetCounter().GetValue()
				case "GAUGE":
					v = m.GetGauge().GetValue()
				case "HISTOGRAM":
					v = float64(m.GetHistogram().GetSampleCount())
				}
				if v != w.value {
					t.Errorf("%s%v = %v, want %v", name, w.labels, v, w.value)
				}
			}
		}
		if !found {
			t.Errorf("%s has no series with labels %v", name, w.labels)
		}
	}
	// Unauthenticated scrape is refused when a token is set.
	if r := h.do(t, "GET", "/metrics", "", nil); r.code != 401 {
		t.Errorf("unauthenticated /metrics: %d", r.code)
	}
}
