package rewrite

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// testDB creates a fresh database loaded with testdata/schema.sql and drops
// it when the test ends.
func testDB(t *testing.T) *pgx.Conn {
	t.Helper()
	pgEnv := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgEnv.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	name := fmt.Sprintf("sluice_rewrite_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
		admin.Close(ctx)
	})
	conn, err := pgx.Connect(ctx, pgEnv.DSN(name))
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	schema, err := os.ReadFile("testdata/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(schema), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("load schema: %v", err)
	}
	return conn
}

// rowsOf runs sql and returns each row rendered as text.
func rowsOf(ctx context.Context, conn *pgx.Conn, sql string, args []any, simple bool) ([]string, error) {
	if simple {
		args = append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out, rows.Err()
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestCorpusOnPostgres runs every runnable corpus SELECT as written and as
// rewritten with max_rows 10, over the extended protocol (with the case's
// parameters) and, when it has none, the simple protocol. Where the limit
// does not bind the rows must be the same multiset; where it binds the
// rewritten query must return exactly 10 rows, all from the original
// result, and the Decision must announce MaxRows 10 so the proxy sends the
// truncation notice. Parameter types Postgres infers must not change.
func TestCorpusOnPostgres(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	e := corpusEngine(t)
	ran, bound := 0, 0
	for file, cases := range loadCorpus(t) {
		for _, c := range cases {
			if !c.Run {
				continue
			}
			d := e.Process(c.SQL, Session{})
			if len(d.Statements) != 1 || (d.Statements[0].Kind != "select" && d.Statements[0].Kind != "values") {
				t.Errorf("%s: %s: run: true but not a single SELECT", file, c.Name)
				continue
			}
			for _, simple := range []bool{false, true} {
				if simple && len(c.Args) > 0 {
					continue
				}
				orig, err := rowsOf(ctx, conn, c.SQL, c.Args, simple)
				if err != nil {
					t.Errorf("%s: %s: original fails: %v", file, c.Name, err)
					continue
				}
				got, err := rowsOf(ctx, conn, d.SQL, c.Args, simple)
				if err != nil {
					t.Errorf("%s: %s: rewritten %q fails: %v", file, c.Name, d.SQL, err)
					continue
				}
				ran++
				if len(orig) < corpusLimit {
					if !slices.Equal(sortedCopy(orig), sortedCopy(got)) {
						t.Errorf("%s: %s: limit does not bind but rows differ\noriginal:  %v\nrewritten: %v", file, c.Name, orig, got)
					}
					continue
				}
				bound++
				if !d.Rewritten {
					// A smaller limit of the client's own is kept, so the
					// original already returns at most 10 rows.
					if len(orig) > corpusLimit {
						t.Errorf("%s: %s: %d rows but no limit injected", file, c.Name, len(orig))
					}
					continue
				}
				withTies := strings.Contains(strings.ToUpper(c.SQL), "WITH TIES")
				if len(got) != corpusLimit && !(withTies && len(got) >= corpusLimit) {
					t.Errorf("%s: %s: limit binds: want %d rows, got %d (%q)", file, c.Name, corpusLimit, len(got), d.SQL)
				}
				if d.MaxRows != corpusLimit {
					t.Errorf("%s: %s: MaxRows = %d, want %d", file, c.Name, d.MaxRows, corpusLimit)
				}
				pool := sortedCopy(orig)
				for _, r := range got {
					i, ok := slices.BinarySearch(pool, r)
					if !ok {
						t.Errorf("%s: %s: rewritten returned a row the original does not have: %s", file, c.Name, r)
						break
					}
					pool = slices.Delete(pool, i, i+1)
				}
			}
			if len(c.Args) > 0 && d.Rewritten {
				a, err := conn.Prepare(ctx, "", c.SQL)
				if err != nil {
					t.Errorf("%s: %s: prepare original: %v", file, c.Name, err)
					continue
				}
				b, err := conn.Prepare(ctx, "", d.SQL)
				if err != nil {
					t.Errorf("%s: %s: prepare rewritten: %v", file, c.Name, err)
					continue
				}
				if !slices.Equal(a.ParamOIDs, b.ParamOIDs) {
					t.Errorf("%s: %s: parameter types changed by the rewrite: %v -> %v", file, c.Name, a.ParamOIDs, b.ParamOIDs)
				}
			}
		}
	}
	if ran < 100 {
		t.Errorf("only %d runs of corpus SELECTs, want >= 100", ran)
	}
	if bound < 20 {
		t.Errorf("only %d runs where the limit binds, want >= 20", bound)
	}
	t.Logf("%d runs, %d with a binding limit", ran, bound)
}

// TestHintReachesPostgres checks that a hint rule's comment is part of the
// text Postgres runs: pg_stat_activity shows a backend's own current query.
func TestHintReachesPostgres(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Rules = []RuleConfig{{Name: "hint-activity", Match: MatchConfig{RelationsAny: []string{"pg_stat_activity"}}, Hint: "SeqScan(pg_stat_activity)"}}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Process("SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()", Session{})
	var q string
	if err := conn.QueryRow(ctx, d.SQL).Scan(&q); err != nil {
		t.Fatalf("%q: %v", d.SQL, err)
	}
	if !strings.HasPrefix(q, "/*+ SeqScan(pg_stat_activity) */ ") {
		t.Errorf("pg_stat_activity.query = %q, want the hint comment first", q)
	}
}

// TestReplaceOnPostgres runs a replace rule's output with the client's
// parameter and a constant carried over.
func TestReplaceOnPostgres(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Rules = []RuleConfig{{Name: "to-view", Match: MatchConfig{RelationsAny: []string{"auth_user"}, Kind: []string{"select"}},
		Replace: &ReplaceConfig{Pattern: `FROM auth_user WHERE`, With: `FROM active_users WHERE`}}}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sql := "SELECT id FROM auth_user WHERE id < $1 AND email LIKE '%example.org' ORDER BY id"
	d := e.Process(sql, Session{})
	want := "SELECT id FROM active_users WHERE id < $1 AND email LIKE '%example.org' ORDER BY id"
	if d.SQL != want {
		t.Fatalf("rewritten = %q, want %q", d.SQL, want)
	}
	if d.Statements[0].Reads[0].Name != "active_users" {
		t.Errorf("analysis of the replacement reads %v, want active_users", d.Statements[0].Reads)
	}
	all, err := rowsOf(ctx, conn, sql, []any{20}, false)
	if err != nil {
		t.Fatal(err)
	}
	active, err := rowsOf(ctx, conn, d.SQL, []any{20}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) == 0 || len(active) >= len(all) {
		t.Errorf("replacement returned %d rows of %d: the view filters inactive users, want fewer but some", len(active), len(all))
	}
}
