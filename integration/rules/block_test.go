package rules_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const blockSetup = `CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 5);`

const blockRules = `
rules:
  - name: no-delete
    match: {kind: [delete], relations_any: [t]}
    block: "deletes from t are not allowed"
  - name: no-truncate
    match: {kind: [truncate]}
    block: "no truncate here"
    sqlstate: "P0001"
`

// failing is what the blocked statement stands for when the same sequence
// runs directly on PostgreSQL: a statement PostgreSQL rejects at Parse, as
// Sluice rejects a blocked one before it runs.
const failing = "DELETE FROM no_such_table"

// outcome renders a statement's result: "ok", "fail" when it is the
// expected failure (failCode), or the SQLSTATE of any other error.
func outcome(err error, failCode string) string {
	if err == nil {
		return "ok"
	}
	pe := pgErr(err)
	if pe == nil {
		return "non-pg error: " + err.Error()
	}
	if pe.Code == failCode {
		return "fail"
	}
	return pe.Code
}

// count reads how many rows t has, directly on PostgreSQL.
func (e *env) count(t *testing.T) int {
	t.Helper()
	c, _ := e.direct(t)
	return scalar[int](t, c, "SELECT count(*) FROM t")
}

// TestBlockSimple: a blocked statement gets the rule's SQLSTATE and
// message, never reaches PostgreSQL, and the connection stays usable.
func TestBlockSimple(t *testing.T) {
	cases := []struct {
		name, sql, code, msg string
		args                 []any
	}{
		{name: "delete default sqlstate", sql: "DELETE FROM t", code: "42501", msg: "deletes from t are not allowed"},
		{name: "delete with param", sql: "DELETE FROM t WHERE x > $1", args: []any{0}, code: "42501", msg: "deletes from t are not allowed"},
		{name: "truncate configured sqlstate", sql: "TRUNCATE t", code: "P0001", msg: "no truncate here"},
		{name: "multi-statement query", sql: "INSERT INTO t VALUES (100); DELETE FROM t", code: "42501", msg: "deletes from t are not allowed"},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, blockSetup, blockRules)
			for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
				c, _ := e.sluice(t, withMode(qm))
				for _, tc := range cases {
					if tc.name == "multi-statement query" && qm != pgx.QueryExecModeSimpleProtocol {
						continue
					}
					t.Run(qm.String()+"/"+tc.name, func(t *testing.T) {
						_, err := c.Exec(context.Background(), tc.sql, tc.args...)
						pe := pgErr(err)
						if pe == nil {
							t.Fatalf("%s: err %v, want the block", tc.sql, err)
						}
						if pe.Code != tc.code || pe.Message != tc.msg || pe.Severity != "ERROR" {
							t.Errorf("%s: got %s %s %q, want ERROR %s %q", tc.sql, pe.Severity, pe.Code, pe.Message, tc.code, tc.msg)
						}
						if n := e.count(t); n != 5 {
							t.Errorf("%s: t has %d rows after the block, want 5 (the statement ran)", tc.sql, n)
						}
						if got := scalar[int](t, c, "SELECT count(*) FROM t"); got != 5 {
							t.Errorf("after the block: count through Sluice = %d, want 5", got)
						}
					})
				}
			}
		})
	}
}

// TestBlockInTransaction: inside BEGIN a blocked statement fails the
// transaction exactly as an error from PostgreSQL does (the next statement
// gets 25P02), and ROLLBACK undoes what came before it.
func TestBlockInTransaction(t *testing.T) {
	seq := func(t *testing.T, c *pgx.Conn, bad string, failCode string) []string {
		ctx := context.Background()
		var out []string
		for _, sql := range []string{"BEGIN", "INSERT INTO t VALUES (100)", bad, "SELECT 1", "ROLLBACK", "SELECT count(*) FROM t"} {
			_, err := c.Exec(ctx, sql)
			out = append(out, outcome(err, failCode))
		}
		return out
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, blockSetup, blockRules)
			for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
				t.Run(qm.String(), func(t *testing.T) {
					d, _ := e.direct(t, withMode(qm))
					want := seq(t, d, failing, "42P01")
					s, _ := e.sluice(t, withMode(qm))
					got := seq(t, s, "DELETE FROM t", "42501")
					if want[3] != "25P02" {
						t.Fatalf("direct PostgreSQL: %v, expected 25P02 after the error", want)
					}
					if !equal(got, want) {
						t.Errorf("through Sluice %v, directly %v", got, want)
					}
					if n := e.count(t); n != 5 {
						t.Errorf("t has %d rows, want 5", n)
					}
				})
			}
		})
	}
}

// TestBlockInBatch: a pipeline whose 2nd of 4 statements is blocked gets
// the replies PostgreSQL sends when the 2nd fails (first ok, error, the
// rest skipped to Sync), and the first statement's insert is rolled back
// with the implicit transaction, as PostgreSQL does.
func TestBlockInBatch(t *testing.T) {
	stmts := func(bad string, pos int) []string {
		s := []string{"INSERT INTO t VALUES (100)", "INSERT INTO t VALUES (101)", "INSERT INTO t VALUES (102)", "SELECT count(*) FROM t"}
		s[pos] = bad
		return s
	}
	pgxBatch := func(c *pgx.Conn, sqls []string, failCode string) []string {
		b := &pgx.Batch{}
		for _, s := range sqls {
			b.Queue(s)
		}
		br := c.SendBatch(context.Background(), b)
		var out []string
		for range sqls {
			_, err := br.Exec()
			out = append(out, outcome(err, failCode))
		}
		out = append(out, "close:"+outcome(br.Close(), failCode))
		return out
	}
	// pgconnBatch sends Parse/Bind/Describe/Execute per statement and one
	// Sync: the raw pipeline.
	pgconnBatch := func(c *pgx.Conn, sqls []string, failCode string) []string {
		b := &pgconn.Batch{}
		for _, s := range sqls {
			b.ExecParams(s, nil, nil, nil, nil)
		}
		res, err := c.PgConn().ExecBatch(context.Background(), b).ReadAll()
		var out []string
		for _, r := range res {
			out = append(out, outcome(r.Err, failCode)+":"+r.CommandTag.String())
		}
		return append(out, "all:"+outcome(err, failCode))
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, blockSetup, blockRules)
			for _, pos := range []int{1, 0, 3} {
				for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
					t.Run(qm.String()+"/blocked "+string(rune('1'+pos)), func(t *testing.T) {
						d, _ := e.direct(t, withMode(qm))
						s, _ := e.sluice(t, withMode(qm))
						want := pgxBatch(d, stmts(failing, pos), "42P01")
						got := pgxBatch(s, stmts("DELETE FROM t", pos), "42501")
						if n := e.count(t); n != 5 {
							t.Errorf("t has %d rows after the batch, want 5", n)
						}
						if got := scalar[int](t, s, "SELECT count(*) FROM t"); got != 5 {
							t.Errorf("after the batch: count through Sluice = %d, want 5", got)
						}
						if !equal(got, want) {
							t.Errorf("pgx batch through Sluice %v, directly %v", got, want)
						}
					})
				}
				t.Run("pgconn/blocked "+string(rune('1'+pos)), func(t *testing.T) {
					d, _ := e.direct(t)
					s, _ := e.sluice(t)
					want := pgconnBatch(d, stmts(failing, pos), "42P01")
					got := pgconnBatch(s, stmts("DELETE FROM t", pos), "42501")
					if !equal(got, want) {
						t.Errorf("pipeline through Sluice %v, directly %v", got, want)
					}
					if n := e.count(t); n != 5 {
						t.Errorf("t has %d rows after the pipeline, want 5", n)
					}
					if got := scalar[int](t, s, "SELECT count(*) FROM t"); got != 5 {
						t.Errorf("after the pipeline: count through Sluice = %d, want 5", got)
					}
				})
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
