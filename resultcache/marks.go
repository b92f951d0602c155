package resultcache

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Remote in-flight marks: a write through another instance holds the
// fills of what it writes here, from its begin edge to its end edge
// (pubsub.go). Edges travel by PUBLISH and are lost when Redis is down or
// this instance is not subscribed, so the pub/sub stream is not the only
// source: each write also has a mark in Redis, in the marks hash of its
// database, keyed by its identity (writer instance, write id) and carrying
// a deadline. The writer adds the mark in the script of its begin edge and
// removes it in the script of its end edge (write.go), and its breaker
// probe replays every edge Redis missed (replayWrites). Every
// (re)subscription of this instance re-reads the marks hash of each
// database it knows and replaces its remote marks with it
// (reconcileMarks); fills are held meanwhile. The subscription is up
// before the read, so an edge later than the read is received too; marks
// are keyed by write, so an edge applied twice, or an old edge applied
// after the read, converges to the same state.

// writeID identifies one write: the writer instance's id and the write's
// number on it.
type writeID struct{ sender, id uint64 }

type remoteWrite struct {
	db       string
	ids      []RelID
	deadline time.Time
}

// beginRemote holds fills of ids until the write's end or deadline. A
// write already known only gets the later deadline.
func (v *versions) beginRemote(w writeID, db string, ids []RelID, deadline time.Time) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.addRemoteLocked(w, db, ids, deadline)
	v.countLocked()
}

func (v *versions) addRemoteLocked(w writeID, db string, ids []RelID, deadline time.Time) {
	rw := v.remote[w]
	if rw == nil {
		rw = &remoteWrite{db: db, ids: append([]RelID(nil), ids...)}
		v.remote[w] = rw
	} else if !deadline.After(rw.deadline) {
		return
	}
	rw.deadline = deadline
	for _, id := range rw.ids {
		k := verKey{db, id}
		m := v.byRel[k]
		if m == nil {
			m = make(map[writeID]time.Time)
			v.byRel[k] = m
		}
		m[w] = deadline
	}
}

// endRemote releases a remote write; unknown writes are ignored.
func (v *versions) endRemote(w writeID) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.removeRemoteLocked(w)
	v.countLocked()
}

func (v *versions) removeRemoteLocked(w writeID) {
	rw := v.remote[w]
	if rw == nil {
		return
	}
	delete(v.remote, w)
	for _, id := range rw.ids {
		k := verKey{rw.db, id}
		if m := v.byRel[k]; m != nil {
			delete(m, w)
			if len(m) == 0 {
				delete(v.byRel, k)
			}
		}
	}
}

// syncRemote makes live (read from Redis) the remote writes of db.
func (v *versions) syncRemote(db string, live map[writeID]*remoteWrite) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	for w, rw := range v.remote {
		if rw.db == db && live[w] == nil {
			v.removeRemoteLocked(w)
		}
	}
	for w, rw := range live {
		v.addRemoteLocked(w, db, rw.ids, rw.deadline)
	}
	v.countLocked()
}

// expireRemote forgets remote writes past their deadline (their writer
// died or its end was lost for good).
func (v *versions) expireRemote(now time.Time) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	for w, rw := range v.remote {
		if !now.Before(rw.deadline) {
			v.removeRemoteLocked(w)
		}
	}
	v.countLocked()
}

// dbs lists the databases this instance has versions or remote marks for.
func (v *versions) dbs(into map[string]struct{}) {
	v.mu.RLock()
	for k := range v.m {
		into[k.db] = struct{}{}
	}
	v.mu.RUnlock()
	v.wmu.Lock()
	for _, rw := range v.remote {
		into[rw.db] = struct{}{}
	}
	v.wmu.Unlock()
}

func (k redisKeys) marks(db string) string { return k.tag(db) + ":w" }

func markField(w writeID) string {
	return strconv.FormatUint(w.sender, 16) + ":" + strconv.FormatUint(w.id, 16)
}

func parseMarkField(s string) (writeID, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return writeID{}, false
	}
	sender, err1 := strconv.ParseUint(a, 16, 64)
	id, err2 := strconv.ParseUint(b, 16, 64)
	return writeID{sender, id}, err1 == nil && err2 == nil
}

// parseMarkValue reads "<deadline ms> <field>,<field>...".
func parseMarkValue(s string) (int64, []RelID, bool) {
	a, b, ok := strings.Cut(s, " ")
	if !ok {
		return 0, nil, false
	}
	dl, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, nil, false
	}
	var ids []RelID
	for f := range strings.SplitSeq(b, ",") {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return 0, nil, false
		}
		ids = append(ids, RelID(id))
	}
	return dl, ids, len(ids) > 0
}

// marksScript returns Redis TIME (ms) and the live marks of one marks hash
// (field, value, ...), deleting those past their deadline. KEYS: the hash.
var marksScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {tostring(now)}
for i = 1, #all, 2 do
  local dl = tonumber(string.match(all[i + 1], '^%d+') or '0')
  if dl <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`)

var errBadMarks = errors.New("resultcache: malformed marks reply")

// reconcileMarks replaces the remote marks of every database this instance
// knows (versions, remote marks, catalogs) with the marks in Redis, in one
// pipelined round trip. Called right after each (re)subscription.
func (c *Cache) reconcileMarks(ctx context.Context) error {
	set := make(map[string]struct{})
	c.vers.dbs(set)
	c.catalogs.dbs(set)
	if len(set) == 0 {
		return nil
	}
	dbs := make([]string, 0, len(set))
	for db := range set {
		dbs = append(dbs, db)
	}
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Redis.Timeout*10, time.Second))
	defer cancel()
	start := time.Now()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(dbs))
	for i, db := range dbs {
		cmds[i] = marksScript.Eval(ctx, pipe, []string{c.keys.marks(db)})
	}
	_, err := pipe.Exec(ctx)
	metricRedisLatency.WithLabelValues("marks").Observe(time.Since(start).Seconds())
	if err != nil {
		return err
	}
	now := time.Now()
	for i, db := range dbs {
		vals, err := cmds[i].StringSlice()
		if err != nil {
			return err
		}
		if len(vals) == 0 || len(vals)%2 == 0 {
			return errBadMarks
		}
		rnow, err := strconv.ParseInt(vals[0], 10, 64)
		if err != nil {
			return errBadMarks
		}
		live := make(map[writeID]*remoteWrite)
		for j := 1; j+1 < len(vals); j += 2 {
			w, ok := parseMarkField(vals[j])
			if !ok || w.sender == c.id {
				continue // our own writes are known here better than in Redis
			}
			dl, ids, ok := parseMarkValue(vals[j+1])
			if !ok {
				continue
			}
			live[w] = &remoteWrite{ids: ids, deadline: now.Add(time.Duration(dl-rnow) * time.Millisecond)}
		}
		c.vers.syncRemote(db, live)
	}
	return nil
}
