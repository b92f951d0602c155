package cache_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// writeCase is one kind of write made through Sluice after the read was
// cached.
type writeCase struct {
	name  string
	setup []string // direct, after the common table t (id, v)
	table string   // replaces the common table definition
	write func(t *testing.T, c *pgx.Conn)
}

func execAll(sqls ...string) func(t *testing.T, c *pgx.Conn) {
	return func(t *testing.T, c *pgx.Conn) {
		t.Helper()
		for _, q := range sqls {
			if _, err := c.Exec(context.Background(), q); err != nil {
				t.Fatalf("write %q: %v", q, err)
			}
		}
	}
}

var writeCases = []writeCase{
	{name: "insert", write: execAll("INSERT INTO t VALUES (100, 100)")},
	{name: "update", write: execAll("UPDATE t SET v = v + 1 WHERE id = 1")},
	{name: "delete", write: execAll("DELETE FROM t WHERE id = 2")},
	{name: "insert_select", write: execAll("INSERT INTO t SELECT id + 1000, v FROM src")},
	{name: "update_from", write: execAll("UPDATE t SET v = src.v FROM src WHERE t.id = src.id")},
	{name: "merge", write: execAll(`MERGE INTO t USING src ON t.id = src.id
		WHEN MATCHED THEN UPDATE SET v = src.v + 5 WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.v)`)},
	{name: "copy_from", write: func(t *testing.T, c *pgx.Conn) {
		t.Helper()
		_, err := c.PgConn().CopyFrom(context.Background(), strings.NewReader("200\t2\n201\t3\n"), "COPY t FROM STDIN")
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
	}},
	{name: "truncate", write: execAll("TRUNCATE t")},
	{name: "ddl_add_column", write: execAll("ALTER TABLE t ADD COLUMN extra int DEFAULT 7")},
	{name: "explicit_transaction", write: func(t *testing.T, c *pgx.Conn) {
		t.Helper()
		ctx := context.Background()
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "UPDATE t SET v = -1 WHERE id = 3"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (300, 300)"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "via_view", setup: []string{"CREATE VIEW tv AS SELECT id, v FROM t"},
		write: execAll("UPDATE tv SET v = 0 WHERE id = 1", "INSERT INTO tv VALUES (400, 4)")},
	{name: "partition_read_through_parent",
		table: `CREATE TABLE t (id int, v int) PARTITION BY RANGE (id);
			CREATE TABLE t_p1 PARTITION OF t FOR VALUES FROM (MINVALUE) TO (1000);
			CREATE TABLE t_p2 PARTITION OF t FOR VALUES FROM (1000) TO (MAXVALUE)`,
		write: execAll("UPDATE t_p1 SET v = 99 WHERE id = 1", "INSERT INTO t_p2 VALUES (5000, 5)")},
	{name: "call_procedure",
		setup: []string{`CREATE PROCEDURE bump() LANGUAGE plpgsql AS $$ BEGIN UPDATE t SET v = v + 10; END $$`},
		write: execAll("CALL bump()")},
	{name: "select_volatile_function",
		setup: []string{`CREATE FUNCTION bumpf() RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE t SET v = v + 10; RETURN 1; END $$`},
		write: execAll("SELECT bumpf()")},
	{name: "select_volatile_function_extended",
		setup: []string{`CREATE FUNCTION bumpf(n int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE t SET v = v + n; RETURN 1; END $$`},
		write: func(t *testing.T, c *pgx.Conn) {
			t.Helper()
			var one int
			if err := c.QueryRow(context.Background(), "SELECT bumpf($1)", 10).Scan(&one); err != nil {
				t.Fatalf("SELECT bumpf($1): %v", err)
			}
		}},
}

// topology is where writes and reads go.
type topology struct {
	name   string
	pool   string
	shared bool // two instances sharing Redis: write through A, read through B
}

var topologies = []topology{
	{"session_single", "session", false},
	{"transaction_single", "transaction", false},
	{"transaction_two_instances_redis", "transaction", true},
	{"session_two_instances_redis", "session", true},
}

// TestReadYourWrites: after a read is cached (proven by a hit), every kind
// of write through Sluice makes the next read return the new data, on the
// simple and extended protocols, in both pool modes, and across two
// instances sharing one Redis (the write through A, the read through B).
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	for _, topo := range topologies {
		for _, wc := range writeCases {
			t.Run(topo.name+"/"+wc.name, func(t *testing.T) {
				t.Parallel()
				runWriteCase(t, topo, wc)
			})
		}
	}
}

func runWriteCase(t *testing.T, topo topology, wc writeCase) {
	s := newSetup(t)
	table := wc.table
	if table == "" {
		table = "CREATE TABLE t (id int PRIMARY KEY, v int)"
	}
	s.exec(append([]string{table,
		"INSERT INTO t SELECT g, g FROM generate_series(1, 20) g",
		"CREATE TABLE src (id int, v int)", "INSERT INTO src VALUES (1, 111), (50, 50)"}, wc.setup...)...)
	redis := ""
	if topo.shared {
		redis = testenv.RedisAddr(t)
	}
	cfg := s.cacheYAML("rules", redis) + ruleYAML("t")
	a := s.start(topo.pool, cfg)
	b := a
	if topo.shared {
		b = s.start(topo.pool, cfg)
	}
	const q = "SELECT * FROM t ORDER BY id"
	readers := []*pgx.Conn{
		s.viaSluice(b, execMode(pgx.QueryExecModeSimpleProtocol)),
		s.viaSluice(b, execMode(pgx.QueryExecModeExec)),
	}
	// Exec mode: a prepared SELECT * would fail after ALTER TABLE.
	direct := connect(t, s.pg.DSN(s.db), execMode(pgx.QueryExecModeExec))
	before := queryText(t, direct, q)
	p := s.proof(t, b)
	for _, r := range readers {
		queryText(t, r, q)
		if got := queryText(t, r, q); got != before {
			t.Fatalf("cached read differs from direct:\n%s\nvs\n%s", got, before)
		}
	}
	p.expect("warm-up", int64(len(readers)))

	writer := s.viaSluice(a)
	wc.write(t, writer)

	after := queryText(t, direct, q)
	if after == before {
		t.Fatalf("the write changed nothing; the case proves nothing")
	}
	for i, r := range readers {
		if got := queryText(t, r, q); got != after {
			t.Fatalf("reader %d after %s through %s: stale result\n got: %s\nwant: %s", i, wc.name, topo.name, got, after)
		}
	}
}
