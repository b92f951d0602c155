package resultcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// catalogs holds one catalog snapshot (and one small connection) per
// database, loaded lazily on the first Check for it.
type catalogs struct {
	c  *Cache
	mu sync.Mutex
	m  map[string]*dbCatalog
}

type dbCatalog struct {
	db   string
	mu   sync.Mutex // serializes the connection and reloads
	conn *pgconn.PgConn
	snap atomic.Pointer[catalogSnap]
	gen  atomic.Uint64 // bumped by CatalogChanged; a snapshot is current only at its gen
}

type qname struct{ schema, name string }

// catalogSnap is an immutable copy of what Check needs from one
// database's catalogs.
type catalogSnap struct {
	gen     uint64
	loaded  time.Time
	rels    map[qname]*relInfo
	byOID   map[RelID]*relInfo
	funcs   map[qname]bool // true: every overload is IMMUTABLE
	schemas map[string]bool
}

type relInfo struct {
	oid         RelID
	schema      string
	name        string
	kind        byte // pg_class.relkind
	persistence byte // pg_class.relpersistence
	children    []RelID
	refs        []RelID // a view's relations (pg_rewrite -> pg_depend)
	// volatile: a view whose query calls a non-IMMUTABLE function or
	// operator; policyVolatile: a table whose RLS policies do (such as
	// current_setting('app.tenant'): its rows depend on state outside the
	// key).
	volatile       bool
	policyVolatile bool
}

func newCatalogs(c *Cache) *catalogs { return &catalogs{c: c, m: make(map[string]*dbCatalog)} }

func (cs *catalogs) forDB(db string) *dbCatalog {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d := cs.m[db]
	if d == nil {
		d = &dbCatalog{db: db}
		cs.m[db] = d
	}
	return d
}

// changed marks db's snapshot stale: the next Check reloads it first.
func (cs *catalogs) changed(db string) { cs.forDB(db).gen.Add(1) }

// get returns a current snapshot, loading it if missing or stale.
func (cs *catalogs) get(ctx context.Context, db string) (*catalogSnap, error) {
	d := cs.forDB(db)
	if s := d.snap.Load(); s != nil && s.gen == d.gen.Load() {
		return s, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.snap.Load(); s != nil && s.gen == d.gen.Load() {
		return s, nil
	}
	return d.reload(ctx, cs.c)
}

// refreshAll reloads every known database (timer), keeping the old
// snapshot on failure.
func (cs *catalogs) refreshAll(ctx context.Context) {
	cs.mu.Lock()
	dbs := make([]*dbCatalog, 0, len(cs.m))
	for _, d := range cs.m {
		dbs = append(dbs, d)
	}
	cs.mu.Unlock()
	for _, d := range dbs {
		d.mu.Lock()
		if _, err := d.reload(ctx, cs.c); err != nil {
			cs.c.log.Warn().Err(err).Str("database", d.db).Msg("catalog refresh failed")
		}
		d.mu.Unlock()
	}
}

// dbs adds every database with a catalog entry to into.
func (cs *catalogs) dbs(into map[string]struct{}) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for db := range cs.m {
		into[db] = struct{}{}
	}
}

func (cs *catalogs) close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, d := range cs.m {
		d.mu.Lock()
		if d.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = d.conn.Close(ctx)
			cancel()
			d.conn = nil
		}
		d.mu.Unlock()
	}
}

const catalogTimeout = 10 * time.Second

// catalogSQL is read in one round trip. Volatility rules: only IMMUTABLE
// (provolatile 'i') functions make a statement cacheable. Views (pg_rewrite)
// and RLS policies (pg_policy) are checked by reading their stored node
// trees for the functions, operators, aggregates and window functions they
// call: pg_depend does not list built-in (pinned) functions such as now()
// or current_setting(). SQL-value functions (SQLValueFunctionOp in
// primnodes.h) are non-immutable except CURRENT_ROLE, CURRENT_USER, USER
// (the role is in the key), CURRENT_CATALOG and CURRENT_SCHEMA (database
// and search_path are in the key); SESSION_USER is not in the key.
const catalogSQL = `
select c.oid, n.nspname, c.relname, c.relkind, c.relpersistence
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r','p','v','m','f','S');
select inhrelid, inhparent from pg_inherits;
select distinct r.ev_class, d.refobjid
  from pg_rewrite r
  join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
                  and d.refclassid = 'pg_class'::regclass
 where d.refobjid <> r.ev_class;
with trees as (
  select ev_class as rel, 'v' as kind, ev_action::text as tree from pg_rewrite
  union all
  select polrelid, 'p', coalesce(polqual::text, '') || coalesce(polwithcheck::text, '') from pg_policy
), calls as (
  select t.rel, t.kind, m[1] as field, m[2]::oid as id
    from trees t, regexp_matches(t.tree, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) (\d+)', 'g') m
)
select distinct c.rel, c.kind from calls c
  join pg_proc p on p.oid = case when c.field = 'opno'
                                 then (select o.oprcode from pg_operator o where o.oid = c.id)
                                 else c.id end
 where p.provolatile <> 'i'
union
select distinct t.rel, t.kind
  from trees t, regexp_matches(t.tree, '\{SQLVALUEFUNCTION :op (\d+)', 'g') m
 where m[1]::int not in (9, 10, 11, 13, 14);
select n.nspname, p.proname, bool_and(p.provolatile = 'i')
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace group by 1, 2;
select nspname from pg_namespace;
`

// reload reads the catalogs; d.mu is held.
func (d *dbCatalog) reload(ctx context.Context, c *Cache) (*catalogSnap, error) {
	if c.deps.Dial == nil {
		return nil, errors.New("resultcache: Deps.Dial is not set")
	}
	gen := d.gen.Load()
	ctx, cancel := context.WithTimeout(ctx, catalogTimeout)
	defer cancel()
	if d.conn == nil || d.conn.IsClosed() {
		conn, err := c.deps.Dial(ctx, d.db)
		if err != nil {
			return nil, fmt.Errorf("catalog connection to %q: %w", d.db, err)
		}
		d.conn = conn
	}
	res, err := d.conn.Exec(ctx, catalogSQL).ReadAll()
	if err == nil && len(res) != 6 {
		err = fmt.Errorf("catalog query returned %d results", len(res))
	}
	if err != nil {
		_ = d.conn.Close(context.Background())
		d.conn = nil
		return nil, fmt.Errorf("catalog of %q: %w", d.db, err)
	}
	s := &catalogSnap{gen: gen, loaded: time.Now(), rels: make(map[qname]*relInfo),
		byOID: make(map[RelID]*relInfo), funcs: make(map[qname]bool), schemas: make(map[string]bool)}
	for _, r := range res[0].Rows {
		ri := &relInfo{oid: parseOID(r[0]), schema: string(r[1]), name: string(r[2]), kind: first(r[3]), persistence: first(r[4])}
		s.rels[qname{ri.schema, ri.name}] = ri
		s.byOID[ri.oid] = ri
	}
	for _, r := range res[1].Rows {
		if p := s.byOID[parseOID(r[1])]; p != nil {
			p.children = append(p.children, parseOID(r[0]))
		}
	}
	for _, r := range res[2].Rows {
		if v := s.byOID[parseOID(r[0])]; v != nil {
			v.refs = append(v.refs, parseOID(r[1]))
		}
	}
	for _, r := range res[3].Rows {
		if ri := s.byOID[parseOID(r[0])]; ri != nil {
			if first(r[1]) == 'v' {
				ri.volatile = true
			} else {
				ri.policyVolatile = true
			}
		}
	}
	for _, r := range res[4].Rows {
		s.funcs[qname{string(r[0]), string(r[1])}] = first(r[2]) == 't'
	}
	for _, r := range res[5].Rows {
		s.schemas[string(r[0])] = true
	}
	d.snap.Store(s)
	return s, nil
}

func parseOID(b []byte) RelID {
	v, _ := strconv.ParseUint(string(b), 10, 32)
	return RelID(v)
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
