package monitor

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector is the Recorder behind an enabled Monitor.
type collector struct {
	table *fpTable

	dbMu sync.Mutex
	dbs  atomic.Pointer[map[string]*dbMetrics] // copy-on-write: lookups never lock

	poolMu sync.Mutex
	pools  atomic.Pointer[map[string]map[string]*poolWaits]
}

// dbMetrics caches one database's metric children so the request path does
// no label hashing.
type dbMetrics struct {
	latency                prometheus.Observer
	rows                   prometheus.Counter
	hit, miss, uncacheable prometheus.Counter
}

func newCollector(s Settings) *collector {
	c := &collector{table: newFPTable(s.MaxFingerprints, s.MaxExampleBytes, windowTicks(s))}
	c.dbs.Store(&map[string]*dbMetrics{})
	c.pools.Store(&map[string]map[string]*poolWaits{})
	return c
}

// Query records one statement.
func (c *collector) Query(ev QueryEvent) {
	dm := c.db(ev.Database)
	dm.latency.Observe(ev.Duration.Seconds())
	if ev.Rows > 0 {
		dm.rows.Add(float64(ev.Rows))
	}
	switch {
	case ev.CacheHit:
		dm.hit.Inc()
	case ev.Cacheable:
		dm.miss.Inc()
	default:
		dm.uncacheable.Inc()
	}
	if ev.SQLState != "" {
		metricQueryErrors.WithLabelValues(ev.Database, sqlstateClass(ev.SQLState)).Inc()
	}
	c.table.record(&ev)
}

// sqlstateClass is the two-character class of a SQLSTATE (PostgreSQL
// Appendix A: "the first two characters of an error code denote a class").
func sqlstateClass(s string) string {
	if len(s) < 2 {
		return "unknown"
	}
	return s[:2]
}

// maxLabelSets bounds distinct databases (metric label values) and pools
// tracked; a wildcard database entry could otherwise grow them without
// limit. Beyond it everything is counted under overflowLabel.
const maxLabelSets = 512

// overflowLabel collects databases and pools past maxLabelSets.
const overflowLabel = "_other"

func (c *collector) db(name string) *dbMetrics {
	if dm, ok := (*c.dbs.Load())[name]; ok {
		return dm
	}
	c.dbMu.Lock()
	defer c.dbMu.Unlock()
	old := *c.dbs.Load()
	if dm, ok := old[name]; ok {
		return dm
	}
	if len(old) >= maxLabelSets {
		if dm, ok := old[overflowLabel]; ok {
			return dm
		}
		name = overflowLabel
	}
	dm := &dbMetrics{
		latency:     metricQueryDuration.WithLabelValues(name),
		rows:        metricQueryRows.WithLabelValues(name),
		hit:         metricQueries.WithLabelValues(name, "hit"),
		miss:        metricQueries.WithLabelValues(name, "miss"),
		uncacheable: metricQueries.WithLabelValues(name, "uncacheable"),
	}
	next := make(map[string]*dbMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = dm
	c.dbs.Store(&next)
	return dm
}

// poolWaits keeps one pool's checkout waits: the current analysis tick and
// a ring of closed ticks for the sliding window.
type poolWaits struct {
	mu    sync.Mutex
	cur   Sketch
	ring  [maxWindowTicks]Sketch
	pos   int
	count uint64
	total time.Duration
}

// PoolWait records how long a client waited for a server.
func (c *collector) PoolWait(database, user string, d time.Duration) {
	p := c.pool(database, user)
	p.mu.Lock()
	p.cur.Add(d)
	p.count++
	p.total += d
	p.mu.Unlock()
}

func (c *collector) pool(database, user string) *poolWaits {
	if p, ok := (*c.pools.Load())[database][user]; ok {
		return p
	}
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	old := *c.pools.Load()
	if p, ok := old[database][user]; ok {
		return p
	}
	n := 0
	for _, users := range old {
		n += len(users)
	}
	if n >= maxLabelSets {
		if p, ok := old[overflowLabel][overflowLabel]; ok {
			return p
		}
		database, user = overflowLabel, overflowLabel
	}
	p := &poolWaits{}
	next := make(map[string]map[string]*poolWaits, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	users := make(map[string]*poolWaits, len(old[database])+1)
	for k, v := range old[database] {
		users[k] = v
	}
	users[user] = p
	next[database] = users
	c.pools.Store(&next)
	return p
}

// poolWindow is one pool's waits over the analysis window.
type poolWindow struct {
	database, user string
	waits          Sketch
}

// rollPools closes a tick for every pool and returns the window sketches.
func (c *collector) rollPools(windowTicks int) []poolWindow {
	var out []poolWindow
	for db, users := range *c.pools.Load() {
		for user, p := range users {
			p.mu.Lock()
			p.pos = (p.pos + 1) % maxWindowTicks
			p.ring[p.pos], p.cur = p.cur, p.ring[p.pos]
			p.cur.Reset()
			w := poolWindow{database: db, user: user}
			for k := 0; k < windowTicks && k < maxWindowTicks; k++ {
				w.waits.Merge(&p.ring[(p.pos-k+maxWindowTicks)%maxWindowTicks])
			}
			p.mu.Unlock()
			out = append(out, w)
		}
	}
	return out
}

func fpHex(fp uint64) string { return fmt.Sprintf("%016x", fp) }
