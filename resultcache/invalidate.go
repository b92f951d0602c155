package resultcache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// InvalidateRelations is called for a write seen by Sluice (DML, COPY
// FROM, TRUNCATE, DDL on a relation), when the statement is sent and again
// when its transaction commits. Names are resolved like the session would
// (search_path, "$user" = user), but over-broadly: an unqualified name bumps
// the relation of that name in every schema of the path, plus partitions,
// inheritance children and the base relations of views. If the catalog
// can't be read or a name is unknown, the whole database is invalidated.
// It never fails the caller's statement: Redis problems are absorbed (see
// bump).
func (c *Cache) InvalidateRelations(ctx context.Context, db, searchPath, user string, rels []Relation) {
	ids, err := c.resolveWrite(ctx, db, searchPath, user, rels)
	if err != nil {
		c.InvalidateDatabase(ctx, db)
		return
	}
	c.bump(ctx, db, ids, false, "local")
}

// InvalidateIDs bumps relations given by OID (the replication follower,
// or a proxy that already has them).
func (c *Cache) InvalidateIDs(ctx context.Context, db string, ids []RelID) {
	c.bump(ctx, db, ids, false, "local")
}

// InvalidateDatabase invalidates every entry of db: for a call of a
// volatile function or procedure, DDL whose targets are unknown, or any
// write the analyzer could not attribute.
func (c *Cache) InvalidateDatabase(ctx context.Context, db string) {
	c.bump(ctx, db, nil, true, "local")
}

var errUnknownRelation = errors.New("resultcache: unknown relation")

func (c *Cache) resolveWrite(ctx context.Context, db, searchPath, user string, rels []Relation) ([]RelID, error) {
	snap, err := c.catalogs.get(ctx, db)
	if err != nil {
		return nil, err
	}
	path := effectivePath(parseSearchPath(searchPath, user), snap.schemas)
	var out []RelID
	seen := make(map[RelID]bool)
	for _, r := range rels {
		found := false
		if r.Schema != "" {
			if ri := snap.rels[qname{r.Schema, r.Name}]; ri != nil {
				snap.expandWrite(ri, seen, &out)
				found = true
			}
		} else {
			for _, schema := range path {
				if ri := snap.rels[qname{schema, r.Name}]; ri != nil {
					snap.expandWrite(ri, seen, &out)
					found = true
				}
			}
		}
		if !found {
			// A temporary table (not cached anyway) or a relation created
			// since the snapshot: be safe.
			return nil, fmt.Errorf("%w: %s.%s", errUnknownRelation, r.Schema, r.Name)
		}
	}
	return out, nil
}

// bump is the one place versions change. Locally first, so this
// instance's L1 and fills in flight see it at once; then in Redis with a
// PUBLISH, in one round trip, so that L2 and other instances see it. If
// Redis can't take it (breaker open, error, timeout), the database is
// recorded as dirty and the breaker opened: no instance-local answer is
// served until the probe has replayed it (deleted the database's version
// hash and published), so no stale L1 or L2 entry survives the outage.
func (c *Cache) bump(ctx context.Context, db string, ids []RelID, whole bool, source string) {
	if whole {
		c.vers.bump(db, dbRel)
		metricInvalidations.WithLabelValues(source).Inc()
	} else {
		if len(ids) == 0 {
			return
		}
		for _, id := range ids {
			c.vers.bump(db, id)
		}
		metricInvalidations.WithLabelValues(source).Add(float64(len(ids)))
	}
	if c.rdb == nil || c.closed.Load() {
		return
	}
	if !c.brk.closed() {
		c.markDirty(db)
		return
	}
	var msg []byte
	var fields []string
	if whole {
		msg = c.encodeMsg(msgDatabase, db, 0, nil)
	} else {
		msg = c.encodeMsg(msgRels, db, 0, ids)
		fields = make([]string, len(ids))
		for i, id := range ids {
			fields[i] = relField(id)
		}
	}
	// The write must be invalidated even if its client went away.
	ctx = context.WithoutCancel(ctx)
	if err := c.l2Bump(ctx, db, fields, whole, msg, c.invalidateTimeout()); err != nil {
		metricRedisErrors.WithLabelValues("invalidate").Inc()
		c.markDirty(db)
		if c.redisLog.ok() {
			c.log.Warn().Err(err).Str("database", db).Msg("invalidation not published, cache bypassed until redis is back")
		}
		return
	}
	c.brk.success()
}

// invalidateTimeout is longer than the lookup timeout: a failed
// invalidation opens the breaker, which costs every client its cache.
func (c *Cache) invalidateTimeout() time.Duration {
	return max(c.cfg.Redis.Timeout*4, 20*time.Millisecond)
}

// PurgeRequest selects what Purge drops. Exactly one of Relation (with
// Database), Fingerprint (Database optional) or All, or Database alone.
type PurgeRequest struct {
	Database    string
	Relation    Relation // Name "" = none; Schema "" = public
	Fingerprint uint64   // 0 = none
	All         bool
}

// Purge drops entries (admin). It returns how many L1 entries of this
// instance it removed; L2 entries are made invalid (not counted) and other
// instances drop theirs on the PUBLISH.
func (c *Cache) Purge(ctx context.Context, r PurgeRequest) (int, error) {
	switch {
	case r.All:
		n := c.l1.EstimatedSize()
		c.flushLocal()
		metricInvalidations.WithLabelValues("purge").Inc()
		if c.rdb != nil {
			err := c.l2DeleteAllVersions(ctx)
			if err == nil {
				err = c.publish(ctx, c.rdb, c.encodeMsg(msgAll, "", 0, nil)).Err()
			}
			if err != nil {
				c.markDirty("")
				return n, fmt.Errorf("purge all: redis: %w (cache bypassed until it is replayed)", err)
			}
		}
		return n, nil
	case r.Relation.Name != "":
		if r.Database == "" {
			return 0, errors.New("purge by relation needs a database")
		}
		schema := r.Relation.Schema
		if schema == "" {
			schema = "public"
		}
		ids, err := c.resolveWrite(ctx, r.Database, "", "", []Relation{{schema, r.Relation.Name}})
		if err != nil {
			return 0, err
		}
		set := make(map[RelID]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		n := c.dropL1(func(e *l1Entry) bool {
			if e.db != r.Database {
				return false
			}
			for _, rv := range e.st.rels {
				if set[rv.id] {
					return true
				}
			}
			return false
		})
		c.bump(ctx, r.Database, ids, false, "purge")
		return n, nil
	case r.Fingerprint != 0:
		n := c.dropL1(func(e *l1Entry) bool {
			return e.fp == r.Fingerprint && (r.Database == "" || e.db == r.Database)
		})
		metricInvalidations.WithLabelValues("purge").Inc()
		if c.rdb != nil {
			if err := c.l2PurgeFingerprint(ctx, r.Database, r.Fingerprint); err != nil {
				c.markDirty(r.Database)
				return n, fmt.Errorf("purge fingerprint: redis: %w (cache bypassed until it is replayed)", err)
			}
		}
		return n, nil
	case r.Database != "":
		n := c.dropL1(func(e *l1Entry) bool { return e.db == r.Database })
		c.bump(ctx, r.Database, nil, true, "purge")
		return n, nil
	}
	return 0, errors.New("purge: nothing selected")
}

// dropL1 removes matching L1 entries and counts them.
func (c *Cache) dropL1(match func(*l1Entry) bool) int {
	var keys []Key
	for k, e := range c.l1.All() {
		if match(e) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		c.l1.Invalidate(k)
	}
	return len(keys)
}
