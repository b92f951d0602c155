package proxy_test

// Pipelines through Sluice: what a client sends in one batch reaches the
// server without Sluice waiting in between, and the replies are what
// PostgreSQL sends directly, message for message, in both pool modes.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// pipelineShape says how the statements of a 1,000-statement batch are
// prepared: unnamed, named with four SQL texts shared by many names
// (Sluice's shared server-side names), or named with a distinct text each
// (more than max_prepared_statements, so Sluice closes some mid-batch).
type pipelineShape int

const (
	unnamed pipelineShape = iota
	namedShared
	namedDistinct
)

func (s pipelineShape) String() string {
	return [...]string{"unnamed", "named-shared", "named-distinct"}[s]
}

// pipelineStatement is statement i of the batch: SQL, parameters and
// whether the client describes the portal.
func pipelineStatement(i, failAt int, shape pipelineShape) (sql string, params []string, describe bool) {
	switch i % 4 {
	case 0:
		sql, params = "INSERT INTO items VALUES ($1::int, $2::text)", []string{fmt.Sprint(i), fmt.Sprint("name-", i)}
	case 1:
		sql, params, describe = "SELECT id, name FROM items WHERE id = $1::int", []string{fmt.Sprint(i - 1)}, true
	case 2:
		sql, params = "UPDATE items SET name = name || '!' WHERE id = $1::int", []string{fmt.Sprint(i - 2)}
	case 3:
		sql, describe = "SELECT count(*), sum(id), max(name) FROM items", true
	}
	if i == failAt {
		// A duplicate key: the row of statement i-3 exists.
		sql, params, describe = "INSERT INTO items VALUES ($1::int, $2::text)", []string{fmt.Sprint(i - 3), "dup"}, false
	}
	if shape == namedDistinct {
		sql += fmt.Sprintf(" /* %d */", i)
	}
	return sql, params, describe
}

func stmtName(i int, shape pipelineShape) string {
	if shape == unnamed {
		return ""
	}
	return fmt.Sprintf("s%d", i)
}

// runPipeline creates the table, sends n statements and one Sync in one
// write, then (named shapes) runs every SELECT statement again in a second
// batch, and returns everything the client received.
func runPipeline(t *testing.T, dsn string, n, failAt int, shape pipelineShape) []string {
	c := dialRaw(t, dsn)
	var tr []string
	c.query("DROP TABLE IF EXISTS items; CREATE TABLE items (id int PRIMARY KEY, name text)")
	var batch []pgproto3.FrontendMessage
	for i := range n {
		sql, params, desc := pipelineStatement(i, failAt, shape)
		name := stmtName(i, shape)
		batch = append(batch, msgParse(name, sql), msgBind(name, params...))
		if desc {
			batch = append(batch, msgDescribePortal())
		}
		batch = append(batch, msgExecute())
	}
	tr = append(tr, c.roundTrip(append(batch, msgSync())...)...)
	tr = append(tr, c.query("SELECT count(*), coalesce(sum(id), 0), count(*) FILTER (WHERE name LIKE '%!') FROM items")...)
	if shape != unnamed {
		batch = batch[:0]
		for i := range n {
			if i%4 == 1 || i%4 == 3 {
				_, params, _ := pipelineStatement(i, failAt, shape)
				batch = append(batch, msgBind(stmtName(i, shape), params...), msgExecute())
			}
		}
		tr = append(tr, c.roundTrip(append(batch, msgSync())...)...)
	}
	return tr
}

// TestPipeline1000 sends 1,000 statements in one Sync, all succeeding or
// with the 500th failing, and compares the replies with PostgreSQL's.
func TestPipeline1000(t *testing.T) {
	t.Parallel()
	for _, shape := range []pipelineShape{unnamed, namedShared, namedDistinct} {
		for _, failAt := range []int{-1, 499} {
			name := shape.String() + "/all-succeed"
			if failAt >= 0 {
				name = shape.String() + "/500th-fails"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := freshDB(t)
				hs := map[string]*sluiceHarness{}
				for _, mode := range poolModes {
					hs[mode] = startSluice(t, mode, 2)
				}
				direct := runPipeline(t, directDSN(hs["session"].pg, db), 1000, failAt, shape)
				checkPipelineTranscript(t, direct, failAt)
				for _, mode := range poolModes {
					sameTranscript(t, mode, direct, runPipeline(t, hs[mode].dsn(db), 1000, failAt, shape))
				}
			})
		}
	}
}

// checkPipelineTranscript makes sure the direct run is what the test
// means: 1,000 answers, or an error at the 500th and nothing after it.
func checkPipelineTranscript(t *testing.T, tr []string, failAt int) {
	t.Helper()
	completes, dups, missing := 0, 0, 0
	for _, m := range tr {
		switch {
		case strings.HasPrefix(m, "CommandComplete INSERT"), strings.HasPrefix(m, "CommandComplete UPDATE"), strings.HasPrefix(m, "CommandComplete SELECT"):
			completes++
		case strings.HasPrefix(m, "ErrorResponse ERROR 23505"):
			dups++
		case strings.HasPrefix(m, "ErrorResponse ERROR 26000") && failAt >= 0:
			// The second batch binds a statement whose Parse was skipped.
			missing++
		case strings.HasPrefix(m, "ErrorResponse"):
			t.Fatalf("direct run: unexpected error %s", m)
		}
	}
	if failAt < 0 && (dups+missing != 0 || completes < 1000) {
		t.Fatalf("direct run: %d completions, %d errors; want at least 1000 and none", completes, dups+missing)
	}
	if failAt >= 0 && (dups != 1 || completes < failAt) {
		t.Fatalf("direct run: %d completions, %d duplicate-key errors; want %d and 1", completes, dups, failAt)
	}
}

// TestPipelineWithFlush parses and describes with Flush, reads those
// replies, then binds and executes with Sync, as drivers that need the
// row description before binding do. In transaction mode the server stays
// linked from the Flush to the Sync even while another client wants one.
func TestPipelineWithFlush(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	run := func(t *testing.T, dsn string) []string {
		a, b := dialRaw(t, dsn), dialRaw(t, dsn)
		h := holder{b}
		var tr []string
		for _, name := range []string{"fq", ""} {
			a.send(msgParse(name, "SELECT $1::int + 1 AS n, 'x'::text AS s"), msgDescribeStmt(name), msgFlush())
			tr = append(tr, a.recvN(3)...)
			h.hold()
			a.send(msgBind(name, "41"), msgDescribePortal(), msgExecute(), msgFlush())
			tr = append(tr, a.recvN(4)...)
			a.send(msgBind(name, "1"), msgExecute(), msgSync())
			tr = append(tr, a.untilReady(1)...)
			h.release()
		}
		// A Flush with nothing to answer, then a Sync.
		a.send(msgFlush())
		tr = append(tr, a.roundTrip(msgSync())...)
		return tr
	}
	h := startSluice(t, "session", 2)
	direct := run(t, directDSN(h.pg, db))
	want := []string{"ParseComplete", "ParameterDescription [23]", "RowDescription [n:23:0 s:25:0]",
		"BindComplete", "RowDescription [n:23:0 s:25:0]", "DataRow [42 x]", "CommandComplete SELECT 1",
		"BindComplete", "DataRow [2 x]", "CommandComplete SELECT 1", "ReadyForQuery I"}
	sameTranscript(t, "direct", append(append(append([]string{}, want...), want...), "ReadyForQuery I"), direct)
	for _, mode := range poolModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := startSluice(t, mode, 2)
			sameTranscript(t, "flush", direct, run(t, h.dsn(db)))
		})
	}
}

// TestPgxBatch1000 sends a pgx batch of 1,000 queries (pgx prepares the
// distinct texts, then binds and executes them all in one pipeline) in
// both modes and checks every result.
func TestPgxBatch1000(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	for _, mode := range poolModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := startSluice(t, mode, 2)
			c := connect(t, h.dsn(db))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for round := range 3 {
				b := &pgx.Batch{}
				for i := range 1000 {
					switch i % 3 {
					case 0:
						b.Queue("SELECT $1::int * 2", i)
					case 1:
						b.Queue("SELECT $1::text || '-' || $2::int", "v", i)
					case 2:
						b.Queue("SELECT g FROM generate_series(1, $1::int) g", i%5)
					}
				}
				res := c.SendBatch(ctx, b)
				for i := range 1000 {
					switch i % 3 {
					case 0:
						var v int
						if err := res.QueryRow().Scan(&v); err != nil || v != i*2 {
							t.Fatalf("round %d query %d: %v %d", round, i, err, v)
						}
					case 1:
						var v string
						if err := res.QueryRow().Scan(&v); err != nil || v != fmt.Sprint("v-", i) {
							t.Fatalf("round %d query %d: %v %q", round, i, err, v)
						}
					case 2:
						rows, err := res.Query()
						if err != nil {
							t.Fatalf("round %d query %d: %v", round, i, err)
						}
						got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
						if err != nil || len(got) != i%5 {
							t.Fatalf("round %d query %d: %v %v", round, i, err, got)
						}
					}
				}
				if err := res.Close(); err != nil {
					t.Fatalf("round %d: close batch: %v", round, err)
				}
			}
		})
	}
}
