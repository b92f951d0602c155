package resultcache

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Deps are what the proxy gives the cache.
type Deps struct {
	// Dial opens a plain connection to database as the pool's server user;
	// the cache keeps one per database for catalog reads. Required for
	// Check and InvalidateRelations.
	Dial func(ctx context.Context, database string) (*pgconn.PgConn, error)
	// DialReplication opens a connection with replication=database; needed
	// only with invalidation.logical_replication.
	DialReplication func(ctx context.Context, database string) (*pgconn.PgConn, error)
	Logger          zerolog.Logger
}

// Cache is one instance's result cache. All methods are safe for
// concurrent use.
type Cache struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger
	id   uint64 // this instance, to skip its own PUBLISHes

	l1   *otter.Cache[Key, *l1Entry]
	vers *versions

	rdb        redis.UniversalClient // nil: L1 only
	sharded    bool                  // Cluster: sharded pub/sub
	keys       redisKeys
	brk        *breaker
	pubsubLive atomic.Bool
	redisLog   logEvery

	dirtyMu  sync.Mutex
	dirty    map[string]struct{} // databases whose invalidation Redis missed
	dirtyAll bool

	flightMu sync.Mutex
	flights  map[Key]*flight

	seq  atomic.Uint64 // write edges published
	acks acks
	ackq chan ackReq

	wids   atomic.Uint64 // writes begun (Write.id)
	liveMu sync.Mutex
	live   map[uint64]*Write // writes whose end Redis does not have yet

	fillq    chan *l2Fill
	catalogs *catalogs
	auto     *autoCounter
	repl     *replicator

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New builds a cache from a validated config and starts its goroutines
// (fill writers, Redis subscriber, breaker probe, catalog refresh); Close
// stops them.
func New(cfg Config, deps Deps) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		cfg:     cfg,
		deps:    deps,
		log:     deps.Logger.With().Str("component", "resultcache").Logger(),
		id:      randUint64(),
		vers:    newVersions(),
		keys:    redisKeys{prefix: cfg.Redis.KeyPrefix},
		brk:     newBreaker(cfg.Redis.Breaker),
		dirty:   make(map[string]struct{}),
		flights: make(map[Key]*flight),
		fillq:   make(chan *l2Fill, cfg.FillQueue),
		ackq:    make(chan ackReq, 1024),
		acks:    acks{m: make(map[uint64]*ackWait)},
		live:    make(map[uint64]*Write),
		ctx:     ctx,
		cancel:  cancel,
	}
	c.redisLog.every = 10 * time.Second
	l1, err := otter.New(&otter.Options[Key, *l1Entry]{
		MaximumWeight: uint64(cfg.L1MaxBytes),
		Weigher:       func(_ Key, e *l1Entry) uint32 { return e.weight() },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[Key, *l1Entry]) time.Duration {
			return time.Until(e.Value.expiresAt)
		}),
	})
	if err != nil {
		cancel()
		return nil, err
	}
	c.l1 = l1
	c.catalogs = newCatalogs(c)
	c.auto = newAutoCounter(cfg.AutoMaxFingerprints, cfg.AutoWindow)
	if cfg.Invalidation.LogicalReplication {
		if deps.DialReplication == nil {
			cancel()
			return nil, errors.New("resultcache: invalidation.logical_replication needs Deps.DialReplication")
		}
		c.repl = newReplicator(c)
	}
	if cfg.Redis.Enabled() {
		c.rdb = newRedisClient(cfg.Redis)
		c.sharded = cfg.Redis.RedisMode() == "cluster"
		c.wg.Add(3)
		go c.subscribeLoop()
		go c.fillLoop()
		go c.ackLoop()
	}
	c.wg.Add(1)
	go c.housekeeping()
	return c, nil
}

// Close stops every goroutine and closes the cache's connections. Lookups
// after Close bypass the cache.
func (c *Cache) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel()
	if c.repl != nil {
		c.repl.close()
	}
	c.wg.Wait()
	c.catalogs.close()
	c.l1.StopAllGoroutines()
	c.auto.counts.StopAllGoroutines()
	c.abandonAllFlights()
	if c.rdb != nil {
		return c.rdb.Close()
	}
	return nil
}

// Config returns the configuration the cache runs with.
func (c *Cache) Config() Config { return c.cfg }

// housekeeping runs the breaker probe, catalog refresh, expiry of
// in-flight marks and gauges.
func (c *Cache) housekeeping() {
	defer c.wg.Done()
	tick := time.NewTicker(min(250*time.Millisecond, c.cfg.Redis.Breaker.Cooldown/2))
	defer tick.Stop()
	lastCatalog, lastPrune := time.Now(), time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		metricL1Bytes.Set(float64(c.l1.WeightedSize()))
		c.vers.expireRemote(time.Now())
		if time.Since(lastPrune) >= min(c.cfg.WriteLease, time.Minute) {
			lastPrune = time.Now()
			c.pruneLive()
		}
		if c.rdb != nil && c.brk.probeDue() {
			c.brk.probeDone(c.probe())
		}
		if time.Since(lastCatalog) >= c.cfg.CatalogRefresh {
			lastCatalog = time.Now()
			c.catalogs.refreshAll(c.ctx)
		}
	}
}

// probe decides whether Redis is back, and before the cache is used again
// replays what it missed: every database whose invalidation could not be
// published gets a new epoch (all its L2 entries die) and a PUBLISH so
// other instances drop their L1; every write edge Redis missed is replayed
// (replayWrites: an end lost in the outage releases the write's mark in
// Redis and on the other instances); then this instance's L1 and fills in
// flight are invalidated (global bump), since it may itself have missed
// other instances' PUBLISHes.
func (c *Cache) probe() bool {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.cfg.Redis.Timeout*50, time.Second))
	defer cancel()
	start := time.Now()
	err := c.rdb.Ping(ctx).Err()
	metricRedisLatency.WithLabelValues("probe").Observe(time.Since(start).Seconds())
	if err != nil {
		c.redisFailed("probe", err)
		return false
	}
	c.dirtyMu.Lock()
	dbs, all := c.dirty, c.dirtyAll
	c.dirty, c.dirtyAll = make(map[string]struct{}), false
	c.dirtyMu.Unlock()
	restore := func() {
		c.dirtyMu.Lock()
		for db := range dbs {
			c.dirty[db] = struct{}{}
		}
		c.dirtyAll = c.dirtyAll || all
		c.dirtyMu.Unlock()
	}
	if all {
		if err := c.l2DeleteAllVersions(ctx); err != nil {
			restore()
			c.redisFailed("probe", err)
			return false
		}
		if err := c.publish(ctx, c.rdb, c.encodeMsg(msgAll, "", 0, nil)).Err(); err != nil {
			restore()
			c.redisFailed("probe", err)
			return false
		}
	}
	for db := range dbs {
		if err := c.l2Bump(ctx, db, nil, true, c.encodeMsg(msgDatabase, db, 0, nil), time.Second); err != nil {
			restore()
			c.redisFailed("probe", err)
			return false
		}
	}
	nw, err := c.replayWrites(ctx)
	if err != nil {
		restore()
		c.redisFailed("probe", err)
		return false
	}
	c.flushLocal()
	c.log.Info().Int("replayed_databases", len(dbs)).Bool("replayed_all", all).Int("replayed_writes", nw).Msg("redis back, cache resumed")
	return true
}

// flushLocal invalidates every L1 entry and every fill in flight.
func (c *Cache) flushLocal() {
	c.vers.global.Add(1)
	c.l1.InvalidateAll()
}

// markDirty records that db's invalidation did not reach Redis ("" for
// everything) and opens the breaker so the cache is not used until the
// probe has replayed it.
func (c *Cache) markDirty(db string) {
	c.dirtyMu.Lock()
	if db == "" {
		c.dirtyAll = true
	} else {
		c.dirty[db] = struct{}{}
	}
	c.dirtyMu.Unlock()
	c.brk.trip()
}

// redisFailed counts a failed operation, logs at most once per interval and
// feeds the breaker.
func (c *Cache) redisFailed(op string, err error) {
	metricRedisErrors.WithLabelValues(op).Inc()
	opened := c.brk.failure()
	if opened || c.redisLog.ok() {
		c.log.Warn().Err(err).Str("op", op).Bool("breaker_open", !c.brk.closed()).Msg("redis unavailable, serving from postgres")
	}
}

// usable reports whether the cache may be used at all now: with Redis
// configured, only while the breaker is closed, because other instances'
// invalidations reach us only through Redis.
func (c *Cache) usable() bool {
	if c.closed.Load() {
		return false
	}
	return c.rdb == nil || c.brk.closed()
}

// Subscribed reports whether the cache hears every other instance's
// invalidations (always, without Redis). L1 may answer only then: at start
// or after a reconnect it answers nothing from the cache (and monitor's
// /readyz says so).
func (c *Cache) Subscribed() bool {
	return c.rdb == nil || c.pubsubLive.Load()
}

// fillLoop writes fills to Redis off the client's path.
func (c *Cache) fillLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.fillq:
			if !c.brk.closed() {
				metricFillRejected.WithLabelValues("redis_error").Inc()
				continue
			}
			ok, err := c.l2Store(c.ctx, f)
			switch {
			case err != nil:
				metricFillRejected.WithLabelValues("redis_error").Inc()
				c.redisFailed("store", err)
			case ok:
				c.brk.success()
				fillsL2.Inc()
			default:
				c.brk.success()
				metricFillRejected.WithLabelValues("race").Inc()
			}
		}
	}
}

func randUint64() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// Redis is the L2 client (nil without Redis), for monitoring probes.
func (c *Cache) Redis() redis.UniversalClient { return c.rdb }
