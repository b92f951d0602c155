package resultcache

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Write is a write seen by Sluice, from the moment its statement is sent
// until its transaction ends. Both ends bump the versions of what it
// writes, and in between no result depending on them is stored, on any
// instance (the begin and end are published; L2's store script checks the
// in-flight marks too): a result read before the commit would otherwise
// still look valid between the commit and the second bump.
type Write struct {
	c     *Cache
	db    string
	ids   []RelID // dbRel alone for a whole-database write
	whole bool
	done  atomic.Bool
}

// BeginWrite is called when a statement that writes rels is sent (DML,
// COPY FROM, TRUNCATE, DDL on them). Names resolve as in
// InvalidateRelations; if they can't, the whole database is the target.
// Call Done when the statement's transaction commits or rolls back (for an
// autocommit statement: when its result arrives), including when the
// client goes away. Never fails the caller: Redis trouble is absorbed as in
// bump.
func (c *Cache) BeginWrite(ctx context.Context, db, searchPath, user string, rels []Relation) *Write {
	ids, err := c.resolveWrite(ctx, db, searchPath, user, rels)
	if err != nil {
		return c.BeginWriteDatabase(ctx, db)
	}
	return c.BeginWriteIDs(ctx, db, ids)
}

// BeginWriteIDs is BeginWrite for relations given by OID.
func (c *Cache) BeginWriteIDs(ctx context.Context, db string, ids []RelID) *Write {
	w := &Write{c: c, db: db, ids: append([]RelID(nil), ids...)}
	c.writeEdge(ctx, w, true)
	return w
}

// BeginWriteDatabase is BeginWrite for a write whose targets are unknown:
// a call of a volatile function or procedure, unattributed DDL.
func (c *Cache) BeginWriteDatabase(ctx context.Context, db string) *Write {
	w := &Write{c: c, db: db, ids: []RelID{dbRel}, whole: true}
	c.writeEdge(ctx, w, true)
	return w
}

// Done ends the write (commit or rollback): versions are bumped again and
// fills may be stored again. Later calls are no-ops.
func (w *Write) Done(ctx context.Context) {
	if w == nil || !w.done.CompareAndSwap(false, true) {
		return
	}
	w.c.writeEdge(ctx, w, false)
}

// writeEdge bumps and marks (begin) or bumps and unmarks (end) a write,
// locally and in Redis with a PUBLISH, in one round trip.
func (c *Cache) writeEdge(ctx context.Context, w *Write, begin bool) {
	if len(w.ids) == 0 {
		return
	}
	if begin {
		c.vers.beginWrite(w.db, w.ids, c.cfg.WriteLease)
	}
	for _, id := range w.ids {
		c.vers.bump(w.db, id)
	}
	if !begin {
		c.vers.endWrite(w.db, w.ids)
	}
	metricInvalidations.WithLabelValues("local").Add(float64(len(w.ids)))
	if c.rdb == nil || c.closed.Load() {
		return
	}
	if !c.brk.closed() {
		c.markDirty(w.db)
		return
	}
	kind := msgWriteEnd
	if begin {
		kind = msgWriteBegin
	}
	seq := c.seq.Add(1)
	aw := c.registerAck(seq)
	defer c.unregisterAck(seq)
	msg := c.encodeMsgSeq(kind, w.db, 0, seq, w.ids)
	args := make([]any, 0, len(w.ids)+3)
	args = append(args, strconv.FormatUint(randUint64(), 10), c.cfg.WriteLease.Milliseconds())
	if begin {
		args = append(args, 1)
	} else {
		args = append(args, -1)
	}
	for _, id := range w.ids {
		args = append(args, relField(id))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.invalidateTimeout())
	defer cancel()
	start := time.Now()
	pipe := c.rdb.Pipeline()
	writeScript.Eval(ctx, pipe, []string{c.keys.versions(w.db)}, args...)
	pub := c.publish(ctx, pipe, msg)
	_, err := pipe.Exec(ctx)
	metricRedisLatency.WithLabelValues("invalidate").Observe(time.Since(start).Seconds())
	if err != nil {
		metricRedisErrors.WithLabelValues("invalidate").Inc()
		c.markDirty(w.db)
		if c.redisLog.ok() {
			c.log.Warn().Err(err).Str("database", w.db).Msg("invalidation not published, cache bypassed until redis is back")
		}
		return
	}
	c.brk.success()
	if !c.pubsubLive.Load() {
		return // acknowledgements would arrive on our subscription
	}
	c.waitAcks(aw, int(pub.Val())-1) // our own subscription received it too
}

// writeScript is both edges of a write. KEYS: the version hash. ARGV: new
// epoch, lease ms, +1 (begin) or -1 (end), fields ("0" = whole database,
// which replaces the epoch instead of a version). In-flight writes of a
// field f are counted in w<f>, with d<f> the deadline (Redis TIME, ms) of
// the latest begin; a count whose deadline passed (an instance died
// mid-write) is reset by the next begin.
var writeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delta = tonumber(ARGV[3])
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
for i = 4, #ARGV do
  local f = ARGV[i]
  if f == '0' then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
  else
    redis.call('HINCRBY', KEYS[1], f, 1)
  end
  local n = tonumber(redis.call('HGET', KEYS[1], 'w' .. f) or '0')
  local dl = tonumber(redis.call('HGET', KEYS[1], 'd' .. f) or '0')
  if delta > 0 then
    if dl <= now then n = 0 end
    redis.call('HSET', KEYS[1], 'w' .. f, n + 1, 'd' .. f, now + tonumber(ARGV[2]))
  else
    n = n - 1
    if n < 0 then n = 0 end
    redis.call('HSET', KEYS[1], 'w' .. f, n)
  end
end
return 1
`)
