package rules_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const hintRules = `
rules:
  - name: hint-activity
    match: {relations_any: [pg_stat_activity]}
    hint: "SeqScan(pg_stat_activity)"
    continue: true
  - name: cap-activity
    match: {relations_any: [pg_stat_activity]}
    max_rows: 5
  - name: hint-sleep
    match: {pattern: 'pg_sleep'}
    hint: "SeqScan(t)"
`

// allModes are pgx's ways of sending a query: the simple protocol and the
// extended protocol with and without a prepared statement.
var allModes = []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec}

// TestHintSeenByPostgres: the text PostgreSQL runs (pg_stat_activity.query
// of the backend itself) starts with the hint comment and carries the
// injected limit, and it is the same text whichever protocol sent it, so
// Parse is rewritten exactly as a simple Query.
func TestHintSeenByPostgres(t *testing.T) {
	const self = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"
	want := "/*+ SeqScan(pg_stat_activity) */ " + self + " LIMIT 5"
	merged := regexp.MustCompile(`^/\*\+ *IndexScan\(pg_stat_activity\) +SeqScan\(pg_stat_activity\) *\*/ *SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid\(\) LIMIT 5$`)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, "", hintRules)
			for _, qm := range allModes {
				t.Run(qm.String(), func(t *testing.T) {
					c, _ := e.sluice(t, withMode(qm))
					if got := scalar[string](t, c, self); got != want {
						t.Errorf("PostgreSQL ran %q, want %q", got, want)
					}
					got := scalar[string](t, c, "/*+ IndexScan(pg_stat_activity) */ "+self)
					if !merged.MatchString(got) {
						t.Errorf("with the client's own hint PostgreSQL ran %q, want one merged leading comment", got)
					}
					d, _ := e.direct(t, withMode(qm))
					if got := scalar[string](t, d, self); got != self {
						t.Errorf("directly PostgreSQL ran %q (the test's premise is broken)", got)
					}
				})
			}
		})
	}
}

// TestHintSeenFromOutside watches a hinted statement from another
// connection while it runs.
func TestHintSeenFromOutside(t *testing.T) {
	t.Parallel()
	e := start(t, "transaction", "CREATE TABLE t (x int); INSERT INTO t VALUES (1);", hintRules)
	for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(qm.String(), func(t *testing.T) {
			c, _ := e.sluice(t, withMode(qm))
			mark := "sleeper_" + strings.ReplaceAll(qm.String(), " ", "_")
			done := make(chan error, 1)
			go func() {
				_, err := c.Exec(context.Background(), "SELECT pg_sleep(1.5), x AS "+mark+" FROM t")
				done <- err
			}()
			d, _ := e.direct(t)
			var seen string
			deadline := time.Now().Add(1200 * time.Millisecond)
			for time.Now().Before(deadline) && seen == "" {
				rows := mustRows(t, d, "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%"+mark+"%'")
				if len(rows) > 0 {
					seen = rows[0]
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(seen, "/*+ SeqScan(t) */ SELECT pg_sleep") {
				t.Errorf("another connection saw %q running, want the hint comment first", seen)
			}
		})
	}
}
