package cache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// roles creates login roles with unique names (roles are cluster-wide) and
// drops them at cleanup, after the test's database.
func (s *setup) roles(names ...string) []user {
	s.t.Helper()
	var us []user
	for _, n := range names {
		u := user{name: n + "_" + randID(), password: "pw_" + randID()}
		s.exec(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", u.name, u.password))
		us = append(us, u)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, s.pg.DSN("postgres"))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db+" WITH (FORCE)")
		for _, u := range us {
			_, _ = c.Exec(ctx, "DROP ROLE IF EXISTS "+u.name)
		}
	})
	return us
}

// TestRowLevelSecurity: two roles run the same SQL through Sluice with a
// rule caching the table; each gets only its own rows (policy USING
// (owner = current_user)), on both protocols and in both pool modes, while
// the cache does serve each role's repeated read.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	for _, pool := range []string{"session", "transaction"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			t.Run(fmt.Sprintf("%s/%s", pool, mode), func(t *testing.T) {
				t.Parallel()
				s := newSetup(t)
				us := s.roles("alice", "bob")
				s.exec("CREATE TABLE docs (owner name NOT NULL, body text)",
					fmt.Sprintf("INSERT INTO docs VALUES ('%s', 'a1'), ('%s', 'a2'), ('%s', 'b1')", us[0].name, us[0].name, us[1].name),
					"ALTER TABLE docs ENABLE ROW LEVEL SECURITY",
					"CREATE POLICY own ON docs USING (owner = current_user)",
					fmt.Sprintf("GRANT SELECT ON docs TO %s, %s", us[0].name, us[1].name))
				inst := s.start(pool, s.cacheYAML("rules", "")+ruleYAML("docs"), us...)
				const q = "SELECT body FROM docs ORDER BY body"
				want := map[string]string{us[0].name: "[a1]\n[a2]\n", us[1].name: "[b1]\n"}
				conns := map[string]*pgx.Conn{}
				for _, u := range us {
					conns[u.name] = connect(t, inst.DSN(u.name, u.password, s.db), execMode(mode))
				}
				p := s.proof(t, inst)
				// alice fills, bob must not get alice's entry, then each hits its own.
				for round := 0; round < 3; round++ {
					for _, u := range us {
						if got := queryText(t, conns[u.name], q); got != want[u.name] {
							t.Fatalf("round %d: %s got %q, want %q", round, u.name, got, want[u.name])
						}
					}
				}
				p.expect("rounds 2 and 3 of both roles", 4)
				// The superuser bypasses RLS and sees everything.
				super := s.viaSluice(inst, execMode(mode))
				if got := queryText(t, super, q); got != "[a1]\n[a2]\n[b1]\n" {
					t.Fatalf("superuser got %q", got)
				}
			})
		}
	}
}
