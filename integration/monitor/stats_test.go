package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/monitor"
)

// TestStatsReflectTraffic: /api/v1/stats shows the pool of the test's
// database with its user, mode and size, the connected clients, a server
// held idle in a transaction by a client inside BEGIN, and growing totals.
func TestStatsReflectTraffic(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT, func(b string) string { return b })
	before := e.stats()

	var conns []*pgx.Conn
	for range 3 {
		c := e.connect(pgx.QueryExecModeSimpleProtocol)
		count(t, c, "SELECT * FROM t WHERE id <= 5")
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := conns[0].Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "UPDATE t SET v = 'x' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	s := e.stats()
	var pool *monitor.PoolStats
	for i := range s.Pools {
		if s.Pools[i].Database == e.db {
			pool = &s.Pools[i]
		}
	}
	if pool == nil {
		t.Fatalf("no pool for database %s in %+v", e.db, s.Pools)
	}
	if pool.User != e.pg.User || pool.Mode != "transaction" || pool.Size != 10 {
		t.Errorf("pool %s: user %q mode %q size %d, want %q transaction 10", e.db, pool.User, pool.Mode, pool.Size, e.pg.User)
	}
	if pool.ServersIdleInTx+pool.ServersActive < 1 {
		t.Errorf("pool %s: a client holds a transaction but servers_idle_in_tx=%d active=%d", e.db, pool.ServersIdleInTx, pool.ServersActive)
	}
	if pool.ServersIdleInTx != 1 {
		t.Errorf("pool %s: servers_idle_in_tx %d with a client idle inside BEGIN", e.db, pool.ServersIdleInTx)
	}
	// Like PgBouncer's cl_active: a client linked to a server (here inside
	// a transaction) is active.
	if pool.ClientsActive < 1 {
		t.Errorf("pool %s: clients_active %d with a client in a transaction", e.db, pool.ClientsActive)
	}
	clients := 0
	for _, c := range s.Clients {
		if c.Database == e.db && c.User == e.pg.User {
			clients++
		}
	}
	if clients != 3 {
		t.Errorf("clients of %s: %d, want 3", e.db, clients)
	}
	servers, inTx := 0, 0
	for _, sv := range s.Servers {
		if sv.Database == e.db {
			servers++
			if sv.TxStatus == 'T' {
				inTx++
			}
		}
	}
	if servers < 1 || inTx != 1 {
		t.Errorf("servers of %s: %d, %d with tx_status T; want >= 1 and 1", e.db, servers, inTx)
	}
	if s.Totals.ClientsTotal < 3 || s.Totals.ServersTotal < 1 {
		t.Errorf("totals: clients %d servers %d", s.Totals.ClientsTotal, s.Totals.ServersTotal)
	}
	if s.Totals.Queries < before.Totals.Queries+4 {
		t.Errorf("totals.queries %d -> %d after 4 statements", before.Totals.Queries, s.Totals.Queries)
	}
	if !s.MonitorEnabled {
		t.Errorf("monitor_enabled false by default")
	}

	// Committing gives the server back: no more transaction on it.
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		inTx = 0
		for _, sv := range e.stats().Servers {
			if sv.Database == e.db && sv.TxStatus == 'T' {
				inTx++
			}
		}
		if inTx == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if inTx != 0 {
		t.Errorf("after COMMIT %d servers still report tx_status T", inTx)
	}
	for _, c := range conns {
		c.Close(ctx)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		clients = 0
		for _, c := range e.stats().Clients {
			if c.Database == e.db {
				clients++
			}
		}
		if clients == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if clients != 0 {
		t.Errorf("after closing all clients %d remain in /api/v1/stats", clients)
	}
}
