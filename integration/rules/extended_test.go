package rules_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPreparedStatements: with rules on, pgx's statement cache, named
// prepared statements (also inside a transaction) keep working, each
// execution capped, and a rewritten LIMIT $1 keeps the parameter types
// PostgreSQL infers for the original.
func TestPreparedStatements(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, maxRowsSetup, maxRowsRules)
			ctx := context.Background()
			s, n := e.sluice(t)
			for i := 0; i < 50; i += 7 {
				rows := mustRows(t, s, "SELECT x FROM t WHERE x > $1", i)
				want := min(10, 50-i)
				if len(rows) != want {
					t.Errorf("x > %d: %d rows, want %d", i, len(rows), want)
				}
				if got := hasNotice(n.take(), "cap-t"); got != (50-i >= 10) {
					t.Errorf("x > %d: notice %v, want %v", i, got, 50-i >= 10)
				}
			}
			if _, err := s.Prepare(ctx, "capped", "SELECT x FROM t WHERE x > $1 ORDER BY x"); err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 3; round++ {
				tx, err := s.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := rowsOf(ctx, tx.Conn(), "capped", 5)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if len(rows) != 10 || rows[0] != "6" {
					t.Errorf("round %d: prepared statement returned %v, want 6..15", round, rows)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				if rows := mustRows(t, s, "capped", 45); len(rows) != 5 {
					t.Errorf("round %d outside a transaction: %v, want 46..50", round, rows)
				}
			}
			d, _ := e.direct(t)
			for _, sql := range []string{"SELECT x FROM t LIMIT $1", "SELECT x FROM t WHERE x > $1", "SELECT x FROM t ORDER BY x FETCH FIRST $1 ROWS ONLY"} {
				sd, err := s.Prepare(ctx, "", sql)
				if err != nil {
					t.Fatalf("%s through Sluice: %v", sql, err)
				}
				dd, err := d.Prepare(ctx, "", sql)
				if err != nil {
					t.Fatalf("%s directly: %v", sql, err)
				}
				if !slices.Equal(sd.ParamOIDs, dd.ParamOIDs) || len(sd.Fields) != len(dd.Fields) {
					t.Errorf("%s: described params %v fields %d through Sluice, %v %d directly", sql, sd.ParamOIDs, len(sd.Fields), dd.ParamOIDs, len(dd.Fields))
				}
			}
		})
	}
}

// TestBatches: pgx batches (one pipeline) with rules on, in every exec
// mode: each SELECT capped, the write applied, the count right, a notice
// per truncated result.
func TestBatches(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, maxRowsSetup, maxRowsRules)
			for i, qm := range allModes {
				t.Run(qm.String(), func(t *testing.T) {
					s, n := e.sluice(t, withMode(qm))
					v := 100 + i
					b := &pgx.Batch{}
					b.Queue("SELECT x FROM t")
					b.Queue("SELECT x FROM t WHERE x < 3")
					b.Queue(fmt.Sprintf("INSERT INTO t VALUES (%d)", v))
					b.Queue("SELECT count(*) FROM t WHERE x = $1", v)
					b.Queue("SELECT x FROM t ORDER BY x LIMIT $1", 20)
					br := s.SendBatch(context.Background(), b)
					want := []int{10, 2, -1, 1, 10}
					for j, w := range want {
						if w < 0 {
							if _, err := br.Exec(); err != nil {
								t.Fatalf("statement %d: %v", j+1, err)
							}
							continue
						}
						rows, err := br.Query()
						if err != nil {
							t.Fatalf("statement %d: %v", j+1, err)
						}
						got := 0
						for rows.Next() {
							got++
						}
						if err := rows.Err(); err != nil {
							t.Fatalf("statement %d: %v", j+1, err)
						}
						if got != w {
							t.Errorf("statement %d: %d rows, want %d", j+1, got, w)
						}
					}
					if err := br.Close(); err != nil {
						t.Fatal(err)
					}
					if m := n.take(); len(m) != 2 || !hasNotice(m, "cap-t") {
						t.Errorf("notices %q, want two naming cap-t", m)
					}
					d, _ := e.direct(t)
					if got := scalar[int](t, d, "SELECT count(*) FROM t WHERE x = $1", v); got != 1 {
						t.Errorf("the batch's insert left %d rows, want 1", got)
					}
				})
			}
		})
	}
}
