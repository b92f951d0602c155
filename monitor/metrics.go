package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Monitor-owned metrics, registered in the default registry that /metrics
// serves (next to the proxy's, rewrite's and the cache's own, and the Go
// runtime and process collectors the default registry carries). Connection,
// pool wait and byte counters belong to the proxy (proxy/metrics.go).
var (
	metricQueryDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "query_duration_seconds",
		Help:    "Statement latency as seen by the client, by database.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"database"})
	metricQueries = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "queries_total",
		Help: "Statements completed, by database and cache outcome (hit, miss: cacheable but not served from cache, uncacheable).",
	}, []string{"database", "cache"})
	metricQueryRows = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "query_rows_total",
		Help: "Rows returned or affected, by database.",
	}, []string{"database"})
	metricQueryErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "query_errors_total",
		Help: "Statements that ended in an ErrorResponse, by database and SQLSTATE class (first two characters, PostgreSQL Appendix A).",
	}, []string{"database", "sqlstate_class"})
	metricFingerprints = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "fingerprints",
		Help: "Query fingerprints currently tracked.",
	})
	metricFingerprintEvictions = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "fingerprint_evictions_total",
		Help: "Least-used fingerprints evicted to stay within monitor.max_fingerprints.",
	})
	metricFindings = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "findings",
		Help: "Current bottleneck findings, by category and severity.",
	}, []string{"category", "severity"})
	metricAnalysisDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "analysis_duration_seconds",
		Help:    "Time spent in one analysis pass, by pass (fast, database, index).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"pass"})
	metricAnalysisErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "analysis_errors_total",
		Help: "Analysis steps that failed (e.g. the monitoring connection could not be made), by pass.",
	}, []string{"pass"})
	metricAdminRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "monitor", Name: "admin_requests_total",
		Help: "Admin HTTP requests, by route and status code.",
	}, []string{"route", "code"})
)
