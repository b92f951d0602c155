package rewrite

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the analyzer and rule engine, on the default registry. They
// are documented in docs/rewrite.md.
var (
	metricParseErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "parse_errors_total",
		Help: "Statements that did not parse and were passed to Postgres unchanged.",
	})
	metricSkipped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "unanalyzed_total",
		Help: "Statements passed through without analysis because they exceed rewrite.max_statement_bytes.",
	})
	metricCacheHits = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "analysis_cache_hits_total",
		Help: "Statement texts found in the analysis cache.",
	})
	metricCacheMisses = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "analysis_cache_misses_total",
		Help: "Statement texts parsed because they were not in the analysis cache.",
	})
	metricShapeHits = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "shape_hits_total",
		Help: "Analysis cache misses served from a text differing only in literal values (no parse).",
	})
	metricCacheBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "analysis_cache_bytes",
		Help: "Estimated bytes held by the analysis cache (updated on each miss).",
	})
	metricMatches = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "rule_matches_total",
		Help: "Statements a rule matched.",
	}, []string{"rule"})
	metricRewrites = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "rewrites_total",
		Help: "Statements a rule changed (limit, hint or replace).",
	}, []string{"rule"})
	metricBlocks = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "blocks_total",
		Help: "Statements a rule blocked.",
	}, []string{"rule"})
	metricReplaceFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "rewrite", Name: "replace_failures_total",
		Help: "Replace rules that matched but whose result was unusable (did not parse or dropped a parameter); the statement was sent unchanged.",
	}, []string{"rule"})
)

// counterInc is one metric increment a Decision carries, resolved once when
// the Decision is built so a repeat costs only the atomic add.
type counterInc struct{ c prometheus.Counter }
