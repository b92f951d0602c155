package rules_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

const maxRowsSetup = `CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 50);`

const maxRowsRules = `
max_rows: 0
rules:
  - name: cap-t
    match: {relations_any: [t]}
    max_rows: 10
`

// TestMaxRows checks row-limit injection through Sluice in both pool modes
// and both protocols: the row counts the client gets, and the truncation
// NoticeResponse naming the rule exactly when the result has the limit's
// rows.
func TestMaxRows(t *testing.T) {
	cases := []struct {
		name   string
		sql    string
		args   []any
		rows   int
		first  string // the first row, when it matters
		notice bool
	}{
		{name: "no limit gets one", sql: "SELECT x FROM t", rows: 10, notice: true},
		{name: "larger limit lowered", sql: "SELECT x FROM t ORDER BY x LIMIT 100", rows: 10, first: "1", notice: true},
		{name: "limit all lowered", sql: "SELECT x FROM t LIMIT ALL", rows: 10, notice: true},
		{name: "fetch first lowered", sql: "SELECT x FROM t ORDER BY x DESC FETCH FIRST 20 ROWS ONLY", rows: 10, first: "50", notice: true},
		{name: "smaller limit kept", sql: "SELECT x FROM t LIMIT 3", rows: 3},
		{name: "fewer rows no notice", sql: "SELECT x FROM t WHERE x <= 4", rows: 4},
		{name: "exactly the limit notices", sql: "SELECT x FROM t WHERE x <= 10", rows: 10, notice: true},
		{name: "union one limit", sql: "SELECT x FROM t UNION ALL SELECT x FROM t", rows: 10, notice: true},
		{name: "union distinct one limit", sql: "SELECT x FROM t WHERE x < 8 UNION SELECT x + 100 FROM t WHERE x < 8", rows: 10, notice: true},
		{name: "subquery not limited", sql: "SELECT count(*) FROM (SELECT x FROM t) s", rows: 1, first: "50"},
		{name: "cte body not limited", sql: "WITH c AS (SELECT x FROM t) SELECT sum(x) FROM c", rows: 1, first: "1275"},
		{name: "aggregate row", sql: "SELECT count(*) FROM t", rows: 1, first: "50"},
		{name: "group by limited", sql: "SELECT x % 20, count(*) FROM t GROUP BY 1", rows: 10, notice: true},
		{name: "param limit capped", sql: "SELECT x FROM t ORDER BY x LIMIT $1", args: []any{30}, rows: 10, first: "1", notice: true},
		{name: "param limit smaller kept", sql: "SELECT x FROM t ORDER BY x LIMIT $1", args: []any{4}, rows: 4, first: "1"},
		{name: "param limit null capped", sql: "SELECT x FROM t LIMIT $1::bigint", args: []any{nil}, rows: 10, notice: true},
		{name: "dml returning not limited", sql: "UPDATE t SET x = x WHERE x <= 30 RETURNING x", rows: 30},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, maxRowsSetup, maxRowsRules)
			for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
				c, n := e.sluice(t, withMode(qm))
				for _, tc := range cases {
					t.Run(qm.String()+"/"+tc.name, func(t *testing.T) {
						rows, err := rowsOf(context.Background(), c, tc.sql, tc.args...)
						if err != nil {
							t.Fatalf("%s: %v", tc.sql, err)
						}
						got := n.take()
						if len(rows) != tc.rows {
							t.Errorf("%s: %d rows, want %d", tc.sql, len(rows), tc.rows)
						}
						if tc.first != "" && (len(rows) == 0 || rows[0] != tc.first) {
							t.Errorf("%s: first row %v, want %s", tc.sql, rows, tc.first)
						}
						if hasNotice(got, "cap-t") != tc.notice {
							t.Errorf("%s: notices %q, want a truncation notice: %v", tc.sql, got, tc.notice)
						}
						for _, m := range got {
							if !strings.HasPrefix(m, "NOTICE 01000 sluice: result limited to 10 rows") {
								t.Errorf("%s: unexpected notice %q", tc.sql, m)
							}
						}
					})
				}
			}
		})
	}
}

// TestMaxRowsGlobal checks the global max_rows default and a rule that
// lifts it (max_rows: 0) for one relation.
func TestMaxRowsGlobal(t *testing.T) {
	t.Parallel()
	e := start(t, "transaction", maxRowsSetup+`CREATE TABLE big (x int); INSERT INTO big SELECT generate_series(1, 40);`, `
max_rows: 7
rules:
  - name: big-unlimited
    match: {relations_any: [big]}
    max_rows: 0
`)
	c, n := e.sluice(t)
	if got := len(mustRows(t, c, "SELECT x FROM t")); got != 7 {
		t.Errorf("global max_rows: %d rows, want 7", got)
	}
	if m := n.take(); !hasNotice(m, "max_rows") {
		t.Errorf("global limit notices %q, want one naming max_rows", m)
	}
	if got := len(mustRows(t, c, "SELECT x FROM big")); got != 40 {
		t.Errorf("rule lifting the limit: %d rows, want 40", got)
	}
	if m := n.take(); len(m) != 0 {
		t.Errorf("unlimited query got notices %q", m)
	}
}

// TestMaxRowsPsql checks what a psql user sees: the capped rows and the
// NOTICE line naming the rule.
func TestMaxRowsPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		testenv.Missing(t, "psql not installed: apt-get install postgresql-client-15")
	}
	t.Parallel()
	e := start(t, "transaction", maxRowsSetup, maxRowsRules)
	host, port, _ := strings.Cut(e.inst.Addr, ":")
	for _, sql := range []string{"SELECT x FROM t", "SELECT x FROM t WHERE x < 5"} {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-h", host, "-p", port, "-U", e.pg.User, "-d", e.db, "-c", sql)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+e.pg.Password, "PGSSLMODE=disable")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, stderr.String())
		}
		lines := strings.Fields(string(out))
		truncated := !strings.Contains(sql, "WHERE")
		want := 4
		if truncated {
			want = 10
		}
		if len(lines) != want {
			t.Errorf("psql %q: %d rows, want %d: %q", sql, len(lines), want, out)
		}
		notice := strings.Contains(stderr.String(), `NOTICE:  sluice: result limited to 10 rows by rule "cap-t"`)
		if notice != truncated {
			t.Errorf("psql %q: stderr %q, want the NOTICE: %v", sql, stderr.String(), truncated)
		}
	}
}
