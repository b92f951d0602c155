package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestRandomizedConsistency: several clients increment and read shared
// counters for a bounded time through two Sluice instances sharing Redis,
// each client switching instance and protocol at random. Counters only
// grow, so a read lower than a value the same client already wrote or read
// is a stale answer. The run must also have been served from the cache.
func TestRandomizedConsistency(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	const counters = 8
	s.exec("CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO counters SELECT g, 0 FROM generate_series(1, %d) g", counters))
	redis := testenv.RedisAddr(t)
	cfg := s.cacheYAML("rules", redis) + ruleYAML("counters")
	insts := []*sluicetest.Instance{s.start("transaction", cfg), s.start("transaction", cfg)}
	pa, pb := s.proof(t, insts[0]), s.proof(t, insts[1])

	const clients = 6
	stop := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	var mu sync.Mutex
	var reads, writes int
	for c := 0; c < clients; c++ {
		// Each client holds a connection per instance and protocol.
		var conns []*pgx.Conn
		for _, inst := range insts {
			for _, m := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
				conns = append(conns, s.viaSluice(inst, execMode(m)))
			}
		}
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			seen := make([]int64, counters+1) // highest value this client wrote or read
			ctx := context.Background()
			r, w := 0, 0
			for time.Now().Before(stop) {
				conn := conns[rng.IntN(len(conns))]
				id := 1 + rng.IntN(counters)
				var v int64
				if rng.IntN(10) == 0 {
					if err := conn.QueryRow(ctx, "UPDATE counters SET v = v + 1 WHERE id = $1 RETURNING v", id).Scan(&v); err != nil {
						errs <- fmt.Errorf("client %d write: %w", c, err)
						return
					}
					w++
				} else {
					if err := conn.QueryRow(ctx, "SELECT v FROM counters WHERE id = $1", id).Scan(&v); err != nil {
						errs <- fmt.Errorf("client %d read: %w", c, err)
						return
					}
					r++
					if v < seen[id] {
						errs <- fmt.Errorf("client %d: counter %d read %d after having seen %d (stale)", c, id, v, seen[id])
						return
					}
				}
				seen[id] = max(seen[id], v)
			}
			mu.Lock()
			reads, writes = reads+r, writes+w
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ha, _ := pa.hits()
	hb, _ := pb.hits()
	t.Logf("%d reads, %d writes; cache hits: instance A %d, instance B %d", reads, writes, ha, hb)
	if ha == 0 || hb == 0 {
		t.Fatalf("the cache served nothing on one instance (A %d, B %d hits): the check proves nothing", ha, hb)
	}
}
