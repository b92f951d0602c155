package rules_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
)

const matchSetup = `
CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 5);
CREATE TABLE u (x int); INSERT INTO u SELECT generate_series(1, 5);
`

// TestMatchKeys: each match key decides whether a rule (max_rows: 2)
// applies; through Sluice the client gets 2 rows when it does and all 5
// when it does not.
func TestMatchKeys(t *testing.T) {
	t.Parallel()
	pg, db := newDB(t, matchSetup)
	role := fmt.Sprintf("rules_app_%s", strings.TrimPrefix(db, "sluice_rules_"))
	admin, _ := connectDSN(t, pg.DSN(db))
	ctx := context.Background()
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'app-secret'",
		"GRANT SELECT ON t, u TO " + role,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c, _ := connectDSN(t, pg.DSN("postgres"))
		c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	fp, err := pg_query.Fingerprint("SELECT x FROM t WHERE x > 3")
	if err != nil {
		t.Fatal(err)
	}
	otherFP, _ := pg_query.Fingerprint("SELECT x FROM u WHERE x > 3")

	const q = "SELECT x FROM t WHERE x > 0"
	const join = "SELECT t.x FROM t JOIN u USING (x)"
	cases := []struct {
		name  string
		match string
		sql   string
		user  string // "" = the superuser
		app   string
		want  int
	}{
		{name: "database", match: "database: [" + db + "]", want: 2},
		{name: "database other", match: "database: [postgres]", want: 5},
		{name: "database regexp", match: "database: ['/^sluice_rules_']", want: 2},
		{name: "user", match: "user: [" + role + "]", user: role, want: 2},
		{name: "user other", match: "user: [" + role + "]", want: 5},
		{name: "user regexp", match: "user: ['/^rules_app_']", user: role, want: 2},
		{name: "application_name", match: "application_name: [reporter]", app: "reporter", want: 2},
		{name: "application_name other", match: "application_name: [reporter]", app: "web", want: 5},
		{name: "client_addr cidr", match: "client_addr: [127.0.0.0/8]", want: 2},
		{name: "client_addr address", match: "client_addr: [127.0.0.1]", want: 2},
		{name: "client_addr other", match: "client_addr: [10.0.0.0/8, '::1']", want: 5},
		{name: "kind", match: "kind: [select]", want: 2},
		{name: "kind other", match: "kind: [insert, update]", want: 5},
		{name: "fingerprint", match: "fingerprint: '" + fp + "'", want: 2},
		{name: "fingerprint other", match: "fingerprint: '" + otherFP + "'", want: 5},
		{name: "pattern", match: `pattern: 'FROM t WHERE x > \$1'`, want: 2},
		{name: "pattern other", match: `pattern: 'FROM u'`, want: 5},
		{name: "relations_any", match: "relations_any: [u, public.t]", want: 2},
		{name: "relations_any other", match: "relations_any: [u]", want: 5},
		{name: "relations_all", match: "relations_all: [t, u]", sql: join, want: 2},
		{name: "relations_all partial", match: "relations_all: [t, u]", want: 5},
		{name: "and of keys", match: "{kind: [select], application_name: [reporter]}", app: "web", want: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.match
			if !strings.HasPrefix(m, "{") {
				m = "{" + m + "}"
			}
			base := strings.Replace(sluicetest.Base(pg, "transaction"), "  users:\n",
				fmt.Sprintf("  users:\n    - {name: %q, password: %q}\n", role, "app-secret"), 1)
			inst := sluicetest.Start(t, base+"\nrules:\n  - name: keyed\n    match: "+m+"\n    max_rows: 2\n")
			user, pw := pg.User, pg.Password
			if tc.user != "" {
				user, pw = tc.user, "app-secret"
			}
			var opts []connOpts
			if tc.app != "" {
				opts = append(opts, withApp(tc.app))
			}
			sql := tc.sql
			if sql == "" {
				sql = q
			}
			for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
				c, _ := connectDSN(t, inst.DSN(user, pw, db), append(opts, withMode(qm))...)
				if got := len(mustRows(t, c, sql)); got != tc.want {
					t.Errorf("%s: match {%s}: %d rows, want %d", qm, tc.match, got, tc.want)
				}
			}
		})
	}
}

// TestContinueChains: first match wins unless a rule says continue; then
// the hint of one rule and the limit of the next both apply, hints
// accumulate, and for max_rows the first rule that sets it wins.
func TestContinueChains(t *testing.T) {
	const self = "SELECT x, (SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()) FROM t"
	cases := []struct {
		name     string
		rules    string
		rows     int
		prefix   string
		suffix   string
		noticeOf string
	}{
		{name: "hint then max_rows", rows: 2, prefix: "/*+ SeqScan(t) */ ", suffix: " LIMIT 2", noticeOf: "cap", rules: `
  - {name: hint, match: {relations_any: [t]}, hint: "SeqScan(t)", continue: true}
  - {name: cap, match: {relations_any: [t]}, max_rows: 2}`},
		{name: "first match wins without continue", rows: 5, prefix: "/*+ SeqScan(t) */ ", suffix: "FROM t", rules: `
  - {name: hint, match: {relations_any: [t]}, hint: "SeqScan(t)"}
  - {name: cap, match: {relations_any: [t]}, max_rows: 2}`},
		{name: "hints accumulate", rows: 5, prefix: "/*+ SeqScan(t) IndexScan(pg_stat_activity) */ ", suffix: "FROM t", rules: `
  - {name: hint, match: {relations_any: [t]}, hint: "SeqScan(t)", continue: true}
  - {name: hint2, match: {relations_any: [pg_stat_activity]}, hint: "IndexScan(pg_stat_activity)"}`},
		{name: "first max_rows wins", rows: 2, prefix: "SELECT", suffix: " LIMIT 2", noticeOf: "cap2", rules: `
  - {name: cap2, match: {relations_any: [t]}, max_rows: 2, continue: true}
  - {name: cap3, match: {relations_any: [t]}, max_rows: 3}`},
		{name: "non-matching continue falls through", rows: 3, prefix: "SELECT", suffix: " LIMIT 3", noticeOf: "cap3", rules: `
  - {name: other, match: {relations_any: [u]}, max_rows: 1, continue: true}
  - {name: cap3, match: {relations_any: [t]}, max_rows: 3}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, "transaction", matchSetup, "\nrules:"+tc.rules+"\n")
			for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
				c, n := e.sluice(t, withMode(qm))
				rows, err := c.Query(context.Background(), self)
				if err != nil {
					t.Fatal(err)
				}
				var texts []string
				for rows.Next() {
					var x int
					var q string
					if err := rows.Scan(&x, &q); err != nil {
						t.Fatal(err)
					}
					texts = append(texts, q)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				if len(texts) != tc.rows {
					t.Errorf("%s: %d rows, want %d", qm, len(texts), tc.rows)
				}
				if len(texts) > 0 && (!strings.HasPrefix(texts[0], tc.prefix) || !strings.HasSuffix(texts[0], tc.suffix)) {
					t.Errorf("%s: PostgreSQL ran %q, want %q...%q", qm, texts[0], tc.prefix, tc.suffix)
				}
				m := n.take()
				if tc.noticeOf != "" && !hasNotice(m, tc.noticeOf) || tc.noticeOf == "" && len(m) > 0 {
					t.Errorf("%s: notices %q, want one naming %q", qm, m, tc.noticeOf)
				}
			}
		})
	}
}
