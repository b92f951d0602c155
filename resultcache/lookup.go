package resultcache

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one lookup.
type Request struct {
	Key      Key
	Database string
	// Rels are the relations the statement reads, as Check returned them
	// (sorted, views and partitioned tables expanded).
	Rels []RelID
	// Fingerprint identifies the statement for purge by fingerprint.
	Fingerprint uint64
}

// Result is the answer of Lookup. Three shapes:
//
//   - hit: Payload != nil, Fill == nil. Write Payload to the client as-is.
//   - miss: Payload == nil, Fill != nil. Run the query, then Fill.Store the
//     captured bytes (or Fill.Abandon).
//   - bypass: both nil. Run the query and don't store (Redis unhealthy, a
//     coalesced leader failed, the cache is closed).
//
// A hit may also carry a Fill (Refresh): refresh-ahead handed this caller,
// and only this one, the job of refreshing a hot entry near the end of its
// TTL. The caller may serve Payload and run the query in the background,
// or ignore Payload and treat it as a miss; either way it must call Store
// or Abandon.
//
// Payload is shared with the cache and other callers: read-only, never
// modified or returned to a buffer pool. It stays valid as long as it is
// referenced.
type Result struct {
	Payload []byte
	// Level is "l1", "l2" or "coalesced" on a hit.
	Level string
	Fill  *Fill
	// Reason says why a lookup bypassed the cache.
	Reason string
}

// Hit reports whether Payload holds the answer.
func (r Result) Hit() bool { return r.Payload != nil }

// flight is one leader's fill that concurrent misses on the same key wait
// for.
type flight struct {
	done    chan struct{}
	payload []byte // set before done is closed, nil if nothing was stored
	st      stamp  // the leader's local versions
	started time.Time
	once    sync.Once
}

func (f *flight) finish(payload []byte) {
	f.once.Do(func() {
		f.payload = payload
		close(f.done)
	})
}

// Fill is a ticket to store the result of a query whose versions were
// captured before the query was sent. Exactly one of Store or Abandon must
// be called; later calls are no-ops. A ticket dropped without either is
// abandoned when garbage collected, and waiters give up after
// coalesce_wait anyway.
type Fill struct {
	c       *Cache
	req     Request
	st      stamp
	rs      *rstamp
	flight  *flight  // nil for a refresh ticket
	refresh *l1Entry // non-nil for a refresh ticket
	done    atomic.Bool
	cleanup runtime.Cleanup
}

// Refresh reports whether the ticket came with a hit (refresh-ahead).
func (f *Fill) Refresh() bool { return f != nil && f.refresh != nil }

// Lookup looks the key up in L1, then (one pipelined round trip) in Redis.
// It never returns an error: anything wrong becomes a bypass.
func (c *Cache) Lookup(ctx context.Context, req *Request) Result {
	if !c.usable() {
		bypassRedis.Inc()
		return Result{Reason: "redis_unavailable"}
	}
	if c.Subscribed() {
		if e, ok := c.l1.GetIfPresent(req.Key); ok {
			if e.db == req.Database && e.st.sameRels(req.Rels) && c.vers.valid(req.Database, &e.st) {
				hitsL1.Inc()
				r := Result{Payload: e.payload, Level: "l1"}
				r.Fill = c.refreshTicket(req, e)
				return r
			}
			c.l1.Invalidate(req.Key)
		}
	}
	st := c.vers.stamp(req.Database, req.Rels)

	// Coalescing: one leader per key; followers whose versions match the
	// leader's wait for its result.
	c.flightMu.Lock()
	fl := c.flights[req.Key]
	if fl != nil && time.Since(fl.started) < c.cfg.FillTimeout {
		c.flightMu.Unlock()
		return c.follow(ctx, fl, &st)
	}
	fl = &flight{done: make(chan struct{}), st: st, started: time.Now()}
	c.flights[req.Key] = fl
	c.flightMu.Unlock()

	var rs *rstamp
	if c.rdb != nil {
		var v *l2Value
		var err error
		rs, v, err = c.l2Lookup(ctx, req)
		if err != nil {
			c.releaseFlight(req.Key, fl, nil)
			if ctx.Err() != nil { // the client went away: not Redis's fault
				return Result{Reason: "canceled"}
			}
			c.redisFailed("lookup", err)
			bypassRedis.Inc()
			return Result{Reason: "redis_unavailable"}
		}
		c.brk.success()
		if v != nil {
			c.putL1(req, st, rs, v.payload, v.created, v.ttl)
			c.releaseFlight(req.Key, fl, v.payload)
			hitsL2.Inc()
			return Result{Payload: v.payload, Level: "l2"}
		}
	}
	metricMisses.Inc()
	f := &Fill{c: c, req: *req, st: st, rs: rs, flight: fl}
	f.cleanup = runtime.AddCleanup(f, func(a abandonArgs) { a.c.releaseFlight(a.key, a.fl, nil) }, abandonArgs{c, req.Key, fl})
	return Result{Fill: f}
}

// abandonArgs is what the GC cleanup of a dropped Fill needs (not the Fill
// itself, which would keep it reachable).
type abandonArgs struct {
	c   *Cache
	key Key
	fl  *flight
}

// follow waits for a leader's result, bounded by coalesce_wait and ctx.
func (c *Cache) follow(ctx context.Context, fl *flight, st *stamp) Result {
	if !sameStamp(&fl.st, st) {
		// A write happened since the leader sent its query: its result may
		// be older than what this caller must see.
		metricBypass.WithLabelValues("coalesce_stale").Inc()
		return Result{Reason: "coalesce_stale"}
	}
	t := time.NewTimer(c.cfg.CoalesceWait)
	defer t.Stop()
	select {
	case <-fl.done:
		if fl.payload != nil {
			hitsCoalesced.Inc()
			return Result{Payload: fl.payload, Level: "coalesced"}
		}
		metricBypass.WithLabelValues("leader_failed").Inc()
		return Result{Reason: "leader_failed"}
	case <-t.C:
		metricBypass.WithLabelValues("coalesce_timeout").Inc()
		return Result{Reason: "coalesce_timeout"}
	case <-ctx.Done():
		return Result{Reason: "canceled"}
	}
}

func sameStamp(a, b *stamp) bool {
	if a.global != b.global || len(a.rels) != len(b.rels) {
		return false
	}
	for i := range a.rels {
		if a.rels[i] != b.rels[i] {
			return false
		}
	}
	return true
}

// releaseFlight wakes the followers and forgets the flight.
func (c *Cache) releaseFlight(key Key, fl *flight, payload []byte) {
	fl.finish(payload)
	c.flightMu.Lock()
	if c.flights[key] == fl {
		delete(c.flights, key)
	}
	c.flightMu.Unlock()
}

func (c *Cache) abandonAllFlights() {
	c.flightMu.Lock()
	fls := c.flights
	c.flights = make(map[Key]*flight)
	c.flightMu.Unlock()
	for _, fl := range fls {
		fl.finish(nil)
	}
}

// refreshTicket hands out at most one refresh ticket per entry (again after
// fill_timeout if its holder never finished), for hot entries (hit at
// least twice) in the last refresh_ahead fraction of their TTL.
func (c *Cache) refreshTicket(req *Request, e *l1Entry) *Fill {
	hits := e.hits.Add(1)
	if e.refreshAt.IsZero() || hits < 2 {
		return nil
	}
	now := time.Now()
	if now.Before(e.refreshAt) {
		return nil
	}
	prev := e.refreshing.Load()
	if prev != 0 && now.Sub(time.Unix(0, prev)) < c.cfg.FillTimeout {
		return nil
	}
	if !e.refreshing.CompareAndSwap(prev, now.UnixNano()) {
		return nil
	}
	return &Fill{c: c, req: *req, st: c.vers.stamp(req.Database, req.Rels), rs: e.rs, refresh: e}
}

// putL1 stores an entry in L1; created and ttl give its expiry.
func (c *Cache) putL1(req *Request, st stamp, rs *rstamp, payload []byte, created time.Time, ttl time.Duration) {
	e := &l1Entry{db: req.Database, fp: req.Fingerprint, st: st, rs: rs, payload: payload,
		createdAt: created, expiresAt: created.Add(ttl)}
	if !time.Now().Before(e.expiresAt) {
		return
	}
	if c.cfg.RefreshAhead > 0 {
		e.refreshAt = e.expiresAt.Add(-time.Duration(float64(ttl) * c.cfg.RefreshAhead))
	}
	c.l1.Set(req.Key, e)
}

// Store keeps payload (the complete wire answer: RowDescription, DataRows,
// CommandComplete as the client should see them) for ttl (<= 0: the
// default_ttl). The cache takes ownership of payload: the caller must not
// modify or reuse it afterwards. It is stored only if no version it depends
// on changed since the ticket was issued and it is not larger than
// max_entry_size; the L2 write happens in the background. It reports
// whether the result went into L1; waiters get it either way if it is
// within size and unchanged.
func (f *Fill) Store(payload []byte, ttl time.Duration) bool {
	if f == nil || !f.done.CompareAndSwap(false, true) {
		return false
	}
	f.cleanup.Stop()
	c := f.c
	if f.refresh != nil {
		defer f.refresh.refreshing.Store(0)
	}
	if ttl <= 0 {
		ttl = c.cfg.DefaultTTL
	}
	reject := func(reason string) bool {
		metricFillRejected.WithLabelValues(reason).Inc()
		if f.flight != nil {
			c.releaseFlight(f.req.Key, f.flight, nil)
		}
		return false
	}
	switch {
	case len(payload) == 0:
		return reject("empty")
	case len(payload) > c.cfg.MaxEntrySize:
		return reject("too_large")
	case c.closed.Load():
		return reject("closed")
	case !c.vers.valid(f.req.Database, &f.st):
		return reject("race")
	case c.vers.writing(f.req.Database, f.req.Rels):
		return reject("write_in_flight")
	}
	now := time.Now()
	c.putL1(&f.req, f.st, f.rs, payload, now, ttl)
	fillsL1.Inc()
	if f.flight != nil {
		c.releaseFlight(f.req.Key, f.flight, payload)
	}
	if c.rdb != nil && f.rs != nil {
		lf := &l2Fill{db: f.req.Database, key: f.req.Key, fp: f.req.Fingerprint, rels: f.req.Rels,
			rs: f.rs, payload: payload, created: now, ttl: ttl}
		select {
		case c.fillq <- lf:
		default:
			metricFillRejected.WithLabelValues("queue_full").Inc()
		}
	}
	return true
}

// Abandon gives the ticket up (query failed, client gone, result
// suspended by a row limit): waiters go to PostgreSQL themselves.
func (f *Fill) Abandon() {
	if f == nil || !f.done.CompareAndSwap(false, true) {
		return
	}
	f.cleanup.Stop()
	metricFillRejected.WithLabelValues("abandoned").Inc()
	if f.refresh != nil {
		f.refresh.refreshing.Store(0)
	}
	if f.flight != nil {
		f.c.releaseFlight(f.req.Key, f.flight, nil)
	}
}
