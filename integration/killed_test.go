package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestClientKilledMidTransaction: a client that vanishes (socket closed,
// no Terminate) inside a transaction holding a lock, or in the middle of
// a long statement, leaves no lock, no open transaction and no running
// statement on the server.
func TestClientKilledMidTransaction(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		direct := connect(t, superDSN(t, itDB))
		table := uniq("killed")
		mustExec(t, direct, fmt.Sprintf("CREATE TABLE %s (id int)", table))
		t.Cleanup(func() { dropTable(t, table) })
		appName := uniq("victim")

		clean := func() string {
			var locks, open, active int
			err := direct.QueryRow(ctxT(t, 10*time.Second), `
SELECT (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = $1),
       (SELECT count(*) FROM pg_stat_activity WHERE datname = $2 AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()),
       (SELECT count(*) FROM pg_stat_activity WHERE datname = $2 AND query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid())`,
				table, itDB).Scan(&locks, &open, &active)
			if err != nil {
				return err.Error()
			}
			if locks+open+active > 0 {
				return fmt.Sprintf("%d locks on %s, %d idle-in-transaction backends, %d running pg_sleep(60)", locks, table, open, active)
			}
			return ""
		}
		cases := []struct {
			name string
			run  func(c *pgx.Conn, bg *sync.WaitGroup)
		}{
			{"idle in transaction with a lock", func(c *pgx.Conn, _ *sync.WaitGroup) {
				mustExec(t, c, "BEGIN")
				mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (1)", table))
				mustExec(t, c, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table))
			}},
			{"mid-statement in a transaction", func(c *pgx.Conn, bg *sync.WaitGroup) {
				mustExec(t, c, "BEGIN")
				mustExec(t, c, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table))
				bg.Go(func() { c.Exec(ctxT(t, 30*time.Second), "SELECT pg_sleep(60)") })
				time.Sleep(300 * time.Millisecond)
			}},
			{"mid-statement outside a transaction", func(c *pgx.Conn, bg *sync.WaitGroup) {
				bg.Go(func() { c.Exec(ctxT(t, 30*time.Second), "SELECT pg_sleep(60)") })
				time.Sleep(300 * time.Millisecond)
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := connect(t, s.DSN(pg.User, pg.Password, itDB, "application_name="+appName), simpleProtocol)
				var bg sync.WaitGroup
				tc.run(c, &bg)
				if msg := clean(); msg == "" && tc.name != "mid-statement outside a transaction" {
					t.Fatal("the test did not take its lock")
				}
				// Kill the client: close the socket under pgx.
				c.PgConn().Conn().Close()
				// The statement's goroutine sees the socket go and closes
				// the pgx connection; wait for it before the cleanup does.
				bg.Wait()
				eventually(t, 5*time.Second, clean)
				// The table is free for others, and the insert was rolled back.
				if n := scalar[int](t, direct, fmt.Sprintf("SELECT count(*) FROM %s", table)); n != 0 {
					t.Fatalf("%d rows of the killed transaction committed", n)
				}
				// Sluice keeps serving.
				other := connect(t, s.DSN(pg.User, pg.Password, itDB))
				if got := scalar[int](t, other, "SELECT 1"); got != 1 {
					t.Fatal(got)
				}
			})
		}
	})
}
