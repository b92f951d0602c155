package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestPgxQueries compares what pgx gets through Sluice with what it gets
// directly, for each way pgx runs a query.
func TestPgxQueries(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		queries := []struct {
			sql  string
			args []any
		}{
			{"SELECT n, n * 2.5 AS f, 'x' || n AS s, NULL::int AS z, n % 2 = 0 AS even FROM generate_series(1, 200) n WHERE n > $1", []any{5}},
			{"SELECT $1::text, $2::int8, $3::bool, $4::bytea, $5::date", []any{"it's", int64(1 << 40), true, []byte{0, 1, 2}, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)}},
			{"SELECT array_agg(n), jsonb_build_object('k', $1::text) FROM generate_series(1, 3) n", []any{"v"}},
			{"SELECT datname FROM pg_database WHERE datname = $1", []any{itDB}},
			{"SELECT 1 WHERE false", nil},
		}
		modes := map[string]pgx.QueryExecMode{
			"cache-statement": pgx.QueryExecModeCacheStatement,
			"cache-describe":  pgx.QueryExecModeCacheDescribe,
			"describe-exec":   pgx.QueryExecModeDescribeExec,
			"exec":            pgx.QueryExecModeExec,
			"simple":          pgx.QueryExecModeSimpleProtocol,
		}
		for name, qm := range modes {
			t.Run(name, func(t *testing.T) {
				set := func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = qm }
				via := connect(t, s.DSN(pg.User, pg.Password, itDB), set)
				direct := connect(t, superDSN(t, itDB), set)
				for round := 0; round < 3; round++ { // again, with statements cached
					for _, q := range queries {
						sameRows(t, q.sql, rows(t, direct, q.sql, q.args...), rows(t, via, q.sql, q.args...))
					}
				}
				// An error leaves the connection usable, as directly.
				_, err := via.Exec(ctxT(t, 10*time.Second), "SELECT 1/$1::int", 0)
				wantPgErr(t, err, "22012", "division by zero")
				if got := scalar[int](t, via, "SELECT 41 + $1::int", 1); got != 42 {
					t.Fatalf("after an error: %d", got)
				}
			})
		}
	})
}

func TestPgxBatch(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
			t.Run(qm.String(), func(t *testing.T) {
				c := connect(t, s.DSN(pg.User, pg.Password, itDB), func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = qm })
				table := uniq("batch")
				mustExec(t, c, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text)", table))
				t.Cleanup(func() { dropTable(t, table) })
				b := &pgx.Batch{}
				for i := 1; i <= 50; i++ {
					b.Queue(fmt.Sprintf("INSERT INTO %s VALUES ($1, $2)", table), i, fmt.Sprint("v", i))
				}
				b.Queue(fmt.Sprintf("SELECT count(*), sum(id) FROM %s", table))
				b.Queue(fmt.Sprintf("UPDATE %s SET v = v || '!' WHERE id <= $1", table), 10)
				b.Queue(fmt.Sprintf("SELECT v FROM %s WHERE id = $1", table), 3)
				br := c.SendBatch(ctxT(t, 30*time.Second), b)
				for i := 1; i <= 50; i++ {
					if _, err := br.Exec(); err != nil {
						t.Fatalf("insert %d: %v", i, err)
					}
				}
				var n, sum int
				if err := br.QueryRow().Scan(&n, &sum); err != nil || n != 50 || sum != 1275 {
					t.Fatalf("count %d sum %d: %v", n, sum, err)
				}
				tag, err := br.Exec()
				if err != nil || tag.RowsAffected() != 10 {
					t.Fatalf("update: %v %v", tag, err)
				}
				var v string
				if err := br.QueryRow().Scan(&v); err != nil || v != "v3!" {
					t.Fatalf("select: %q %v", v, err)
				}
				if err := br.Close(); err != nil {
					t.Fatal(err)
				}
				// A failing statement in the middle: later ones are skipped
				// as PostgreSQL does, and the connection stays usable.
				b = &pgx.Batch{}
				b.Queue("SELECT 1")
				b.Queue(fmt.Sprintf("INSERT INTO %s VALUES (1, 'dup')", table))
				b.Queue("SELECT 3")
				br = c.SendBatch(ctxT(t, 30*time.Second), b)
				if _, err := br.Exec(); err != nil {
					t.Fatal(err)
				}
				_, err = br.Exec()
				wantPgErr(t, err, "23505", "")
				br.Close()
				if got := scalar[int](t, c, fmt.Sprintf("SELECT count(*) FROM %s", table)); got != 50 {
					t.Fatalf("after the failed batch: %d rows", got)
				}
			})
		}
	})
}

func TestPgxCopy(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		c := connect(t, s.DSN(pg.User, pg.Password, itDB))
		direct := connect(t, superDSN(t, itDB))
		table := uniq("copy")
		mustExec(t, c, fmt.Sprintf("CREATE TABLE %s (id int, name text, data bytea)", table))
		t.Cleanup(func() { dropTable(t, table) })

		const n = 20000 // several CopyData messages and more than a buffer
		src := make([][]any, n)
		for i := range src {
			src[i] = []any{i, fmt.Sprintf("name %d with \t tab, \"quote\" and \\ backslash", i), bytes.Repeat([]byte{byte(i)}, i%50)}
		}
		count, err := c.CopyFrom(ctxT(t, 60*time.Second), pgx.Identifier{table}, []string{"id", "name", "data"}, pgx.CopyFromRows(src))
		if err != nil || count != n {
			t.Fatalf("CopyFrom: %d rows, %v", count, err)
		}
		if got := scalar[int64](t, direct, fmt.Sprintf("SELECT count(*) FROM %s", table)); got != n {
			t.Fatalf("%d rows arrived, want %d", got, n)
		}
		if got := scalar[string](t, direct, fmt.Sprintf("SELECT name FROM %s WHERE id = 7", table)); got != src[7][1] {
			t.Fatalf("row 7 name %q", got)
		}

		sql := fmt.Sprintf("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT", table)
		var via, dir bytes.Buffer
		tag, err := c.PgConn().CopyTo(ctxT(t, 60*time.Second), &via, sql)
		if err != nil || tag.RowsAffected() != n {
			t.Fatalf("CopyTo through Sluice: %v %v", tag, err)
		}
		if _, err := direct.PgConn().CopyTo(ctxT(t, 60*time.Second), &dir, sql); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(via.Bytes(), dir.Bytes()) {
			t.Fatalf("COPY TO output differs: %d bytes through Sluice, %d direct", via.Len(), dir.Len())
		}

		// A COPY FROM that fails on the server reports the error and the
		// connection carries on.
		bad := [][]any{{1, "ok", []byte{}}, {"not a number", "x", []byte{}}}
		_, err = c.CopyFrom(ctxT(t, 30*time.Second), pgx.Identifier{table}, []string{"id", "name", "data"}, pgx.CopyFromRows(bad))
		if err == nil {
			t.Fatal("bad COPY accepted")
		}
		if got := scalar[int64](t, c, fmt.Sprintf("SELECT count(*) FROM %s", table)); got != n {
			t.Fatalf("after the failed COPY: %d rows", got)
		}
	})
}

func TestListenNotify(t *testing.T) {
	pg := testenv.PG(t)
	s := startSluice(t, baseConf(t, "session").YAML(t))
	c := connect(t, s.DSN(pg.User, pg.Password, itDB))
	direct := connect(t, superDSN(t, itDB))
	ch := uniq("chan")
	mustExec(t, c, "LISTEN "+ch)
	for i := 0; i < 3; i++ {
		payload := fmt.Sprintf("payload %d", i)
		mustExec(t, direct, "SELECT pg_notify($1, $2)", ch, payload)
		n, err := c.WaitForNotification(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		if n.Channel != ch || n.Payload != payload {
			t.Fatalf("got %s %q", n.Channel, n.Payload)
		}
	}
	// A notification arriving while the client is idle is delivered with
	// the next reply at the latest, as PostgreSQL does.
	mustExec(t, direct, "SELECT pg_notify($1, 'idle')", ch)
	time.Sleep(200 * time.Millisecond)
	n, err := c.WaitForNotification(ctxT(t, 5*time.Second))
	if err != nil || n.Payload != "idle" {
		t.Fatalf("idle notification: %v %v", n, err)
	}
}

// TestCancel: a context timeout makes pgx send a CancelRequest with the
// key Sluice gave it; the statement ends with 57014 quickly and the
// connection keeps working.
func TestCancel(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		c := connect(t, s.DSN(pg.User, pg.Password, itDB), cancelOnContext)
		for i := 0; i < 2; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			start := time.Now()
			_, err := c.Exec(ctx, "SELECT pg_sleep(10)")
			cancel()
			elapsed := time.Since(start)
			if pe := pgErr(err); pe == nil || pe.Code != "57014" {
				t.Fatalf("attempt %d: got %v after %s, want SQLSTATE 57014", i, err, elapsed)
			}
			if elapsed > 3*time.Second {
				t.Fatalf("cancel took %s", elapsed)
			}
			if c.IsClosed() {
				t.Fatal("connection closed by the cancel")
			}
			if got := scalar[int](t, c, "SELECT 7"); got != 7 {
				t.Fatalf("after cancel: %d", got)
			}
		}
		// A CancelRequest with a wrong key does nothing.
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(context.Background(), "SELECT pg_sleep(1)")
			done <- err
		}()
		time.Sleep(200 * time.Millisecond)
		if err := rawCancel(s.Addr(), c.PgConn().PID(), []byte{0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("a cancel with a wrong key cancelled: %v", err)
		}
	})
}

// dropTable drops a test table directly.
func dropTable(t testing.TB, table string) {
	c, err := pgx.Connect(context.Background(), superDSN(t, itDB))
	if err != nil {
		return
	}
	defer c.Close(context.Background())
	c.Exec(context.Background(), "DROP TABLE IF EXISTS "+quoteIdent(table))
}

// cancelOnContext makes pgx answer a done context with a CancelRequest
// (rather than its default of breaking the connection with a deadline).
func cancelOnContext(c *pgx.ConnConfig) {
	c.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
	}
}
