package resultcache

import (
	"context"
	"strconv"
	"strings"
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
	id    uint64 // with the instance's id, the write's identity (its mark in Redis)
	db    string
	ids   []RelID // dbRel alone for a whole-database write
	whole bool
	began time.Time
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
	w := &Write{c: c, id: c.wids.Add(1), db: db, ids: append([]RelID(nil), ids...), began: time.Now()}
	c.writeEdge(ctx, w, true)
	return w
}

// BeginWriteDatabase is BeginWrite for a write whose targets are unknown:
// a call of a volatile function or procedure, unattributed DDL.
func (c *Cache) BeginWriteDatabase(ctx context.Context, db string) *Write {
	w := &Write{c: c, id: c.wids.Add(1), db: db, ids: []RelID{dbRel}, whole: true, began: time.Now()}
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
// locally and in Redis with a PUBLISH, in one round trip. The write stays
// in c.live from its begin until Redis has its end: an edge Redis missed
// is replayed by the breaker probe (replayWrites).
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
	if begin {
		c.trackWrite(w)
	}
	if !c.brk.closed() {
		c.markDirty(w.db)
		return
	}
	seq := c.seq.Add(1)
	aw := c.registerAck(seq)
	defer c.unregisterAck(seq)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.invalidateTimeout())
	defer cancel()
	receivers, err := c.l2WriteEdge(ctx, w, begin, seq)
	if err != nil {
		metricRedisErrors.WithLabelValues("invalidate").Inc()
		c.markDirty(w.db)
		if c.redisLog.ok() {
			c.log.Warn().Err(err).Str("database", w.db).Msg("invalidation not published, cache bypassed until redis is back")
		}
		return
	}
	if !begin {
		c.untrackWrite(w)
	}
	c.brk.success()
	if !c.pubsubLive.Load() {
		return // acknowledgements would arrive on our subscription
	}
	c.waitAcks(aw, int(receivers)-1) // our own subscription received it too
}

// l2WriteEdge runs writeScript for one edge and publishes it, in one round
// trip; it returns PUBLISH's receiver count. seq 0 asks for no
// acknowledgement (a replay).
func (c *Cache) l2WriteEdge(ctx context.Context, w *Write, begin bool, seq uint64) (int64, error) {
	kind := msgWriteEnd
	delta := -1
	if begin {
		kind, delta = msgWriteBegin, 1
	}
	fields := make([]string, len(w.ids))
	for i, id := range w.ids {
		fields[i] = relField(id)
	}
	args := make([]any, 0, len(w.ids)+5)
	args = append(args, strconv.FormatUint(randUint64(), 10), c.cfg.WriteLease.Milliseconds(), delta,
		markField(writeID{c.id, w.id}), strings.Join(fields, ","))
	for _, f := range fields {
		args = append(args, f)
	}
	start := time.Now()
	pipe := c.rdb.Pipeline()
	writeScript.Eval(ctx, pipe, []string{c.keys.versions(w.db), c.keys.marks(w.db)}, args...)
	pub := c.publish(ctx, pipe, c.encodeMsgSeq(kind, w.db, w.id, seq, w.ids))
	_, err := pipe.Exec(ctx)
	metricRedisLatency.WithLabelValues("invalidate").Observe(time.Since(start).Seconds())
	return pub.Val(), err
}

// trackWrite and untrackWrite keep c.live: this instance's writes whose
// end Redis does not have yet.
func (c *Cache) trackWrite(w *Write) {
	c.liveMu.Lock()
	c.live[w.id] = w
	c.liveMu.Unlock()
}

func (c *Cache) untrackWrite(w *Write) {
	c.liveMu.Lock()
	delete(c.live, w.id)
	c.liveMu.Unlock()
}

// pruneLive forgets writes begun more than write_lease ago (their marks
// have expired everywhere, and a Done that never came must not keep them
// forever) and returns the others.
func (c *Cache) pruneLive() []*Write {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	ws := make([]*Write, 0, len(c.live))
	for id, w := range c.live {
		if time.Since(w.began) > c.cfg.WriteLease {
			delete(c.live, id)
			continue
		}
		ws = append(ws, w)
	}
	return ws
}

// replayWrites runs in the breaker probe, before the cache is used again:
// every write whose end Redis missed gets its end applied and published now
// (its mark goes, other instances release it), and every write still in
// flight gets its begin again, which restores its mark if Redis lost it and
// is a no-op on the mark otherwise. Marks are keyed by the write, so a
// replayed edge that Redis or another instance already had changes
// nothing but versions. Writes older than write_lease are dropped: their
// marks have expired everywhere.
func (c *Cache) replayWrites(ctx context.Context) (int, error) {
	ws := c.pruneLive()
	for _, w := range ws {
		done := w.done.Load()
		if _, err := c.l2WriteEdge(ctx, w, !done, 0); err != nil {
			return 0, err
		}
		if done {
			c.untrackWrite(w)
		}
	}
	return len(ws), nil
}

// writeScript is both edges of a write. KEYS: the version hash, the marks
// hash. ARGV: new epoch, lease ms, +1 (begin) or -1 (end), the write's mark
// field, its fields joined by ",", then the fields ("0" = whole database,
// which replaces the epoch instead of a version).
//
// The mark (marks hash, field = writer:write, value = "<deadline ms>
// <fields>") says the write is in flight; other instances re-read it after
// a gap in their subscription (marks.go). In-flight writes of a field f are
// also counted in w<f> of the version hash, with d<f> the deadline (Redis
// TIME, ms) of the latest begin, for storeScript; a count whose deadline
// passed (an instance died mid-write) is reset by the next begin. A begin
// counts only if its mark is not there yet (live), an end only if it is:
// replayed edges leave the counts alone, and an end whose begin Redis lost
// does not take a count from another write.
var writeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local begin = tonumber(ARGV[3]) > 0
local mark = redis.call('HGET', KEYS[2], ARGV[4])
local live = mark ~= false and tonumber(string.match(mark, '^%d+') or '0') > now
local count
if begin then
  count = not live
  if count then
    redis.call('HSET', KEYS[2], ARGV[4], (now + lease) .. ' ' .. ARGV[5])
    if redis.call('PTTL', KEYS[2]) < lease then redis.call('PEXPIRE', KEYS[2], lease) end
  end
else
  count = live
  redis.call('HDEL', KEYS[2], ARGV[4])
end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
for i = 6, #ARGV do
  local f = ARGV[i]
  if f == '0' then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
  else
    redis.call('HINCRBY', KEYS[1], f, 1)
  end
  if count then
    local n = tonumber(redis.call('HGET', KEYS[1], 'w' .. f) or '0')
    if begin then
      local dl = tonumber(redis.call('HGET', KEYS[1], 'd' .. f) or '0')
      if dl <= now then n = 0 end
      redis.call('HSET', KEYS[1], 'w' .. f, n + 1, 'd' .. f, now + lease)
    else
      n = n - 1
      if n < 0 then n = 0 end
      redis.call('HSET', KEYS[1], 'w' .. f, n)
    end
  end
end
return 1
`)
