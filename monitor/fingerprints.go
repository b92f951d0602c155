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
