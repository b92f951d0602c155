package proxy_test

import "testing"

// TestSQLPrepareAgainFails has the table an SQL-prepared statement reads
// dropped after the PREPARE; the client's next EXECUTE lands on a server
// that lacks the statement, where preparing it again fails. PostgreSQL,
// replanning at EXECUTE, gives one error for it (42P01) in the
// statement's place: in a multi-statement Query, inside a transaction
// (which it aborts), with a protocol Bind of the name. Through Sluice the
// transcripts must be the same, and once the table is back the statement
// works again, also in front of other statements of a Query.
func TestSQLPrepareAgainFails(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	run := func(t *testing.T, dsn string) (tr []string, moved bool) {
		a := dialRaw(t, dsn)
		hold := holder{dialRaw(t, dsn)}
		ddl := dialRaw(t, directDSN(h.pg, db))
		add := func(what string, msgs []string) {
			tr = append(tr, "-- "+what)
			tr = append(tr, msgs...)
		}
		ddl.query("DROP TABLE IF EXISTS t")
		ddl.query("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)")
		add("begin", a.query("BEGIN"))
		add("prepare", a.query("PREPARE p(int) AS SELECT a FROM t WHERE a = $1"))
		add("prepare with comment", a.query("PREPARE c AS SELECT 'c'::text AS v -- ends the text"))
		first := a.value("SELECT pg_backend_pid()")
		add("commit", a.query("COMMIT"))
		ddl.query("DROP TABLE t")

		hold.hold()
		add("begin", a.query("BEGIN"))
		moved = a.value("SELECT pg_backend_pid()") != first
		add("execute in transaction", a.query("SELECT 1; EXECUTE p(1)"))
		add("aborted", a.query("SELECT 1"))
		add("rollback", a.query("ROLLBACK"))
		add("execute", a.query("EXECUTE p(1)"))
		add("execute second", a.query("SELECT 1; EXECUTE p(1); SELECT 2"))
		add("begin and execute", a.query("BEGIN; EXECUTE p(1)"))
		add("rollback", a.query("ROLLBACK"))
		add("bind", a.roundTrip(msgBind("p", "1"), msgExecute(), msgSync()))

		ddl.query("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)")
		add("table back", a.query("EXECUTE p(2)"))
		add("prepared again after a comment", a.query("EXECUTE c; SELECT 3"))
		hold.release()
		add("anywhere", a.query("EXECUTE p(1)"))
		add("deallocate", a.query("DEALLOCATE p"))
		return tr, moved
	}
	direct, _ := run(t, directDSN(h.pg, db))
	got, moved := run(t, h.dsn(db))
	sameTranscript(t, "prepare again fails", direct, got)
	if !moved {
		t.Fatal("the EXECUTE ran on the server of the PREPARE; the test did not move the client")
	}
}
