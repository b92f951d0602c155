package rewrite

import (
	"os"
	"path/filepath"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"gopkg.in/yaml.v3"
)

// FuzzProcess feeds arbitrary text through analysis and every rewrite. It
// must never panic, and when the input parses the rewritten text must parse
// into the same number of statements: a rewrite must never turn valid SQL
// into a syntax error.
func FuzzProcess(f *testing.F) {
	files, _ := filepath.Glob("testdata/corpus/*.yaml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var cases []corpusCase
		if err := yaml.Unmarshal(b, &cases); err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
	for _, s := range []string{
		"SELECT * FROM t FETCH FIRST +50 ROWS ONLY", "SELECT * FROM t LIMIT 1e2", "VALUES (1) OFFSET 2 FOR UPDATE",
		"SELECT 1 UNION SELECT 2 FOR UPDATE", "SELECT * FROM t LIMIT 0x40", "SELECT * FROM t LIMIT $1::int",
		"SELECT * FROM t LIMIT ($1)", "SELECT * FROM t LIMIT 50 -- x", "with x as (select 1) (select * from x limit 50)",
		"select * from t limit all offset 3 for update", "/*+ a /* nested */ b */ SELECT 1", "SELECT 'x'\n 'y' FROM t WHERE a = $1",
		"SELECT * FROM orders WHERE a = $1 AND b = 'c' -- $1", "SELECT $1; SELECT 2 FROM t LIMIT $1",
	} {
		f.Add(s)
	}
	n := 7
	cfg := DefaultConfig()
	cfg.MaxRows = 25
	cfg.Engine.AnalysisCacheBytes = 4 << 20
	cfg.Rules = []RuleConfig{
		{Name: "hint", Match: MatchConfig{Kind: []string{"select", "update"}}, Hint: "SeqScan(t) Leading((a b))", Continue: true},
		{Name: "replace", Match: MatchConfig{Pattern: `\$1`}, Replace: &ReplaceConfig{Pattern: `\$1\b`, With: `($1)`}, Continue: true},
		{Name: "limit", Match: MatchConfig{RelationsAny: []string{"t", "orders"}}, MaxRows: &n},
	}
	e, err := NewEngine(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		d := e.Process(sql, Session{User: "fuzz"})
		if d == nil {
			t.Fatal("nil decision")
		}
		if !d.Rewritten {
			if d.SQL != sql {
				t.Fatalf("not rewritten but SQL changed: %q -> %q", sql, d.SQL)
			}
			return
		}
		before, err := pg.Parse(sql)
		if err != nil {
			t.Fatalf("rewrote text that does not parse: %q -> %q", sql, d.SQL)
		}
		after, err := pg.Parse(d.SQL)
		if err != nil {
			t.Fatalf("rewrite broke the SQL: %q -> %q: %v", sql, d.SQL, err)
		}
		if len(before.Stmts) != len(after.Stmts) {
			t.Fatalf("statement count changed %d -> %d: %q -> %q", len(before.Stmts), len(after.Stmts), sql, d.SQL)
		}
	})
}

// FuzzShape: a text analyzed through the shape of another text with other
// literal values must get exactly the analysis and rewrite a full parse
// gives it.
func FuzzShape(f *testing.F) {
	for _, s := range shapeCorpus(f) {
		f.Add(s)
	}
	withShapes := corpusEngine(f)
	full := corpusEngine(f)
	full.shapes = nil
	f.Fuzz(func(t *testing.T, sql string) {
		v, ok := variant(sql)
		if !ok {
			return
		}
		withShapes.Process(sql, Session{})
		got := withShapes.Process(v, Session{})
		want := full.Process(v, Session{})
		gb, _ := yaml.Marshal(describe(got))
		wb, _ := yaml.Marshal(describe(want))
		if string(gb) != string(wb) || got.SQL != want.SQL {
			t.Fatalf("%q (variant of %q):\n--- full\n%s%s\n--- shape\n%s%s", v, sql, wb, want.SQL, gb, got.SQL)
		}
	})
}
