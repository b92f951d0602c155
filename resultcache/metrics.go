package resultcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are process-wide (every Cache in the process adds to them) and
// registered with the default registry, which monitor/ serves. Documented in
// docs/resultcache.md.
var (
	metricHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "hits_total",
		Help: "Lookups answered from the cache, by level (l1, l2, coalesced).",
	}, []string{"level"})
	metricMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "misses_total",
		Help: "Lookups that went to PostgreSQL with a fill ticket.",
	})
	metricBypass = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "bypass_total",
		Help: "Lookups that went to PostgreSQL without a fill ticket, by reason (redis_unavailable, coalesce_timeout, leader_failed, off).",
	}, []string{"reason"})
	metricFills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "fills_total",
		Help: "Results stored, by level (l1, l2).",
	}, []string{"level"})
	metricFillRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "fill_rejected_total",
		Help: "Results not stored, by reason (race, too_large, queue_full, abandoned, redis_error).",
	}, []string{"reason"})
	metricSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "skips_total",
		Help: "Statements found ineligible for the cache by Check, by reason.",
	}, []string{"reason"})
	metricInvalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "invalidations_total",
		Help: "Version bumps, by source (local, remote, replication, purge).",
	}, []string{"source"})
	metricRedisLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "redis_seconds",
		Help:    "Latency of Redis operations, by op (lookup, store, invalidate, probe, marks).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
	}, []string{"op"})
	metricRedisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "redis_errors_total",
		Help: "Failed Redis operations, by op.",
	}, []string{"op"})
	metricAckTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "ack_timeouts_total",
		Help: "Write edges not acknowledged by every other instance within redis.ack_timeout.",
	})
	metricBreakerState = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "breaker_state",
		Help: "Redis circuit breaker: 0 closed, 1 open, 2 half-open (probing).",
	})
	metricL1Bytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "l1_bytes",
		Help: "Payload bytes held in the in-process cache.",
	})
	metricReplicationLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "resultcache", Name: "replication_ready",
		Help: "1 while the logical replication follower of a database is streaming.",
	}, []string{"database"})
)

func init() {
	prometheus.MustRegister(metricHits, metricMisses, metricBypass, metricFills,
		metricFillRejected, metricSkips, metricInvalidations, metricRedisLatency,
		metricRedisErrors, metricAckTimeouts, metricBreakerState, metricL1Bytes, metricReplicationLag)
}

// Children resolved once: WithLabelValues hashes its labels on every call,
// a quarter of an L1 hit's cost.
var (
	hitsL1        = metricHits.WithLabelValues("l1")
	hitsL2        = metricHits.WithLabelValues("l2")
	hitsCoalesced = metricHits.WithLabelValues("coalesced")
	fillsL1       = metricFills.WithLabelValues("l1")
	fillsL2       = metricFills.WithLabelValues("l2")
	bypassRedis   = metricBypass.WithLabelValues("redis_unavailable")
)
