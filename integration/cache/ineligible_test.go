package cache_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestNeverCached: statements the cache must not serve, each asked for
// caching with a /* sluice:cache */ comment and run three times: no hit,
// the skip reason counted, and (where the answer changes by itself) a fresh
// answer each time.
func TestNeverCached(t *testing.T) {
	t.Parallel()
	const opt = "/* sluice:cache ttl=60s */ "
	cases := []struct {
		name   string
		pool   string
		setup  []string // through Sluice, same session
		sql    string
		reason string // skips_total{reason}; "" when refused before Check
		varies bool   // the answer differs on every run
		wrap   bool   // run inside BEGIN..COMMIT
		// extended: pgx's default extended protocol (statement cache)
		// instead of the simple protocol.
		extended bool
	}{
		{name: "in_transaction", pool: "transaction", sql: opt + "SELECT v FROM t", reason: "in_transaction", wrap: true},
		{name: "volatile_random", pool: "transaction", sql: opt + "SELECT v, random() FROM t", reason: "volatile_function", varies: true},
		{name: "volatile_now", pool: "transaction", sql: opt + "SELECT clock_timestamp(), v FROM t", reason: "volatile_function", varies: true},
		{name: "for_update", pool: "transaction", sql: opt + "SELECT v FROM t FOR UPDATE", reason: "locking"},
		{name: "for_share_extended", pool: "transaction", sql: opt + "SELECT v FROM t FOR SHARE", reason: "locking", extended: true},
		{name: "temp_table", pool: "session", setup: []string{"CREATE TEMP TABLE tt AS SELECT * FROM t"},
			sql: opt + "SELECT v FROM tt", reason: "temp_relation"},
		{name: "nextval", pool: "transaction", sql: opt + "SELECT nextval('seq')", reason: "volatile_function", varies: true},
		{name: "sequence_relation", pool: "transaction", sql: opt + "SELECT last_value FROM seq", reason: "sequence"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.exec("CREATE TABLE t (v int)", "INSERT INTO t VALUES (1), (2)", "CREATE SEQUENCE seq")
			inst := s.start(c.pool, s.cacheYAML("rules", ""))
			mode := pgx.QueryExecModeSimpleProtocol
			if c.extended {
				mode = pgx.QueryExecModeCacheStatement
			}
			conn := s.viaSluice(inst, execMode(mode))
			ctx := context.Background()
			for _, q := range c.setup {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%q: %v", q, err)
				}
			}
			p := s.proof(t, inst)
			var answers []string
			for i := 0; i < 3; i++ {
				if c.wrap {
					if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
						t.Fatal(err)
					}
				}
				answers = append(answers, queryText(t, conn, c.sql))
				if c.wrap {
					if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
						t.Fatal(err)
					}
				}
			}
			p.expect(c.name, 0)
			if c.varies && (answers[0] == answers[1] || answers[1] == answers[2]) {
				t.Fatalf("a repeat returned the same answer: %q", answers)
			}
			if c.reason != "" {
				if d := p.delta(mSkips, "reason", c.reason); d < 3 {
					t.Fatalf("skips_total{reason=%q} moved by %v, want >= 3", c.reason, d)
				}
			}
			// And the same statement, allowed, does hit: the setup caches.
			if c.name == "in_transaction" {
				p2 := s.proof(t, inst)
				queryText(t, conn, c.sql)
				queryText(t, conn, c.sql)
				p2.expect("outside the transaction", 1)
			}
		})
	}
}
