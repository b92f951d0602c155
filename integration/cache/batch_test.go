package cache_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestBatchSeveralExecutes: a pgx Batch of cacheable selects (several
// Bind/Execute in one Sync) is answered from the cache the second time,
// every unit a hit, with the same results, in both pool modes.
func TestBatchSeveralExecutes(t *testing.T) {
	t.Parallel()
	for _, pool := range []string{"session", "transaction"} {
		t.Run(pool, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.exec("CREATE TABLE t (id int PRIMARY KEY, v text)",
				"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 30) g")
			inst := s.start(pool, s.cacheYAML("rules", "")+ruleYAML("t"))
			conn := s.viaSluice(inst)
			ctx := context.Background()
			run := func() []string {
				b := &pgx.Batch{}
				b.Queue("SELECT v FROM t WHERE id = $1", 1)
				b.Queue("SELECT v FROM t WHERE id = $1", 2)
				b.Queue("SELECT count(*) FROM t WHERE id > $1", 10)
				br := conn.SendBatch(ctx, b)
				defer br.Close()
				var out []string
				for i := 0; i < 3; i++ {
					var v string
					if i == 2 {
						var n int64
						if err := br.QueryRow().Scan(&n); err != nil {
							t.Fatalf("batch %d: %v", i, err)
						}
						v = string(rune('0' + n/10))
					} else if err := br.QueryRow().Scan(&v); err != nil {
						t.Fatalf("batch %d: %v", i, err)
					}
					out = append(out, v)
				}
				return out
			}
			p := s.proof(t, inst)
			first := run() // prepares each statement, then the batch fills
			p.expect("first batch", 0)
			// Changed behind Sluice's back: only a cached answer stays old.
			s.exec("UPDATE t SET v = 'changed' WHERE id IN (1, 2)", "DELETE FROM t WHERE id > 25")
			second := run()
			if d := p.delta(mHits, "level", "l1"); d < 3 {
				t.Fatalf("second batch: l1 hits moved by %v, want >= 3", d)
			}
			if local, _ := p.hits(); local < 1 {
				t.Fatalf("second batch: no cache hit recorded for the database")
			}
			if len(first) != 3 || first[0] != "v1" || first[1] != "v2" || first[2] != "2" {
				t.Fatalf("unexpected batch answer %q", first)
			}
			for i := range first {
				if first[i] != second[i] {
					t.Fatalf("cached batch differs: %q vs %q", second, first)
				}
			}
		})
	}
}

// TestPortalSuspendedNotStored: an Execute with a row limit (PortalSuspended)
// is never stored as if it were the whole result: the following unlimited
// Execute of the same statement is a miss with every row, and only its own
// repeat hits.
func TestPortalSuspendedNotStored(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
	inst := s.start("transaction", s.cacheYAML("rules", "")+ruleYAML("t"))
	via := rawConnect(t, inst.DSN(s.pg.User, s.pg.Password, s.db))
	direct := rawConnect(t, s.pg.DSN(s.db))
	const q = "SELECT id FROM t ORDER BY id"
	limited := execUnit{sql: q, maxRows: 3}
	full := execUnit{sql: q}
	p := s.proof(t, inst)
	for i := 0; i < 3; i++ {
		w := via.extended(limited)
		if !w.equal(direct.extended(limited)) {
			t.Fatalf("limited execute differs from direct: %v", w)
		}
		if w[len(w)-2][0] != 's' {
			t.Fatalf("limited execute did not end in PortalSuspended: %v", w)
		}
	}
	p.expect("limited executes", 0)
	want := direct.extended(full)
	got := via.extended(full)
	if !got.equal(want) {
		t.Fatalf("full execute after limited ones: %s", got.firstDiff(want))
	}
	p.expect("first full execute", 0)
	if got := via.extended(full); !got.equal(want) {
		t.Fatalf("full hit differs: %s", got.firstDiff(want))
	}
	p.expect("second full execute", 1)
	// The limited form still goes to PostgreSQL and is still cut.
	if w := via.extended(limited); w[len(w)-2][0] != 's' || countType(w, 'D') != 3 {
		t.Fatalf("limited execute after a stored full result: %v", w)
	}
	p.expect("limited after full", 1)
}

func countType(w wire, typ byte) int {
	n := 0
	for _, m := range w {
		if m[0] == typ {
			n++
		}
	}
	return n
}

// TestBatchSizesOnOneSession: one client sends batches of different sizes,
// cacheable and not, one after the other, so each batch's units are looked
// up in the array the previous batch used. Every answer is the one its own
// batch asks for: a cached batch answers from the cache (rows changed
// behind Sluice's back stay old), a batch with an uncacheable unit goes to
// PostgreSQL whole (and its locking read invalidates the table).
func TestBatchSizesOnOneSession(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE t (id int PRIMARY KEY, v text)",
		"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g")
	inst := s.start("transaction", s.cacheYAML("rules", "")+ruleYAML("t"))
	conn := s.viaSluice(inst)
	ctx := context.Background()
	const plain = "SELECT v FROM t WHERE id = $1"
	const locking = "SELECT v FROM t WHERE id = $1 FOR UPDATE"
	type q struct {
		sql string
		id  int
	}
	run := func(what string, qs ...q) []string {
		t.Helper()
		b := &pgx.Batch{}
		for _, x := range qs {
			b.Queue(x.sql, x.id)
		}
		br := conn.SendBatch(ctx, b)
		out := make([]string, len(qs))
		for i := range qs {
			if err := br.QueryRow().Scan(&out[i]); err != nil {
				t.Fatalf("%s, statement %d: %v", what, i, err)
			}
		}
		if err := br.Close(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return out
	}
	same := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	}
	three := []q{{plain, 1}, {plain, 2}, {plain, 3}}
	same("three, filling", run("three, filling", three...), "v1", "v2", "v3")
	same("one, filling", run("one, filling", q{plain, 4}), "v4")
	s.exec("UPDATE t SET v = 'new' || id")
	p := s.proof(t, inst)
	same("three, cached", run("three, cached", three...), "v1", "v2", "v3")
	same("one, cached", run("one, cached", q{plain, 4}), "v4")
	p.expect("cached batches", 2) // a request each
	if d := p.delta(mHits, "level", "l1"); d != 4 {
		t.Fatalf("cached batches: l1 hits moved by %v, want 4 (one a unit)", d)
	}
	same("mixed", run("mixed", q{plain, 1}, q{locking, 2}), "new1", "new2")
	same("five, partly cached", run("five, partly cached", q{plain, 5}, q{plain, 1}, q{plain, 6}, q{plain, 2}, q{plain, 7}),
		"new5", "new1", "new6", "new2", "new7")
	// The locking read counts as a write to t: t's entries are gone, and
	// the five-unit batch fills them again.
	s.exec("UPDATE t SET v = 'newer' || id")
	same("two, cached", run("two, cached", q{plain, 7}, q{plain, 1}), "new7", "new1")
	same("three, refilled", run("three, refilled", three...), "newer1", "newer2", "newer3")
}
