package cache_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestLogicalReplication: with cache.invalidation.logical_replication, a
// write made directly on PostgreSQL (not through Sluice) stops being hidden
// by a cached entry within 1 s of its commit. Without it the same write
// stays invisible (the entry is served until its TTL), which proves the
// reads really come from the cache.
func TestLogicalReplication(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE t (id int PRIMARY KEY, v int)", "INSERT INTO t VALUES (1, 0)")
	inst := s.start("transaction", s.cacheYAML("rules", "", "invalidation: {logical_replication: true}")+ruleYAML("t"))
	conn := s.viaSluice(inst, execMode(pgx.QueryExecModeExec))
	direct := s.direct()
	const q = "SELECT v FROM t WHERE id = 1"

	// The cache of a database is used once its follower streams.
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := s.proof(t, inst)
		queryInt(t, conn, q)
		if local, _ := p.hits(); local > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cache hit within 15 s: replication follower never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var worst time.Duration
	for i := 1; i <= 5; i++ {
		// Cached: two reads, the second a hit.
		queryInt(t, conn, q)
		p := s.proof(t, inst)
		if v := queryInt(t, conn, q); v != int64(i-1) {
			t.Fatalf("round %d: read %d before the write, want %d", i, v, i-1)
		}
		p.expect("cached before the direct write", 1)
		if _, err := direct.Exec(t.Context(), "UPDATE t SET v = $1 WHERE id = 1", i); err != nil {
			t.Fatal(err)
		}
		committed := time.Now()
		for {
			if v := queryInt(t, conn, q); v == int64(i) {
				break
			}
			if time.Since(committed) > time.Second {
				t.Fatalf("round %d: direct write still hidden by the cache %v after commit", i, time.Since(committed))
			}
			time.Sleep(5 * time.Millisecond)
		}
		if d := time.Since(committed); d > worst {
			worst = d
		}
	}
	t.Logf("direct writes visible through the cache after at most %v", worst)
}
