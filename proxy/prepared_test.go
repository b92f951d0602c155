package proxy_test

// Named prepared statements through Sluice behave as on one PostgreSQL
// backend even when, in transaction mode, every transaction may land on a
// different server: each script runs once directly and once through Sluice
// and the transcripts must be equal message for message.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-proxy/sluice/proxy"
)

// holder is a second client that can keep one server of a pool of two
// busy in an open transaction, so the next transaction of the client under
// test has to run on the other server.
type holder struct{ c *rawConn }

func (h holder) hold()    { h.c.query("BEGIN"); h.c.query("SELECT 1") }
func (h holder) release() { h.c.query("COMMIT") }

// TestJDBCStyleFlow prepares S_1 once, executes it in several transactions
// (half of them with the other server held, so S_1 must be prepared again on
// a server that has never seen it), closes it, reuses the name for other
// SQL, and checks the errors PostgreSQL gives for a duplicate Parse (batch
// skipped to Sync) and a Bind of an unknown statement.
func TestJDBCStyleFlow(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) (transcript []string, pids map[string]bool) {
		a, b := dialRaw(t, dsn), dialRaw(t, dsn)
		h := holder{b}
		pids = map[string]bool{}
		var tr []string
		add := func(what string, msgs []string) {
			tr = append(tr, "-- "+what)
			tr = append(tr, msgs...)
		}
		add("prepare and run", a.roundTrip(msgParse("S_1", "SELECT $1::int * 2 AS doubled"), msgBind("S_1", "21"), msgExecute(), msgSync()))
		for i := range 6 {
			if i%2 == 0 {
				h.hold()
			}
			if i == 3 {
				// JDBC's autocommit: no BEGIN at all.
				add("autocommit", a.roundTrip(msgBind("S_1", fmt.Sprint(i)), msgExecute(), msgSync()))
			} else {
				add("begin", a.query("BEGIN"))
				pids[a.value("SELECT pg_backend_pid()")] = true
				add("in tx", a.roundTrip(msgBind("S_1", fmt.Sprint(i)), msgExecute(), msgSync()))
				add("in tx again", a.roundTrip(msgBind("S_1", fmt.Sprint(i*10)), msgExecute(), msgSync()))
				add("commit", a.query("COMMIT"))
			}
			if i%2 == 0 {
				h.release()
			}
		}
		add("close", a.roundTrip(msgCloseStmt("S_1"), msgSync()))
		add("bind closed", a.roundTrip(msgBind("S_1", "1"), msgExecute(), msgSync()))
		add("close again", a.roundTrip(msgCloseStmt("S_1"), msgSync()))
		add("reuse name", a.roundTrip(msgParse("S_1", "SELECT $1::text || '!' AS shout"), msgBind("S_1", "hi"), msgExecute(), msgSync()))
		h.hold()
		add("reused elsewhere", a.roundTrip(msgBind("S_1", "there"), msgExecute(), msgSync()))
		h.release()
		add("duplicate parse", a.roundTrip(msgParse("S_1", "SELECT 1"), msgBind("S_1", "x"), msgExecute(), msgParse("S_2", "SELECT 2"), msgSync()))
		add("skipped parse left nothing", a.roundTrip(msgBind("S_2"), msgExecute(), msgSync()))
		add("begin", a.query("BEGIN"))
		add("duplicate parse in tx", a.roundTrip(msgParse("S_1", "SELECT 1"), msgSync()))
		add("tx failed", a.query("SELECT 1"))
		add("rollback", a.query("ROLLBACK"))
		add("original kept", a.roundTrip(msgBind("S_1", "still"), msgExecute(), msgSync()))
		add("unknown statement", a.roundTrip(msgBind("nope", "1"), msgExecute(), msgSync()))
		add("describe unknown", a.roundTrip(msgDescribeStmt("nope"), msgSync()))
		return tr, pids
	}
	h := startSluice(t, "transaction", 2)
	direct, _ := run(t, directDSN(h.pg, db))
	for _, m := range direct {
		if strings.HasPrefix(m, "ErrorResponse") {
			t.Logf("direct: %s", m)
		}
	}
	for _, mode := range poolModes {
		t.Run(mode, func(t *testing.T) {
			h := startSluice(t, mode, 2)
			got, pids := run(t, h.dsn(db))
			sameTranscript(t, "JDBC flow", direct, got)
			if mode == "transaction" && len(pids) < 2 {
				t.Fatalf("the transactions ran on %d server(s); the test needs 2 to move S_1 between servers", len(pids))
			}
		})
	}
}

// TestDescribeInLaterTransaction describes a statement prepared in an
// earlier transaction, from a server that has not seen it.
func TestDescribeInLaterTransaction(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) []string {
		a, b := dialRaw(t, dsn), dialRaw(t, dsn)
		h := holder{b}
		var tr []string
		tr = append(tr, a.roundTrip(msgParse("S_d", "SELECT $1::int AS a, $2::text AS b, now()::timestamptz AS c"), msgSync())...)
		for i := range 4 {
			if i%2 == 0 {
				h.hold()
			}
			tr = append(tr, a.query("BEGIN")...)
			tr = append(tr, a.roundTrip(msgDescribeStmt("S_d"), msgSync())...)
			tr = append(tr, a.roundTrip(msgBind("S_d", "7", "seven"), msgDescribePortal(), msgSync())...)
			tr = append(tr, a.query("COMMIT")...)
			tr = append(tr, a.roundTrip(msgDescribeStmt("S_d"), msgSync())...)
			if i%2 == 0 {
				h.release()
			}
		}
		return tr
	}
	h := startSluice(t, "transaction", 2)
	direct := run(t, directDSN(h.pg, db))
	if !contains(direct, "ParameterDescription [23 25]") || !contains(direct, "RowDescription [a:23:0 b:25:0 c:1184:0]") {
		t.Fatalf("unexpected direct transcript: %q", direct)
	}
	sameTranscript(t, "describe", direct, run(t, h.dsn(db)))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestStatementNamesArePerClient has two clients share one server and one
// statement name for different SQL; each only ever runs its own.
func TestStatementNamesArePerClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	a, b := dialRaw(t, h.dsn(db)), dialRaw(t, h.dsn(db))
	want := func(c *rawConn, arg, out string) {
		t.Helper()
		got := c.roundTrip(msgBind("S", arg), msgExecute(), msgSync())
		exp := []string{"BindComplete", "DataRow [" + out + "]", "CommandComplete SELECT 1", "ReadyForQuery I"}
		sameTranscript(t, "bind S", exp, got)
	}
	for _, r := range []struct {
		c   *rawConn
		sql string
	}{{a, "SELECT 'a-' || $1::text"}, {b, "SELECT 'b-' || $1::text"}} {
		got := r.c.roundTrip(msgParse("S", r.sql), msgSync())
		sameTranscript(t, "parse S", []string{"ParseComplete", "ReadyForQuery I"}, got)
	}
	for i := range 5 {
		want(a, fmt.Sprint(i), fmt.Sprintf("a-%d", i))
		want(b, fmt.Sprint(i), fmt.Sprintf("b-%d", i))
	}
	// Closing one client's S leaves the other's.
	a.roundTrip(msgCloseStmt("S"), msgSync())
	want(b, "x", "b-x")
	if got := a.roundTrip(msgBind("S", "x"), msgExecute(), msgSync()); !strings.HasPrefix(got[0], "ErrorResponse ERROR 26000") {
		t.Fatalf("bind of a closed statement: %q", got)
	}
}

// TestSameSQLPreparedOncePerServer has many clients prepare the same SQL
// under different names on a pool of two servers; each server holds it
// once (pg_prepared_statements, seen through Sluice, shows the statements
// of the server that ran the query).
func TestSameSQLPreparedOncePerServer(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	tag := uniqueName("shared")
	sql := "SELECT $1::int + 1 AS " + tag
	hold := holder{dialRaw(t, h.dsn(db))}
	clients := make([]*rawConn, 8)
	for i := range clients {
		clients[i] = dialRaw(t, h.dsn(db))
	}
	for i, c := range clients {
		if i%2 == 0 {
			hold.hold()
		}
		name := fmt.Sprintf("mine_%d", i)
		got := c.roundTrip(msgParse(name, sql), msgBind(name, fmt.Sprint(i)), msgExecute(), msgSync())
		sameTranscript(t, "prepare", []string{"ParseComplete", "BindComplete", fmt.Sprintf("DataRow [%d]", i+1), "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
		if i%2 == 0 {
			hold.release()
		}
	}
	// Each client runs its statement again on whichever server it gets.
	for i, c := range clients {
		name := fmt.Sprintf("mine_%d", i)
		got := c.roundTrip(msgBind(name, "100"), msgExecute(), msgSync())
		sameTranscript(t, "rerun", []string{"BindComplete", "DataRow [101]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
	}
	seen := map[string]string{}
	probe := clients[0]
	for i := range 4 {
		if i%2 == 0 {
			hold.hold()
		}
		row := probe.value("SELECT pg_backend_pid() || ' ' || count(*) || ' ' || coalesce(string_agg(name, ','), '') FROM pg_prepared_statements WHERE statement = " + quote(sql))
		f := strings.SplitN(row, " ", 3)
		seen[f[0]] = row
		if f[1] != "1" {
			t.Errorf("server %s holds the shared SQL %s times (want once): %s", f[0], f[1], row)
		}
		if strings.Contains(row, "mine_") {
			t.Errorf("server-side name is a client's name: %s", row)
		}
		if i%2 == 0 {
			hold.release()
		}
	}
	if len(seen) != 2 {
		t.Fatalf("probed %d servers, want 2: %v", len(seen), seen)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestMaxPreparedStatements prepares ten statements with room for three
// per server and uses them all again, one by one and in one pipeline.
func TestMaxPreparedStatements(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	limit := func(c *proxy.Config) { c.Pool.MaxPreparedStatements = 3 }
	run := func(t *testing.T, dsn string) []string {
		c := dialRaw(t, dsn)
		var tr []string
		for i := range 10 {
			n := fmt.Sprintf("q%d", i)
			tr = append(tr, c.roundTrip(msgParse(n, fmt.Sprintf("SELECT $1::int + %d AS r%d", i*1000, i)), msgBind(n, fmt.Sprint(i)), msgExecute(), msgSync())...)
		}
		for i := range 10 {
			n := fmt.Sprintf("q%d", (i*7)%10)
			tr = append(tr, c.roundTrip(msgBind(n, "1"), msgExecute(), msgSync())...)
		}
		var batch []pgproto3.FrontendMessage
		for i := 9; i >= 0; i-- {
			batch = append(batch, msgBind(fmt.Sprintf("q%d", i), "2"), msgExecute())
		}
		tr = append(tr, c.roundTrip(append(batch, msgSync())...)...)
		return tr
	}
	h := startSluice(t, "transaction", 1, limit)
	direct := run(t, directDSN(h.pg, db))
	sameTranscript(t, "ten statements, room for three", direct, run(t, h.dsn(db)))

	probe := dialRaw(t, h.dsn(db))
	if n, _ := strconv.Atoi(probe.value("SELECT count(*) FROM pg_prepared_statements")); n > 3 || n == 0 {
		t.Fatalf("server holds %d prepared statements with max_prepared_statements 3", n)
	}
}

// TestResetAllIsPerClient checks that DISCARD ALL and DEALLOCATE ALL drop
// only the statements of the client that ran them, on a shared server.
func TestResetAllIsPerClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	for _, reset := range []string{"DISCARD ALL", "DEALLOCATE ALL", "deallocate prepare all"} {
		t.Run(reset, func(t *testing.T) {
			t.Parallel()
			run := func(t *testing.T, dsn string) (ta, tb []string) {
				a, b := dialRaw(t, dsn), dialRaw(t, dsn)
				for _, c := range []*rawConn{a, b} {
					c.roundTrip(msgParse("S", "SELECT $1::int + 100"), msgParse("T", "SELECT $1::text || 't'"), msgSync())
				}
				ta = append(ta, a.query(reset)...)
				ta = append(ta, a.roundTrip(msgBind("S", "1"), msgExecute(), msgSync())...)
				ta = append(ta, a.roundTrip(msgBind("T", "1"), msgExecute(), msgSync())...)
				tb = append(tb, b.roundTrip(msgBind("S", "2"), msgExecute(), msgSync())...)
				tb = append(tb, b.roundTrip(msgBind("T", "2"), msgExecute(), msgSync())...)
				ta = append(ta, a.roundTrip(msgParse("S", "SELECT $1::int + 200"), msgBind("S", "1"), msgExecute(), msgSync())...)
				tb = append(tb, b.roundTrip(msgBind("S", "3"), msgExecute(), msgSync())...)
				return ta, tb
			}
			h := startSluice(t, "transaction", 1)
			da, dbb := run(t, directDSN(h.pg, db))
			ga, gb := run(t, h.dsn(db))
			sameTranscript(t, "client that reset", da, ga)
			sameTranscript(t, "other client", dbb, gb)
		})
	}
}

// TestPipelineErrorTracking sends Parse S_a, a Bind of S_a with the wrong
// number of parameters, Execute, Parse S_b, Sync: PostgreSQL creates S_a,
// fails the Bind and skips the rest, so S_b does not exist. Sluice's
// tracking must agree.
func TestPipelineErrorTracking(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) []string {
		a, b := dialRaw(t, dsn), dialRaw(t, dsn)
		h := holder{b}
		var tr []string
		tr = append(tr, a.roundTrip(msgParse("S_a", "SELECT $1::int AS v"), msgBind("S_a", "1", "2"), msgExecute(), msgParse("S_b", "SELECT 2 AS w"), msgSync())...)
		tr = append(tr, a.roundTrip(msgBind("S_b"), msgExecute(), msgSync())...)
		tr = append(tr, a.roundTrip(msgBind("S_a", "5"), msgExecute(), msgSync())...)
		h.hold()
		tr = append(tr, a.roundTrip(msgBind("S_a", "6"), msgExecute(), msgSync())...)
		h.release()
		tr = append(tr, a.roundTrip(msgParse("S_b", "SELECT 3 AS w"), msgBind("S_b"), msgExecute(), msgSync())...)
		// A bad parameter format: binary int4 of the wrong length.
		bad := &pgproto3.Bind{PreparedStatement: "S_a", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{1, 2}}}
		tr = append(tr, a.roundTrip(bad, msgExecute(), msgParse("S_c", "SELECT 4"), msgBind("S_c"), msgExecute(), msgSync())...)
		tr = append(tr, a.roundTrip(msgBind("S_c"), msgExecute(), msgSync())...)
		tr = append(tr, a.roundTrip(msgBind("S_a", "7"), msgExecute(), msgSync())...)
		return tr
	}
	h := startSluice(t, "transaction", 2)
	direct := run(t, directDSN(h.pg, db))
	for _, mode := range poolModes {
		t.Run(mode, func(t *testing.T) {
			h := startSluice(t, mode, 2)
			sameTranscript(t, "failed bind in a pipeline", stripErrorMessages(direct), stripErrorMessages(run(t, h.dsn(db))))
		})
	}
}

// stripErrorMessages keeps only severity and SQLSTATE of errors, for
// comparisons where PostgreSQL's message names the server-side statement.
func stripErrorMessages(tr []string) []string {
	out := make([]string, len(tr))
	for i, m := range tr {
		if strings.HasPrefix(m, "ErrorResponse ") {
			f := strings.SplitN(m, " ", 4)
			m = strings.Join(f[:3], " ")
		}
		out[i] = m
	}
	return out
}

// TestErrorMessagesNameClientStatements checks that an error PostgreSQL
// raises about a statement names the client's statement, not Sluice's
// server-side one.
func TestErrorMessagesNameClientStatements(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) []string {
		a := dialRaw(t, dsn)
		return a.roundTrip(msgParse("S_a", "SELECT $1::int AS v"), msgBind("S_a", "1", "2"), msgExecute(), msgSync())
	}
	h := startSluice(t, "transaction", 1)
	direct := run(t, directDSN(h.pg, db))
	sameTranscript(t, "bind error message", direct, run(t, h.dsn(db)))
}

// TestLRUCloseSkippedAfterError fills a server to max_prepared_statements,
// then sends a batch where an error comes before a Parse that makes Sluice
// close the least recently used statement: PostgreSQL skips that Close
// too, so the statement is still on the server. Using it again must work.
func TestLRUCloseSkippedAfterError(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	limit := func(c *proxy.Config) { c.Pool.MaxPreparedStatements = 3 }
	run := func(t *testing.T, dsn string) []string {
		c := dialRaw(t, dsn)
		var tr []string
		for _, n := range []string{"A", "B", "C"} {
			tr = append(tr, c.roundTrip(msgParse(n, "SELECT '"+n+"'::text AS v"), msgSync())...)
		}
		tr = append(tr, c.roundTrip(msgParse("", "SELECT 1/0"), msgBind(""), msgExecute(),
			msgParse("D", "SELECT 'D'::text AS v"), msgBind("D"), msgExecute(), msgSync())...)
		for _, n := range []string{"A", "B", "C", "D"} {
			tr = append(tr, c.roundTrip(msgBind(n), msgExecute(), msgSync())...)
		}
		return tr
	}
	h := startSluice(t, "transaction", 1, limit)
	direct := run(t, directDSN(h.pg, db))
	sameTranscript(t, "LRU close after error", direct, run(t, h.dsn(db)))
}

// TestCachedPlanRetry changes a table's columns under a prepared SELECT *;
// PostgreSQL then answers "cached plan must not change result type"
// (0A000). Outside a transaction block Sluice prepares the statement again
// and retries once, so the client gets the new rows.
func TestCachedPlanRetry(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	admin := connect(t, directDSN(h.pg, db))
	mustExec(t, admin, "CREATE TABLE t (a int)")
	mustExec(t, admin, "INSERT INTO t VALUES (1)")
	c := dialRaw(t, h.dsn(db))
	got := c.roundTrip(msgParse("S", "SELECT * FROM t"), msgBind("S"), msgExecute(), msgSync())
	sameTranscript(t, "before DDL", []string{"ParseComplete", "BindComplete", "DataRow [1]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
	mustExec(t, admin, "ALTER TABLE t ADD COLUMN b text DEFAULT 'x'")
	got = c.roundTrip(msgBind("S"), msgDescribePortal(), msgExecute(), msgSync())
	want := []string{"BindComplete", "RowDescription [a:23:0 b:25:0]", "DataRow [1 x]", "CommandComplete SELECT 1", "ReadyForQuery I"}
	sameTranscript(t, "after DDL", want, got)
	// Retried once per change: the new copy keeps working, and so does the
	// next change.
	sameTranscript(t, "describe after retry", []string{"ParameterDescription []", "RowDescription [a:23:0 b:25:0]", "ReadyForQuery I"},
		c.roundTrip(msgDescribeStmt("S"), msgSync()))
	mustExec(t, admin, "ALTER TABLE t DROP COLUMN a")
	got = c.roundTrip(msgBind("S"), msgExecute(), msgSync())
	sameTranscript(t, "after the second DDL", []string{"BindComplete", "DataRow [x]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
}

// TestCachedPlanNoRetry checks that the stale-plan error reaches the
// client unchanged where a retry would not be safe: inside a transaction
// block, and after another statement of the same pipeline ran; the
// transcripts equal PostgreSQL's.
func TestCachedPlanNoRetry(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	admin := connect(t, directDSN(h.pg, db))
	run := func(t *testing.T, dsn, table string) ([]string, *rawConn) {
		mustExec(t, admin, "CREATE TABLE "+table+" (a int)")
		mustExec(t, admin, "INSERT INTO "+table+" VALUES (1)")
		c := dialRaw(t, dsn)
		var tr []string
		tr = append(tr, c.roundTrip(msgParse("S", "SELECT * FROM "+table), msgParse("U", "SELECT 1 AS one"), msgBind("S"), msgExecute(), msgSync())...)
		mustExec(t, admin, "ALTER TABLE "+table+" ADD COLUMN b text DEFAULT 'x'")
		tr = append(tr, c.query("BEGIN")...)
		tr = append(tr, c.roundTrip(msgBind("S"), msgExecute(), msgSync())...)
		tr = append(tr, c.query("ROLLBACK")...)
		tr = append(tr, c.roundTrip(msgBind("U"), msgExecute(), msgBind("S"), msgExecute(), msgSync())...)
		return tr, c
	}
	direct, _ := run(t, directDSN(h.pg, db), "t_direct")
	if n := strings.Count(strings.Join(direct, "\n"), "ErrorResponse ERROR 0A000 cached plan must not change result type"); n != 2 {
		t.Fatalf("direct transcript has %d stale-plan errors, want 2: %q", n, direct)
	}
	got, c := run(t, h.dsn(db), "t_sluice")
	sameTranscript(t, "no retry", direct, got)
	// Outside a transaction, first in its batch: retried.
	got = c.roundTrip(msgBind("S"), msgExecute(), msgSync())
	sameTranscript(t, "retried", []string{"BindComplete", "DataRow [1 x]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
}

// TestSQLPrepareInTransactionMode uses SQL-level PREPARE/EXECUTE/DEALLOCATE
// across transactions that land on different servers, mixed with
// protocol-level statements (one namespace in PostgreSQL), in
// multi-statement Queries and failed ones; every reply must be
// PostgreSQL's. Through Sluice the client must not be pinned: its
// transactions run on both servers.
func TestSQLPrepareInTransactionMode(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) (tr []string, pids map[string]bool) {
		a := dialRaw(t, dsn)
		hold := holder{dialRaw(t, dsn)}
		pids = map[string]bool{}
		add := func(what string, msgs []string) {
			tr = append(tr, "-- "+what)
			tr = append(tr, msgs...)
		}
		inTx := func(what string, f func()) {
			add("begin", a.query("BEGIN"))
			pids[a.value("SELECT pg_backend_pid()")] = true
			f()
			add("commit "+what, a.query("COMMIT"))
		}
		add("prepare", a.query("PREPARE p(int) AS SELECT $1 * 3"))
		inTx("here", func() { add("execute here", a.query("EXECUTE p(5)")) })
		hold.hold()
		inTx("elsewhere", func() { add("execute elsewhere", a.query("EXECUTE p(6)")) })
		hold.release()
		add("autocommit", a.query("EXECUTE p(7)"))
		add("duplicate", a.query("PREPARE p AS SELECT 1"))
		add("bind SQL statement", a.roundTrip(msgBind("p", "8"), msgExecute(), msgSync()))
		add("parse over SQL name", a.roundTrip(msgParse("p", "SELECT 1"), msgSync()))
		add("wrong arguments", a.query("EXECUTE p(1, 2)"))
		add("explain", a.query("EXPLAIN (COSTS OFF) EXECUTE p(1)"))
		// A protocol statement used and dropped with SQL.
		add("parse S", a.roundTrip(msgParse("S", "SELECT $1::text || '!' AS shout"), msgSync()))
		hold.hold()
		add("execute protocol statement", a.query(`EXECUTE "S"('x')`))
		add("deallocate protocol statement", a.query(`DEALLOCATE "S"`))
		hold.release()
		add("bind deallocated", a.roundTrip(msgBind("S", "y"), msgExecute(), msgSync()))
		add("execute deallocated", a.query(`EXECUTE "S"('z')`))
		// Several statements in one Query, with and without a failure.
		add("multi", a.query("PREPARE q AS SELECT 'q'::text AS v; EXECUTE q; DEALLOCATE PREPARE q; SELECT 2"))
		add("multi gone", a.query("EXECUTE q"))
		add("prepare then fail", a.query("PREPARE r AS SELECT 'r'::text AS v; SELECT 1/0"))
		hold.hold()
		add("survived the failure", a.query("EXECUTE r"))
		hold.release()
		add("fail then prepare", a.query("SELECT 1/0; PREPARE r2 AS SELECT 2"))
		add("never prepared", a.query("EXECUTE r2"))
		add("prepare in rolled back tx", a.query("BEGIN; PREPARE r3 AS SELECT 3 AS three"))
		add("rollback", a.query("ROLLBACK"))
		add("survived rollback", a.query("EXECUTE r3"))
		add("begin", a.query("BEGIN"))
		add("fail", a.query("SELECT 1/0"))
		add("execute in failed tx", a.query("EXECUTE r3"))
		add("deallocate in failed tx", a.query("DEALLOCATE r3"))
		add("rollback", a.query("ROLLBACK"))
		add("still there", a.query("EXECUTE r3"))
		add("deallocate", a.query("DEALLOCATE p"))
		add("execute deallocated", a.query("EXECUTE p(5)"))
		add("deallocate again", a.query("DEALLOCATE p"))
		add("deallocate all", a.query("DEALLOCATE ALL"))
		add("gone", a.query("EXECUTE r"))
		add("name reusable", a.query("PREPARE p AS SELECT 'new'::text"))
		add("new p", a.query("EXECUTE p"))
		return tr, pids
	}
	h := startSluice(t, "transaction", 2)
	direct, _ := run(t, directDSN(h.pg, db))
	got, pids := run(t, h.dsn(db))
	sameTranscript(t, "SQL PREPARE", direct, got)
	if len(pids) < 2 {
		t.Fatalf("the transactions ran on %d server(s); the client was pinned or the test did not move it", len(pids))
	}
}

// TestSQLPrepareNamesArePerClient has two clients PREPARE the same name
// with different SQL on one shared server; each only ever runs its own,
// and one's DEALLOCATE or DEALLOCATE ALL leaves the other's.
func TestSQLPrepareNamesArePerClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	for _, reset := range []string{"DEALLOCATE p", "DEALLOCATE ALL", "DISCARD ALL"} {
		t.Run(reset, func(t *testing.T) {
			t.Parallel()
			h := startSluice(t, "transaction", 1)
			a, b := dialRaw(t, h.dsn(db)), dialRaw(t, h.dsn(db))
			want := func(c *rawConn, sql, out string) {
				t.Helper()
				exp := []string{"RowDescription [v:25:0]", "DataRow [" + out + "]", "CommandComplete SELECT 1", "ReadyForQuery I"}
				sameTranscript(t, sql, exp, c.query(sql))
			}
			for _, c := range []struct {
				c   *rawConn
				tag string
			}{{a, "a"}, {b, "b"}} {
				sameTranscript(t, "prepare", []string{"CommandComplete PREPARE", "ReadyForQuery I"},
					c.c.query("PREPARE p(text) AS SELECT '"+c.tag+"-' || $1 AS v"))
				c.c.roundTrip(msgParse("T", "SELECT '"+c.tag+"-T'::text AS v"), msgSync())
			}
			for i := range 3 {
				want(a, fmt.Sprintf("EXECUTE p('%d')", i), fmt.Sprintf("a-%d", i))
				want(b, fmt.Sprintf("EXECUTE p('%d')", i), fmt.Sprintf("b-%d", i))
			}
			tag := strings.ToUpper(reset)
			if reset == "DEALLOCATE p" {
				tag = "DEALLOCATE"
			}
			sameTranscript(t, reset, []string{"CommandComplete " + tag, "ReadyForQuery I"}, a.query(reset))
			if got := a.query("EXECUTE p('x')"); !strings.HasPrefix(got[0], `ErrorResponse ERROR 26000 prepared statement "p" does not exist`) {
				t.Fatalf("a's p after %s: %q", reset, got)
			}
			want(b, "EXECUTE p('x')", "b-x")
			want(b, `EXECUTE "T"`, "b-T")
			if reset != "DEALLOCATE p" {
				if got := a.query(`EXECUTE "T"`); !strings.HasPrefix(got[0], "ErrorResponse ERROR 26000") {
					t.Fatalf("a's T after %s: %q", reset, got)
				}
			} else {
				want(a, `EXECUTE "T"`, "a-T")
			}
			// a may take the name again; b's stays.
			a.query("PREPARE p(text) AS SELECT 'a2-' || $1 AS v")
			want(a, "EXECUTE p('y')", "a2-y")
			want(b, "EXECUTE p('y')", "b-y")
			if got := b.value("SELECT count(*) FROM pg_prepared_statements WHERE name IN ('p', 'T')"); got != "0" {
				t.Fatalf("a client's own statement name is on the shared server (%s)", got)
			}
		})
	}
}
