package proxy_test

// Transaction pooling under real drivers: many pgx clients with their
// default statement cache on a small pool, a client that vanishes inside a
// transaction, and a cancelled query.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestPgxStatementCacheManyClients runs 20 pgx clients, each with its own
// connection and pgx's default QueryExecModeCacheStatement (named
// statements prepared once per connection and reused), on a transaction
// pool of 2 servers for a bounded time. Every query uses a prepared
// statement; every result is checked; there must be no error at all.
func TestPgxStatementCacheManyClients(t *testing.T) {
	t.Parallel()
	const clients = 20
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	admin := connect(t, directDSN(h.pg, db))
	mustExec(t, admin, "CREATE TABLE events (client int, n int, payload text, amount numeric, at timestamptz, PRIMARY KEY (client, n))")

	// Connect everyone first, so a slow machine shortens no client's run.
	conns := make([]*pgx.Conn, clients)
	for id := range conns {
		conns[id] = connect(t, h.dsn(db))
		if m := conns[id].Config().DefaultQueryExecMode; m != pgx.QueryExecModeCacheStatement {
			t.Fatalf("exec mode %v, want pgx's default statement cache", m)
		}
	}
	deadline := time.Now().Add(testDuration(3 * time.Second))
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	counts := make([]int, clients)
	for id, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n == 0 || time.Now().Before(deadline); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := pgxMix(ctx, c, id, n)
				cancel()
				if err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						dumpProxyGoroutines(t)
						logServers(t, admin, db)
					}
					errs <- fmt.Errorf("client %d op %d: %w", id, n, err)
					return
				}
				counts[id]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for id, n := range counts {
		if n < 1 {
			t.Errorf("client %d ran no operation", id)
		}
		total += n
	}
	var rows int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations by %d clients on 2 servers, %d rows written", total, clients, rows)
	if rows == 0 {
		t.Fatal("no rows written")
	}
}

// testDuration is d, or SLUICE_TEST_SOAK (a duration) when set, to run
// the load tests longer by hand.
func testDuration(d time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv("SLUICE_TEST_SOAK")); err == nil && v > 0 {
		return v
	}
	return d
}

// logServers logs what PostgreSQL's backends for db are doing, for a test
// that found a client hanging.
func logServers(t *testing.T, admin *pgx.Conn, db string) {
	rows, err := admin.Query(context.Background(), "SELECT pid, state, wait_event, backend_xid, left(query, 200) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)
	if err != nil {
		t.Logf("pg_stat_activity: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		vals, _ := rows.Values()
		t.Logf("server: %v", vals)
	}
}

// pgxMix runs one operation of the mix, chosen by n, and checks its result.
func pgxMix(ctx context.Context, c *pgx.Conn, id, n int) error {
	switch n % 5 {
	case 0: // parameters of several types, values back
		var i int64
		var s string
		var f float64
		var b bool
		var ts time.Time
		var raw []byte
		var num pgtype.Numeric
		at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(n) * time.Second)
		err := c.QueryRow(ctx, "SELECT $1::bigint + 1, $2::text || '!', $3::float8 * 2, NOT $4::bool, $5::timestamptz, $6::bytea, $7::numeric * 10",
			int64(id*1_000_000+n), fmt.Sprint("c", id), 1.25, n%2 == 0, at, []byte{byte(id), byte(n)}, "1.5").
			Scan(&i, &s, &f, &b, &ts, &raw, &num)
		if err != nil {
			return err
		}
		v, _ := num.Int64Value()
		if i != int64(id*1_000_000+n+1) || s != fmt.Sprint("c", id, "!") || f != 2.5 || b != (n%2 != 0) ||
			!ts.Equal(at) || len(raw) != 2 || raw[0] != byte(id) || raw[1] != byte(n) || !v.Valid || v.Int64 != 15 {
			return fmt.Errorf("types: got %d %q %v %v %v %v %v", i, s, f, b, ts, raw, v)
		}
	case 1: // insert, then select it back
		payload := fmt.Sprintf("p-%d-%d", id, n)
		if _, err := c.Exec(ctx, "INSERT INTO events (client, n, payload, amount, at) VALUES ($1, $2, $3, $4, now())", id, n, payload, n*3); err != nil {
			return err
		}
		var got string
		var amount int
		if err := c.QueryRow(ctx, "SELECT payload, amount::int FROM events WHERE client = $1 AND n = $2", id, n).Scan(&got, &amount); err != nil {
			return err
		}
		if got != payload || amount != n*3 {
			return fmt.Errorf("insert/select: got %q %d", got, amount)
		}
	case 2: // several rows
		rows, err := c.Query(ctx, "SELECT g, g * $1::int, repeat('x', g) FROM generate_series(1, $2::int) g", id, n%7+1)
		if err != nil {
			return err
		}
		k := 0
		for rows.Next() {
			var g, m int
			var x string
			if err := rows.Scan(&g, &m, &x); err != nil {
				rows.Close()
				return err
			}
			k++
			if g != k || m != k*id || x != strings.Repeat("x", k) {
				rows.Close()
				return fmt.Errorf("rows: row %d got %d %d %q", k, g, m, x)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if k != n%7+1 {
			return fmt.Errorf("rows: %d rows, want %d", k, n%7+1)
		}
	case 3: // a transaction: insert and count inside it
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO events (client, n, payload) VALUES ($1, $2, $3)", id, n, "tx"); err != nil {
			return err
		}
		var mine int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM events WHERE client = $1 AND n = $2 AND payload = $3", id, n, "tx").Scan(&mine); err != nil {
			return err
		}
		if mine != 1 {
			return fmt.Errorf("tx: %d rows", mine)
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	case 4: // arrays, NULLs and numeric precision
		var arr []int32
		var null *string
		var third string
		if err := c.QueryRow(ctx, "SELECT ARRAY[$1::int, $2::int], NULLIF($3::text, $3::text), ($4::numeric / 3)::text",
			id, n, "z", "10").Scan(&arr, &null, &third); err != nil {
			return err
		}
		if len(arr) != 2 || arr[0] != int32(id) || arr[1] != int32(n) || null != nil || third != "3.3333333333333333" {
			return fmt.Errorf("arrays: %v %v %v", arr, null, third)
		}
	}
	return nil
}

// TestDisconnectInsideTransaction drops clients in the middle of a
// transaction (idle, and with a query running) in transaction mode; the
// server side must end up with no open transaction and no locks, and the
// pool must keep serving.
func TestDisconnectInsideTransaction(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	admin := connect(t, directDSN(h.pg, db))
	mustExec(t, admin, "CREATE TABLE locked (id int PRIMARY KEY)")
	mustExec(t, admin, "INSERT INTO locked VALUES (1)")
	for _, running := range []bool{false, true} {
		name := "idle in transaction"
		if running {
			name = "query running"
		}
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, h.dsn(db))
			c.query("BEGIN")
			c.query("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
			pid := c.value("SELECT pg_backend_pid()")
			if running {
				c.send(msgQuery("SELECT pg_sleep(60)"))
				c.wait()
				waitFor(t, "the sleep to start", func() bool {
					var n int
					admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND wait_event = 'PgSleep'", pid).Scan(&n)
					return n == 1
				})
			}
			c.conn.Close()
			waitFor(t, "locks and the transaction to go", func() bool {
				var locks, inTx int
				admin.QueryRow(context.Background(),
					"SELECT count(*) FROM pg_locks WHERE relation = 'locked'::regclass").Scan(&locks)
				admin.QueryRow(context.Background(),
					"SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND (xact_start IS NOT NULL OR state <> 'idle')", pid).Scan(&inTx)
				return locks == 0 && inTx == 0
			})
			// The table is free and the pool still works.
			other := dialRaw(t, h.dsn(db))
			other.query("BEGIN")
			got := other.query("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE NOWAIT")
			sameTranscript(t, "lock after disconnect", []string{"CommandComplete LOCK TABLE", "ReadyForQuery T"}, got)
			other.query("COMMIT")
		})
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestCancelInTransactionMode lets a pgx context time out during
// pg_sleep: pgx sends a CancelRequest to Sluice, which forwards it to the
// server running that client's query and only that one. The client gets
// 57014 and its connection keeps working; a client sleeping on the other
// server finishes normally.
func TestCancelInTransactionMode(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	cfg, err := pgx.ParseConfig(h.dsn(db))
	if err != nil {
		t.Fatal(err)
	}
	// Cancel with a CancelRequest rather than pgx's default of closing the
	// socket, as libpq and JDBC do.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	bystander := connect(t, h.dsn(db))
	// Open both servers now, so no server is being dialled while the
	// cancel is on its way.
	warm := holder{dialRaw(t, h.dsn(db))}
	warm.hold()
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	warm.release()
	done := make(chan error, 1)
	go func() {
		var v int
		err := bystander.QueryRow(ctx, "SELECT 7 FROM pg_sleep(2)").Scan(&v)
		if err == nil && v != 7 {
			err = fmt.Errorf("got %d", v)
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	for round := range 2 {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		_, err = c.Exec(qctx, "SELECT pg_sleep(20)")
		cancel()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("round %d: want 57014 query_canceled, got %v", round, err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Fatalf("round %d: cancel took %v", round, d)
		}
		var v int
		if err := c.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&v); err != nil || v != 42 {
			t.Fatalf("round %d: connection after cancel: %v %d", round, err, v)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the other client's query was disturbed: %v", err)
	}
}

// TestCancelWhileWaitingForServer cancels a query whose client is still
// queued for a server (pool of one, held by another client's transaction).
// Directly against PostgreSQL that query would be running and be
// cancelled; through Sluice it must not run in full once a server frees up.
func TestCancelWhileWaitingForServer(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	cfg, err := pgx.ParseConfig(h.dsn(db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 20 * time.Second}
	}
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	hold := holder{dialRaw(t, h.dsn(db))}
	hold.hold()
	go func() {
		time.Sleep(1500 * time.Millisecond)
		hold.c.send(msgQuery("COMMIT"))
	}()
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Exec(qctx, "SELECT pg_sleep(6)")
	d := time.Since(start)
	hold.c.untilReady(1)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("want 57014 query_canceled, got %v after %v", err, d)
	}
	var v int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil || v != 1 {
		t.Fatalf("connection after cancel: %v", err)
	}
}
