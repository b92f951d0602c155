package cache_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestHitPerProtocolAndPoolMode: the second identical read is a cache hit
// (counted by the instance for this database and in the metrics) with the
// same result, over the simple protocol and every pgx extended mode, in
// both pool modes. A direct write made behind Sluice's back (no logical
// replication) stays invisible: the answer really came from the cache.
func TestHitPerProtocolAndPoolMode(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"cache_statement", pgx.QueryExecModeCacheStatement},
		{"exec", pgx.QueryExecModeExec},
		{"cache_describe", pgx.QueryExecModeCacheDescribe},
	}
	for _, pool := range []string{"session", "transaction"} {
		for _, m := range modes {
			t.Run(pool+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				s := newSetup(t)
				s.exec("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)",
					"INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 50) g")
				inst := s.start(pool, s.cacheYAML("rules", "")+ruleYAML("items"))
				c := s.viaSluice(inst, execMode(m.mode))
				const q = "SELECT id, name, price FROM items WHERE id <= $1 ORDER BY id"
				p := s.proof(t, inst)
				first := queryText(t, c, q, 10)
				p.expect("first read", 0)
				if d := p.delta(mMisses); d < 1 {
					t.Fatalf("first read: misses moved by %v, want >= 1", d)
				}
				s.exec("UPDATE items SET name = 'changed behind sluice' WHERE id = 1")
				second := queryText(t, c, q, 10)
				p.expect("second read", 1)
				if second != first {
					t.Fatalf("hit differs from the first answer:\n%s\nvs\n%s", second, first)
				}
				// A different parameter is a different key.
				other := queryText(t, c, q, 3)
				p.expect("other parameter", 1)
				if other == first {
					t.Fatalf("a different parameter got the same answer")
				}
			})
		}
	}
}
