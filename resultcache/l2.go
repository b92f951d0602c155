package resultcache

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout, per database d (h = hex FNV-64 of the name, in a hash tag so
// that a database's keys share one Cluster slot and one script can read the
// versions and write the entry atomically):
//
//	<prefix>:{d<h>}:v        HASH epoch -> random id, <oid> -> version,
//	                          f<fp> -> purge version of a fingerprint
//	<prefix>:{d<h>}:e:<key>  STRING the encoded entry, with a PX TTL
//	<prefix>:inv             the invalidation channel
//
// A new epoch (or deleting the hash) invalidates every entry of the
// database, which also covers a Redis that evicted or lost the hash:
// versions never silently go back to values an old entry recorded.

func newRedisClient(cfg RedisConfig) redis.UniversalClient {
	o := &redis.UniversalOptions{
		Addrs:                 cfg.Addrs,
		MasterName:            cfg.MasterName,
		Username:              cfg.Username,
		Password:              cfg.Password,
		DB:                    cfg.DB,
		PoolSize:              cfg.PoolSize,
		ContextTimeoutEnabled: true,
		DialTimeout:           max(cfg.Timeout*20, 100*time.Millisecond),
		MaxRetries:            1,
		ClientName:            "sluice-resultcache",
	}
	switch cfg.RedisMode() {
	case "sentinel":
		return redis.NewFailoverClient(o.Failover())
	case "cluster":
		return redis.NewClusterClient(o.Cluster())
	default:
		return redis.NewClient(o.Simple())
	}
}

type redisKeys struct{ prefix string }

func (k redisKeys) tag(db string) string {
	h := fnv.New64a()
	h.Write([]byte(db))
	return k.prefix + ":{d" + strconv.FormatUint(h.Sum64(), 16) + "}"
}

func (k redisKeys) versions(db string) string { return k.tag(db) + ":v" }

func (k redisKeys) entry(db string, key Key) string { return k.tag(db) + ":e:" + key.String() }

func (k redisKeys) channel() string { return k.prefix + ":inv" }

func relField(id RelID) string { return strconv.FormatUint(uint64(id), 10) }

// l2Lookup reads the versions and the entry in one pipelined round trip.
// It returns the current Redis stamp (for the fill ticket) and the entry if
// it is valid under it.
func (c *Cache) l2Lookup(ctx context.Context, req *Request) (*rstamp, *l2Value, error) {
	fields := make([]string, 0, len(req.Rels)+2)
	fields = append(fields, "epoch", fpField(req.Fingerprint))
	for _, id := range req.Rels {
		fields = append(fields, relField(id))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Redis.Timeout)
	defer cancel()
	start := time.Now()
	pipe := c.rdb.Pipeline()
	hm := pipe.HMGet(ctx, c.keys.versions(req.Database), fields...)
	get := pipe.Get(ctx, c.keys.entry(req.Database, req.Key))
	_, err := pipe.Exec(ctx)
	metricRedisLatency.WithLabelValues("lookup").Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	vals := hm.Val()
	if len(vals) != len(fields) {
		return nil, nil, errors.New("resultcache: short HMGET reply")
	}
	rs := &rstamp{epoch: strOr(vals[0], ""), fpVer: strOr(vals[1], "0"), vers: make([]string, len(req.Rels))}
	for i := range req.Rels {
		rs.vers[i] = strOr(vals[2+i], "0")
	}
	raw, err := get.Bytes()
	if err != nil {
		return rs, nil, nil // redis.Nil: no entry
	}
	v, err := decodeL2(raw)
	if err != nil || !v.matches(rs, req.Rels) {
		return rs, nil, nil
	}
	return rs, v, nil
}

func strOr(v any, def string) string {
	if s, ok := v.(string); ok {
		return s
	}
	return def
}

// storeScript writes an entry only if the version hash still holds what the
// lookup read (fill race) and no write to its relations (or to the whole
// database) is in flight on any instance, creating the epoch if the hash
// did not exist. fields[1] is the fingerprint's, the rest relations'.
// KEYS: hash, entry. ARGV: expected epoch ("" none), new epoch, value, ttl
// ms, n, n fields, n expected values.
var storeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'epoch')
if cur == false then
  if ARGV[1] ~= '' or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
elseif cur ~= ARGV[1] then
  return 0
end
local n = tonumber(ARGV[5])
for i = 1, n do
  local v = redis.call('HGET', KEYS[1], ARGV[5+i])
  if v == false then v = '0' end
  if v ~= ARGV[5+n+i] then return 0 end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function writing(f)
  local w = tonumber(redis.call('HGET', KEYS[1], 'w' .. f) or '0')
  return w > 0 and tonumber(redis.call('HGET', KEYS[1], 'd' .. f) or '0') > now
end
if writing('0') then return 0 end
for i = 2, n do
  if writing(ARGV[5+i]) then return 0 end
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
`)

// bumpScript increments versions, making sure the hash has an epoch first.
// KEYS: hash. ARGV: new epoch, fields...
var bumpScript = redis.NewScript(`
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
return 1
`)

// l2Fill is one background L2 write.
type l2Fill struct {
	db      string
	key     Key
	fp      uint64
	rels    []RelID
	rs      *rstamp
	payload []byte
	created time.Time
	ttl     time.Duration
}

// l2Store runs one fill; it reports whether the entry was written.
func (c *Cache) l2Store(ctx context.Context, f *l2Fill) (bool, error) {
	rs := *f.rs
	newEpoch := strconv.FormatUint(randUint64(), 10)
	if rs.epoch == "" {
		rs.epoch = newEpoch
	}
	value := encodeL2(&rs, f.rels, f.created, f.ttl, f.payload, c.cfg.CompressThreshold)
	fields := append(make([]string, 0, len(f.rels)+1), fpField(f.fp))
	for _, id := range f.rels {
		fields = append(fields, relField(id))
	}
	args := make([]any, 0, 5+2*len(fields))
	args = append(args, f.rs.epoch, newEpoch, value, f.ttl.Milliseconds(), len(fields))
	for _, fl := range fields {
		args = append(args, fl)
	}
	args = append(args, f.rs.fpVer)
	for _, v := range f.rs.vers {
		args = append(args, v)
	}
	ctx, cancel := context.WithTimeout(ctx, c.storeTimeout())
	defer cancel()
	start := time.Now()
	n, err := storeScript.Run(ctx, c.rdb, []string{c.keys.versions(f.db), c.keys.entry(f.db, f.key)}, args...).Int()
	metricRedisLatency.WithLabelValues("store").Observe(time.Since(start).Seconds())
	return n == 1, err
}

func (c *Cache) storeTimeout() time.Duration {
	return max(c.cfg.Redis.Timeout*10, 50*time.Millisecond)
}

// l2Bump increments versions of rels (or replaces the epoch when whole is
// set) and publishes msg, in one round trip.
func (c *Cache) l2Bump(ctx context.Context, db string, fields []string, whole bool, msg []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	pipe := c.rdb.Pipeline()
	if whole {
		// A new epoch rather than DEL: in-flight marks of concurrent
		// writes must survive.
		pipe.HSet(ctx, c.keys.versions(db), "epoch", strconv.FormatUint(randUint64(), 10))
	} else if len(fields) > 0 {
		args := make([]any, 0, len(fields)+1)
		args = append(args, strconv.FormatUint(randUint64(), 10))
		for _, f := range fields {
			args = append(args, f)
		}
		bumpScript.Eval(ctx, pipe, []string{c.keys.versions(db)}, args...)
	}
	c.publish(ctx, pipe, msg)
	_, err := pipe.Exec(ctx)
	metricRedisLatency.WithLabelValues("invalidate").Observe(time.Since(start).Seconds())
	return err
}

// l2DeleteAllVersions deletes every version hash under the prefix (SCAN on
// every master), which invalidates every L2 entry. Admin and recovery only.
func (c *Cache) l2DeleteAllVersions(ctx context.Context) error {
	pattern := c.keys.prefix + ":{d*}:v"
	del := func(ctx context.Context, cl *redis.Client) error {
		it := cl.Scan(ctx, 0, pattern, 500).Iterator()
		for it.Next(ctx) {
			if err := cl.Del(ctx, it.Val()).Err(); err != nil {
				return err
			}
		}
		return it.Err()
	}
	switch cl := c.rdb.(type) {
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, del)
	case *redis.Client:
		return del(ctx, cl)
	default:
		return errors.New("resultcache: unsupported redis client type")
	}
}

// l2PurgeFingerprint bumps the fingerprint's purge version in db's hash,
// or in every database's hash when db is "", and publishes it.
func (c *Cache) l2PurgeFingerprint(ctx context.Context, db string, fp uint64) error {
	msg := c.encodeMsg(msgFingerprint, db, fp, nil)
	if db != "" {
		return c.l2Bump(ctx, db, []string{fpField(fp)}, false, msg, time.Second)
	}
	pattern := c.keys.prefix + ":{d*}:v"
	bump := func(ctx context.Context, cl *redis.Client) error {
		it := cl.Scan(ctx, 0, pattern, 500).Iterator()
		for it.Next(ctx) {
			if err := cl.HIncrBy(ctx, it.Val(), fpField(fp), 1).Err(); err != nil {
				return err
			}
		}
		return it.Err()
	}
	var err error
	switch cl := c.rdb.(type) {
	case *redis.ClusterClient:
		err = cl.ForEachMaster(ctx, bump)
	case *redis.Client:
		err = bump(ctx, cl)
	default:
		err = errors.New("resultcache: unsupported redis client type")
	}
	if err != nil {
		return err
	}
	return c.publish(ctx, c.rdb, msg).Err()
}
