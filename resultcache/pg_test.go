package resultcache

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

const testSchema = `
create table items(id int primary key, v text);
create view v_items as select id, v from items;
create view v_v as select * from v_items;
create view v_now as select id, now() as t from items;
create view v_ts as select id, current_timestamp as t from items;
create view v_agg as select count(*), max(v) from items where id > 0;
create view v_user as select id from items where v = current_user;
create table parted(id int, k int) partition by range(k);
create table parted_1 partition of parted for values from (0) to (10);
create table parted_2 partition of parted for values from (10) to (20);
create sequence seq1;
create function imm(int) returns int language sql immutable as 'select $1 + 1';
create function vol(int) returns int language sql volatile as 'select $1 + 1';
create schema app;
create table app.items(id int);
create table rls_t(id int, tenant text);
alter table rls_t enable row level security;
create policy p on rls_t using (tenant = current_setting('app.tenant'));
create table rls_ok(id int, owner name);
alter table rls_ok enable row level security;
create policy p on rls_ok using (owner = current_user);
create unlogged table ul(id int);
`

// testDB creates a fresh database with testSchema and drops it at the end.
func testDB(t testing.TB) (string, *pgconn.PgConn) {
	t.Helper()
	pg := testenv.PG(t)
	admin, err := pgconn.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("sluice_rc_%x", randUint64())
	if _, err := admin.Exec(ctx, "create database "+name).ReadAll(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.Connect(ctx, pg.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close(context.Background())
		admin.Exec(context.Background(), "drop database if exists "+name+" with (force)").ReadAll()
		admin.Close(context.Background())
	})
	run(t, conn, testSchema)
	return name, conn
}

func run(t testing.TB, conn *pgconn.PgConn, sql string) []*pgconn.Result {
	t.Helper()
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res
}

func oids(t *testing.T, conn *pgconn.PgConn, names ...string) []RelID {
	t.Helper()
	var out []RelID
	for _, n := range names {
		res := run(t, conn, "select '"+n+"'::regclass::oid")
		v, _ := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32)
		out = append(out, RelID(v))
	}
	slices.Sort(out)
	return out
}

func sel(reads []Relation, fns ...string) Query {
	return Query{Database: "", User: "postgres", SearchPath: `"$user", public`, Reads: reads, Functions: fns,
		ReadOnly: true, Single: true, Kind: "select"}
}

func TestCheckAgainstCatalog(t *testing.T) {
	db, conn := testDB(t)
	c := newTestCache(t, nil, pgDeps(t))
	rel := func(s, n string) []Relation { return []Relation{{s, n}} }
	tests := []struct {
		name   string
		q      Query
		reason string
		rels   []string // expected relations (regclass text)
	}{
		{"table", sel(rel("", "items")), "", []string{"items"}},
		{"qualified", sel(rel("public", "items")), "", []string{"items"}},
		{"search_path picks app", func() Query { q := sel(rel("", "items")); q.SearchPath = "app, public"; return q }(), "", []string{"app.items"}},
		{"$user schema", func() Query { q := sel(rel("", "items")); q.User = "app"; return q }(), "", []string{"app.items"}},
		{"view over table", sel(rel("", "v_items")), "", []string{"v_items", "items"}},
		{"view over view", sel(rel("", "v_v")), "", []string{"v_v", "v_items", "items"}},
		{"view calling now()", sel(rel("", "v_now")), ReasonVolatileFunction, nil},
		{"view with current_timestamp", sel(rel("", "v_ts")), ReasonVolatileFunction, nil},
		{"view with aggregates and operators", sel(rel("", "v_agg")), "", []string{"v_agg", "items"}},
		{"view with current_user", sel(rel("", "v_user")), "", []string{"v_user", "items"}},
		{"partitioned parent", sel(rel("", "parted")), "", []string{"parted", "parted_1", "parted_2"}},
		{"one partition", sel(rel("", "parted_1")), "", []string{"parted_1"}},
		{"sequence read", sel(rel("", "seq1")), ReasonSequence, nil},
		{"nextval", sel(nil, "nextval"), ReasonVolatileFunction, nil},
		{"now()", sel(rel("", "items"), "now"), ReasonVolatileFunction, nil},
		{"random()", sel(nil, "random"), ReasonVolatileFunction, nil},
		{"pg_catalog.now", sel(nil, "pg_catalog.now"), ReasonVolatileFunction, nil},
		{"immutable builtin", sel(rel("", "items"), "lower", "abs"), "", []string{"items"}},
		{"immutable user function", sel(nil, "imm"), "", nil},
		{"qualified immutable", sel(nil, "public.imm"), "", nil},
		{"volatile user function", sel(nil, "vol"), ReasonVolatileFunction, nil},
		{"unknown function", sel(nil, "no_such_fn"), ReasonUnknownFunction, nil},
		{"unknown relation", sel(rel("", "nope")), ReasonUnknownRelation, nil},
		{"system catalog", sel(rel("", "pg_class")), ReasonSystemCatalog, nil},
		{"information_schema view", sel(rel("information_schema", "tables")), ReasonSystemCatalog, nil},
		{"rls policy on current_setting", sel(rel("", "rls_t")), ReasonVolatilePolicy, nil},
		{"rls policy on current_user", sel(rel("", "rls_ok")), "", []string{"rls_ok"}},
		{"temp by schema", sel(rel("pg_temp", "x")), ReasonTempRelation, nil},
		{"unqualified with temp objects", func() Query { q := sel(rel("", "items")); q.TempObjects = true; return q }(), ReasonTempRelation, nil},
		{"qualified with temp objects", func() Query { q := sel(rel("public", "items")); q.TempObjects = true; return q }(), "", []string{"items"}},
		{"in transaction", func() Query { q := sel(rel("", "items")); q.InTransaction = true; return q }(), ReasonInTransaction, nil},
		{"locking", func() Query { q := sel(rel("", "items")); q.Locking = true; return q }(), ReasonLocking, nil},
		{"locking, not read-only as the analyzer says", func() Query {
			q := sel(rel("", "items"))
			q.Locking, q.ReadOnly = true, false
			return q
		}(), ReasonLocking, nil},
		{"insert with a locking select", func() Query {
			q := sel(rel("", "items"))
			q.Kind, q.Locking, q.ReadOnly = "insert", true, false
			return q
		}(), ReasonNotSelect, nil},
		{"multi statement", func() Query { q := sel(rel("", "items")); q.Single = false; return q }(), ReasonMultiStatement, nil},
		{"insert", func() Query { q := sel(rel("", "items")); q.Kind = "insert"; q.ReadOnly = false; return q }(), ReasonNotSelect, nil},
		{"values", func() Query { q := sel(nil); q.Kind = "VALUES"; return q }(), "", nil},
		{"unlogged without replication", sel(rel("", "ul")), "", []string{"ul"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Database = db
			ok, reason, rels := c.Check(ctx, tt.q)
			if reason != tt.reason || ok != (tt.reason == "") {
				t.Fatalf("Check = %v %q, want reason %q", ok, reason, tt.reason)
			}
			if tt.reason == "" {
				if want := oids(t, conn, tt.rels...); !slices.Equal(rels, want) {
					t.Fatalf("rels = %v, want %v (%v)", rels, want, tt.rels)
				}
			}
		})
	}

	// A temporary table of another session is refused when named.
	run(t, conn, "create temp table tt(id int)")
	q := sel(rel("", "tt"))
	q.Database, q.TempObjects = db, true
	if _, reason, _ := c.Check(ctx, q); reason != ReasonTempRelation {
		t.Fatalf("temp table: %q", reason)
	}
}

func TestCatalogChangedAndWriteExpansion(t *testing.T) {
	db, conn := testDB(t)
	c := newTestCache(t, nil, pgDeps(t))
	q := sel([]Relation{{"", "later"}})
	q.Database = db
	if _, reason, _ := c.Check(ctx, q); reason != ReasonUnknownRelation {
		t.Fatalf("before create: %q", reason)
	}
	run(t, conn, "create table later(id int)")
	c.CatalogChanged(db)
	if ok, reason, _ := c.Check(ctx, q); !ok {
		t.Fatalf("after CatalogChanged: %q", reason)
	}

	// Writes: to a partitioned parent invalidate entries on a partition; to a
	// base table, entries on views over it; unknown names the database.
	check := func(name string) *Request {
		q := sel([]Relation{{"", name}})
		q.Database = db
		ok, reason, rels := c.Check(ctx, q)
		if !ok {
			t.Fatalf("%s: %s", name, reason)
		}
		r := &Request{Key: MakeKey(&KeyInput{Database: db, SQL: name}), Database: db, Rels: rels}
		if res := c.Lookup(ctx, r); res.Fill != nil {
			res.Fill.Store([]byte(name), time.Minute)
		}
		if !isHit(c, r) {
			t.Fatalf("%s: no hit after fill", name)
		}
		return r
	}
	p1, vv, parent, later := check("parted_1"), check("v_v"), check("parted"), check("later")
	c.InvalidateRelations(ctx, db, `"$user", public`, "postgres", []Relation{{"", "parted"}})
	if isHit(c, p1) || isHit(c, parent) {
		t.Fatal("write to partitioned parent left partition or parent entries")
	}
	if !isHit(c, vv) {
		t.Fatal("write to parted invalidated an unrelated view")
	}
	p1 = check("parted_1")
	parent = check("parted")
	c.InvalidateRelations(ctx, db, "public", "postgres", []Relation{{"public", "parted_2"}})
	if isHit(c, parent) {
		t.Fatal("write to a partition left the parent's entry")
	}
	if !isHit(c, p1) {
		t.Fatal("write to parted_2 invalidated parted_1")
	}
	c.InvalidateRelations(ctx, db, "public", "postgres", []Relation{{"", "items"}})
	if isHit(c, vv) {
		t.Fatal("write to items left the view-over-view entry")
	}
	if !isHit(c, later) {
		t.Fatal("write to items invalidated an unrelated table")
	}
	c.InvalidateRelations(ctx, db, "public", "postgres", []Relation{{"", "unknown_thing"}})
	if isHit(c, later) {
		t.Fatal("unknown write target must invalidate the database")
	}
}

// With logical replication, a write made directly on PostgreSQL
// invalidates within 1 s of its commit.
func TestLogicalReplicationInvalidates(t *testing.T) {
	db, conn := testDB(t)
	c := newTestCache(t, func(c *Config) {
		c.Invalidation.LogicalReplication = true
		c.Invalidation.Publication = "sluice_test_pub"
	}, pgDeps(t))
	q := sel([]Relation{{"", "items"}})
	q.Database = db
	waitFor(t, "replication ready", func() bool { return c.ReplicationReady(db) })
	ok, reason, rels := c.Check(ctx, q)
	if !ok {
		t.Fatal(reason)
	}
	uq := sel([]Relation{{"", "ul"}})
	uq.Database = db
	if _, reason, _ := c.Check(ctx, uq); reason != ReasonUnloggedRelation {
		t.Fatalf("unlogged table with replication: %q", reason)
	}
	r := &Request{Key: MakeKey(&KeyInput{Database: db, SQL: "items"}), Database: db, Rels: rels}
	for i := range 3 {
		res := c.Lookup(ctx, r)
		if res.Fill == nil {
			t.Fatalf("round %d: want miss, got %+v", i, res)
		}
		res.Fill.Store([]byte("rows"), time.Minute)
		if !isHit(c, r) {
			t.Fatal("no hit after fill")
		}
		run(t, conn, fmt.Sprintf("insert into items values (%d, 'direct')", i))
		committed := time.Now()
		for isHit(c, r) {
			if time.Since(committed) > time.Second {
				t.Fatalf("round %d: direct insert not invalidated within 1s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("round %d: invalidated %v after commit", i, time.Since(committed))
	}
	// TRUNCATE of a partition reaches the parent's entries too.
	pq := sel([]Relation{{"", "parted"}})
	pq.Database = db
	_, _, prels := c.Check(ctx, pq)
	pr := &Request{Key: MakeKey(&KeyInput{Database: db, SQL: "parted"}), Database: db, Rels: prels}
	c.Lookup(ctx, pr).Fill.Store([]byte("p"), time.Minute)
	run(t, conn, "insert into parted values (1, 15)")
	waitFor(t, "partition insert to invalidate the parent", func() bool { return !isHit(c, pr) })
}

// A follower that loses its connection stops caching for its database,
// reconnects, and invalidates the database before resuming, since writes
// made during the gap were not decoded.
func TestLogicalReplicationReconnects(t *testing.T) {
	db, conn := testDB(t)
	c := newTestCache(t, func(c *Config) {
		c.Invalidation.LogicalReplication = true
		c.Invalidation.Publication = "sluice_test_pub"
	}, pgDeps(t))
	q := sel([]Relation{{"", "items"}})
	q.Database = db
	waitFor(t, "replication ready", func() bool { return c.ReplicationReady(db) })
	_, _, rels := c.Check(ctx, q)
	r := &Request{Key: MakeKey(&KeyInput{Database: db, SQL: "items"}), Database: db, Rels: rels}
	c.Lookup(ctx, r).Fill.Store([]byte("before"), time.Minute)
	if !isHit(c, r) {
		t.Fatal("no hit")
	}
	run(t, conn, "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'walsender' and datname = '"+db+"'")
	waitFor(t, "follower to notice", func() bool { return !c.ReplicationReady(db) })
	if ok, reason, _ := c.Check(ctx, q); ok || reason != ReasonReplicationWait {
		t.Fatalf("Check while the follower is down: %v %q", ok, reason)
	}
	waitFor(t, "follower to come back", func() bool { return c.ReplicationReady(db) })
	if isHit(c, r) {
		t.Fatal("entry from before the gap served after the follower came back")
	}
}
