package resultcache

import (
	"sync"
	"sync/atomic"
	"time"
)

// RelID is a relation's OID in its database (pg_class.oid).
type RelID uint32

// dbRel is the id of a database's whole-database version: every entry of
// the database records it, so bumping it invalidates them all.
const dbRel RelID = 0

// relVer is one recorded version.
type relVer struct {
	id  RelID
	ver uint64
}

type verKey struct {
	db string
	id RelID
}

// versions is this instance's table of relation versions. Entries in L1 are
// valid only while every version they recorded is unchanged; a write seen
// here, a PUBLISH from another instance or the replication follower bumps
// them. global is bumped when this instance may have missed invalidations
// (pubsub gap, breaker recovery): it invalidates every L1 entry and every
// fill in flight at once.
type versions struct {
	global atomic.Uint64
	mu     sync.RWMutex
	m      map[verKey]*atomic.Uint64

	wmu    sync.Mutex
	writes map[verKey]*inflight // this instance's writes
	// remote holds other instances' writes by identity, byRel indexes
	// them per relation (see marks.go).
	remote map[writeID]*remoteWrite
	byRel  map[verKey]map[writeID]time.Time
	// nwrites is len(writes) + len(byRel), for the lock-free common case.
	nwrites atomic.Int64
	// unsure is set while the remote marks are being re-read from Redis
	// after a (re)subscription: until then any of them may be missing, so
	// every fill is held.
	unsure atomic.Bool
}

func newVersions() *versions {
	return &versions{m: make(map[verKey]*atomic.Uint64), writes: make(map[verKey]*inflight),
		remote: make(map[writeID]*remoteWrite), byRel: make(map[verKey]map[writeID]time.Time)}
}

func (v *versions) get(db string, id RelID) uint64 {
	v.mu.RLock()
	p := v.m[verKey{db, id}]
	v.mu.RUnlock()
	if p == nil {
		return 0
	}
	return p.Load()
}

func (v *versions) bump(db string, id RelID) {
	k := verKey{db, id}
	v.mu.RLock()
	p := v.m[k]
	v.mu.RUnlock()
	if p == nil {
		v.mu.Lock()
		if p = v.m[k]; p == nil {
			p = new(atomic.Uint64)
			v.m[k] = p
		}
		v.mu.Unlock()
	}
	p.Add(1)
}

// stamp is the versions captured for one lookup, before its query is sent.
type stamp struct {
	global uint64
	rels   []relVer // dbRel first, then the relations in order
}

func (v *versions) stamp(db string, rels []RelID) stamp {
	s := stamp{global: v.global.Load(), rels: make([]relVer, 0, len(rels)+1)}
	v.mu.RLock()
	s.rels = append(s.rels, relVer{dbRel, load(v.m[verKey{db, dbRel}])})
	for _, id := range rels {
		s.rels = append(s.rels, relVer{id, load(v.m[verKey{db, id}])})
	}
	v.mu.RUnlock()
	return s
}

// valid reports whether a stamp taken earlier still holds.
func (v *versions) valid(db string, s *stamp) bool {
	if v.global.Load() != s.global {
		return false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, r := range s.rels {
		if load(v.m[verKey{db, r.id}]) != r.ver {
			return false
		}
	}
	return true
}

func load(p *atomic.Uint64) uint64 {
	if p == nil {
		return 0
	}
	return p.Load()
}

// sameRels reports whether a stamp covers exactly rels (in order, after
// dbRel): an entry filled under another catalog (a partition attached, a
// table recreated with a new OID) is not the answer of today's query.
func (s *stamp) sameRels(rels []RelID) bool {
	if len(s.rels) != len(rels)+1 {
		return false
	}
	for i, id := range rels {
		if s.rels[i+1].id != id {
			return false
		}
	}
	return true
}

// inflight counts the writes of this instance that were sent but not yet
// committed or rolled back, per relation. While a relation has one (or a
// remote write of another instance holds it, see marks.go), no fill
// depending on it is stored: between the commit in PostgreSQL and the bump
// that follows it, a result read before the commit would still look valid.
// deadline bounds a write whose end is never reported.
type inflight struct {
	n        int
	deadline time.Time
}

func (v *versions) beginWrite(db string, ids []RelID, lease time.Duration) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	dl := time.Now().Add(lease)
	for _, id := range ids {
		k := verKey{db, id}
		w := v.writes[k]
		if w == nil {
			w = &inflight{}
			v.writes[k] = w
		}
		w.n++
		w.deadline = dl
	}
	v.countLocked()
}

func (v *versions) endWrite(db string, ids []RelID) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	for _, id := range ids {
		k := verKey{db, id}
		if w := v.writes[k]; w != nil {
			if w.n--; w.n <= 0 {
				delete(v.writes, k)
			}
		}
	}
	v.countLocked()
}

func (v *versions) countLocked() { v.nwrites.Store(int64(len(v.writes) + len(v.byRel))) }

// writing reports whether a write to db (whole) or to one of ids is in
// flight on this instance or, as far as it knows, on another one.
func (v *versions) writing(db string, ids []RelID) bool {
	if v.unsure.Load() {
		return true
	}
	if v.nwrites.Load() == 0 {
		return false
	}
	now := time.Now()
	v.wmu.Lock()
	defer v.wmu.Unlock()
	live := func(id RelID) bool {
		k := verKey{db, id}
		if w := v.writes[k]; w != nil && now.Before(w.deadline) {
			return true
		}
		for _, dl := range v.byRel[k] {
			if now.Before(dl) {
				return true
			}
		}
		return false
	}
	if live(dbRel) {
		return true
	}
	for _, id := range ids {
		if live(id) {
			return true
		}
	}
	return false
}
