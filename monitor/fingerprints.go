package monitor

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// numShards spreads the fingerprint table so concurrent clients rarely meet
// on one lock (a global mutex here would cap proxy throughput).
const numShards = 64

// maxWindowTicks bounds the per-fingerprint ring of analysis ticks.
const maxWindowTicks = 60

// fpTable is the bounded per-fingerprint statistics table.
type fpTable struct {
	shards      [numShards]shard
	perShard    int
	maxExample  int
	windowTicks int // ring length per entry
	entries     atomic.Int64
	evictions   atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]*fpEntry
	n  int
	tk trafficTick
	_  [64]byte // keep neighbouring shard locks off one cache line
}

// trafficTick is what the dashboard timeline needs since the last sample.
type trafficTick struct {
	calls, errors, hits, lookups uint64
	sk                           Sketch
}

// fpEntry is one (fingerprint, database) row. Fields above the marker are
// written by the Recorder, the rest by the analyzer; all under the shard lock.
type fpEntry struct {
	fp         uint64
	database   string
	user       string
	normalized string
	example    string
	rules      []string
	next       *fpEntry

	calls, errors, hits, lookups uint64
	rows, maxRows, totalNs       int64
	sk                           Sketch

	// analyzer-owned
	usage                                    float64
	prevCalls, prevErrors, prevHits, prevLks uint64
	prevRows, prevNs                         int64
	ticks                                    []tickDelta // ring, len = window ticks
	tickPos                                  int
	ewma                                     float64 // seconds, mean per tick
	ewmaTicks                                int
	firstSeen, lastSeen                      time.Time
}

type tickDelta struct {
	calls, errors, hits, lookups uint64
	rows, ns                     int64
}

func (d *tickDelta) add(o tickDelta) {
	d.calls += o.calls
	d.errors += o.errors
	d.hits += o.hits
	d.lookups += o.lookups
	d.rows += o.rows
	d.ns += o.ns
}

func newFPTable(maxFingerprints, maxExample, windowTicks int) *fpTable {
	windowTicks = min(max(windowTicks, 1), maxWindowTicks)
	t := &fpTable{perShard: (maxFingerprints + numShards - 1) / numShards, maxExample: maxExample, windowTicks: windowTicks}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*fpEntry)
	}
	return t
}

// record adds one event; it allocates only for a new fingerprint.
func (t *fpTable) record(ev *QueryEvent) {
	sh := &t.shards[(ev.Fingerprint^ev.Fingerprint>>32)%numShards]
	ns := int64(ev.Duration)
	secs := ev.Duration.Seconds()
	key := keyOf(secs) // outside the lock
	sh.mu.Lock()
	e := sh.m[ev.Fingerprint]
	for e != nil && e.database != ev.Database {
		e = e.next
	}
	if e == nil {
		e = t.insert(sh, ev)
	}
	e.calls++
	e.totalNs += ns
	e.rows += ev.Rows
	if ev.Rows > e.maxRows {
		e.maxRows = ev.Rows
	}
	sh.tk.calls++
	if ev.SQLState != "" {
		e.errors++
		sh.tk.errors++
	}
	if ev.CacheHit {
		e.hits++
		sh.tk.hits++
	}
	if ev.CacheHit || ev.Cacheable {
		e.lookups++
		sh.tk.lookups++
	}
	e.sk.addValue(secs, key)
	sh.tk.sk.addValue(secs, key)
	if e.example == "" && ev.Example != "" && len(ev.Example) <= t.maxExample {
		e.example = ev.Example
	}
	if len(ev.Rules) > 0 && !containsAll(e.rules, ev.Rules) {
		e.rules = mergeRules(e.rules, ev.Rules)
	}
	sh.mu.Unlock()
}

func (t *fpTable) insert(sh *shard, ev *QueryEvent) *fpEntry {
	if sh.n >= t.perShard {
		t.evict(sh)
	}
	e := &fpEntry{fp: ev.Fingerprint, database: ev.Database, user: ev.User,
		normalized: ev.Normalized, firstSeen: time.Now(), ticks: make([]tickDelta, t.windowTicks)}
	e.next = sh.m[ev.Fingerprint]
	sh.m[ev.Fingerprint] = e
	sh.n++
	t.entries.Add(1)
	metricFingerprints.Inc()
	return e
}

// evict drops the shard's least used entry: lowest decayed usage plus calls
// since the last analysis tick (pg_stat_statements' "usage" idea).
func (t *fpTable) evict(sh *shard) {
	var victim *fpEntry
	best := 0.0
	for _, head := range sh.m {
		for e := head; e != nil; e = e.next {
			u := e.usage + float64(e.calls-e.prevCalls)
			if victim == nil || u < best {
				victim, best = e, u
			}
		}
	}
	if victim == nil {
		return
	}
	head := sh.m[victim.fp]
	if head == victim {
		if victim.next == nil {
			delete(sh.m, victim.fp)
		} else {
			sh.m[victim.fp] = victim.next
		}
	} else {
		for p := head; p != nil; p = p.next {
			if p.next == victim {
				p.next = victim.next
				break
			}
		}
	}
	sh.n--
	t.entries.Add(-1)
	t.evictions.Add(1)
	metricFingerprints.Dec()
	metricFingerprintEvictions.Inc()
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func mergeRules(have, add []string) []string {
	out := slices.Clone(have)
	for _, a := range add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// takeTraffic returns and resets the traffic since the previous call.
func (t *fpTable) takeTraffic(into *trafficTick) {
	into.calls, into.errors, into.hits, into.lookups = 0, 0, 0, 0
	into.sk.Reset()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		into.calls += sh.tk.calls
		into.errors += sh.tk.errors
		into.hits += sh.tk.hits
		into.lookups += sh.tk.lookups
		into.sk.Merge(&sh.tk.sk)
		sh.tk.calls, sh.tk.errors, sh.tk.hits, sh.tk.lookups = 0, 0, 0, 0
		sh.tk.sk.Reset()
		sh.mu.Unlock()
	}
}

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

// fpWindow is what the analyzer sees of one fingerprint after a tick.
type fpWindow struct {
	fp                   uint64
	database, normalized string
	example              string
	tick, window         tickDelta
	baseline             float64 // EWMA of earlier tick means (s); 0 if none
	baselineTicks        int
	maxRows              int64
	p95                  float64
	calls                uint64
	lastSeen             time.Time
}

func (w *fpWindow) windowMean() float64 {
	if w.window.calls == 0 {
		return 0
	}
	return float64(w.window.ns) / 1e9 / float64(w.window.calls)
}

func (w *fpWindow) tickMean() float64 {
	if w.tick.calls == 0 {
		return 0
	}
	return float64(w.tick.ns) / 1e9 / float64(w.tick.calls)
}

// ewmaAlpha weighs a new tick into a fingerprint's latency baseline; 0.2
// follows a sustained change within about ten ticks while one slow tick
// moves it little.
const ewmaAlpha = 0.2

// roll closes an analysis tick: it computes every entry's delta, keeps it
// in the entry's ring, decays usage and returns the window views. The
// baseline in each view is the one before this tick was folded in, so the
// analyzer can compare the tick against its own past.
func (t *fpTable) roll(now time.Time, windowTicks int) []fpWindow {
	if windowTicks < 1 {
		windowTicks = 1
	}
	if windowTicks > maxWindowTicks {
		windowTicks = maxWindowTicks
	}
	out := make([]fpWindow, 0, t.entries.Load())
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				d := tickDelta{
					calls: e.calls - e.prevCalls, errors: e.errors - e.prevErrors,
					hits: e.hits - e.prevHits, lookups: e.lookups - e.prevLks,
					rows: e.rows - e.prevRows, ns: e.totalNs - e.prevNs,
				}
				e.prevCalls, e.prevErrors, e.prevHits, e.prevLks = e.calls, e.errors, e.hits, e.lookups
				e.prevRows, e.prevNs = e.rows, e.totalNs
				n := len(e.ticks)
				e.tickPos = (e.tickPos + 1) % n
				e.ticks[e.tickPos] = d
				e.usage = e.usage/2 + float64(d.calls)
				if d.calls > 0 {
					e.lastSeen = now
				}
				w := fpWindow{fp: e.fp, database: e.database, normalized: e.normalized,
					example: e.example, tick: d, baseline: e.ewma, baselineTicks: e.ewmaTicks,
					maxRows: e.maxRows, calls: e.calls, lastSeen: e.lastSeen, p95: e.sk.Quantile(0.95)}
				for k := 0; k < windowTicks && k < n; k++ {
					w.window.add(e.ticks[(e.tickPos-k+n)%n])
				}
				if d.calls > 0 {
					m := float64(d.ns) / 1e9 / float64(d.calls)
					if e.ewmaTicks == 0 {
						e.ewma = m
					} else {
						e.ewma += ewmaAlpha * (m - e.ewma)
					}
					e.ewmaTicks++
				}
				out = append(out, w)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// example returns the recorded example SQL of a fingerprint.
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
