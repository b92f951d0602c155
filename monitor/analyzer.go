package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// analyzer turns counters into findings. The fast pass (host, pool,
// queries, cache, Redis) runs every analysis_interval on data already in
// memory plus one Source snapshot; the database pass reads pg_stat_* views
// every db_stats_interval; the index pass runs EXPLAIN/hypopg every
// index_advice.interval. Passes run on one goroutine each and never on the
// request path.
type analyzer struct {
	settings func() Settings
	deps     Deps
	col      *collector
	sys      *ring[SystemSample]
	store    *findingStore
	log      zerolog.Logger

	mu        sync.Mutex // guards the pass state below
	cacheHist []cacheSnap
	redisPrev *RedisStats
	dbPrev    map[string]*dbCounters
	poolHist  map[[2]string][]PoolStats // per pool, one snapshot per tick in the window
}

type cacheSnap struct {
	t time.Time
	s CacheStats
}

func newAnalyzer(settings func() Settings, deps Deps, col *collector, sys *ring[SystemSample], store *findingStore) *analyzer {
	return &analyzer{settings: settings, deps: deps, col: col, sys: sys, store: store,
		log: deps.Log, dbPrev: map[string]*dbCounters{}, poolHist: map[[2]string][]PoolStats{}}
}

func windowTicks(s Settings) int {
	n := int(s.Window / s.AnalysisInterval)
	if n < 1 {
		n = 1
	}
	if n > maxWindowTicks {
		n = maxWindowTicks
	}
	return n
}

// fastPass runs the in-memory analyses and publishes their findings.
func (a *analyzer) fastPass(ctx context.Context, now time.Time) []Finding {
	start := time.Now()
	defer func() { metricAnalysisDuration.WithLabelValues("fast").Observe(time.Since(start).Seconds()) }()
	s := a.settings()
	a.mu.Lock()
	defer a.mu.Unlock()
	var snap Snapshot
	if a.deps.Source != nil {
		snap = a.deps.Source.Snapshot()
	}
	ticks := windowTicks(s)
	a.recordPools(snap, ticks)
	var fs []Finding
	fs = append(fs, hostFindings(s, a.sys.list(), now)...)
	if a.col != nil {
		rows := a.col.table.roll(now, ticks)
		fs = append(fs, poolFindings(s, snap, a.col.rollPools(ticks), a.poolHist, now)...)
		fs = append(fs, queryFindings(s, rows, now)...)
	} else {
		fs = append(fs, poolFindings(s, snap, nil, a.poolHist, now)...)
	}
	if a.deps.CacheStats != nil {
		a.cacheHist = append(a.cacheHist, cacheSnap{now, a.deps.CacheStats()})
		if keep := windowTicks(s) + 1; len(a.cacheHist) > keep {
			a.cacheHist = append(a.cacheHist[:0], a.cacheHist[len(a.cacheHist)-keep:]...)
		}
		fs = append(fs, cacheFindings(s, a.cacheHist)...)
	}
	if a.deps.RedisStats != nil {
		rctx, cancel := context.WithTimeout(ctx, s.QueryTimeout)
		rs, err := a.deps.RedisStats(rctx)
		cancel()
		fs = append(fs, redisFindings(s, a.redisPrev, rs, err, now)...)
		if err == nil {
			a.redisPrev = &rs
		}
	}
	a.store.replace("fast", now, fs)
	return fs
}

// recordPools keeps each pool's state at every tick of the window, so the
// diagnosis of waits uses what the servers did while clients waited, not
// only the instant of the analysis.
func (a *analyzer) recordPools(snap Snapshot, ticks int) {
	seen := map[[2]string]bool{}
	for _, p := range snap.Pools {
		k := [2]string{p.Database, p.User}
		seen[k] = true
		h := append(a.poolHist[k], p)
		if len(h) > ticks {
			h = h[len(h)-ticks:]
		}
		a.poolHist[k] = h
	}
	for k := range a.poolHist {
		if !seen[k] {
			delete(a.poolHist, k)
		}
	}
}
