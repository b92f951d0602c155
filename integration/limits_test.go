package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

func TestMaxClientConn(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		c := baseConf(t, mode).set("max_client_conn", 2)
		s := startSluice(t, c.YAML(t))
		dsn := s.DSN(pg.User, pg.Password, itDB)
		a := connect(t, dsn)
		b := connect(t, dsn)
		wantPgErr(t, loginErr(dsn), "53300", "sorry, too many clients already")
		// Refused logins don't use up slots.
		wantPgErr(t, loginErr(dsn), "53300", "sorry, too many clients already")
		for _, cl := range []*pgx.Conn{a, b} {
			if got := scalar[int](t, cl, "SELECT 1"); got != 1 {
				t.Fatal(got)
			}
		}
		a.Close(context.Background())
		eventually(t, 5*time.Second, func() string {
			if err := loginErr(dsn); err != nil {
				return "a slot freed by a leaving client is not reused: " + err.Error()
			}
			return ""
		})
	})
}

// TestQueryWaitTimeout: with the only server held by an open transaction,
// another client's query fails with 53300 after query_wait_timeout, and
// the same client succeeds once the server is free.
func TestQueryWaitTimeout(t *testing.T) {
	pg := testenv.PG(t)
	for _, proto := range []string{"extended", "simple"} {
		t.Run(proto, func(t *testing.T) {
			c := baseConf(t, "transaction")
			c.set("pool.default_pool_size", 1)
			c.set("pool.query_wait_timeout", "500ms")
			s := startSluice(t, c.YAML(t))
			dsn := s.DSN(pg.User, pg.Password, itDB)
			opt := func(*pgx.ConnConfig) {}
			if proto == "simple" {
				opt = simpleProtocol
			}
			holder := connect(t, dsn, opt)
			waiter := connect(t, dsn, opt)
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT 1")
			start := time.Now()
			_, err := waiter.Exec(ctxT(t, 10*time.Second), "SELECT 2")
			elapsed := time.Since(start)
			wantPgErr(t, err, "53300", "")
			if elapsed < 400*time.Millisecond || elapsed > 3*time.Second {
				t.Fatalf("failed after %s, want about query_wait_timeout (500ms)", elapsed)
			}
			// The waiter's connection stays usable.
			done := make(chan error, 1)
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, err := holder.Exec(ctxT(t, 10*time.Second), "COMMIT")
				done <- err
			}()
			if got := scalar[int](t, waiter, "SELECT 3"); got != 3 {
				t.Fatal(got)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := scalar[int](t, holder, "SELECT 4"); got != 4 {
				t.Fatal(got)
			}
		})
	}
}

// TestServerResetQuery: in session mode a server goes back to the pool
// only after server_reset_query (DISCARD ALL): the next client on the
// same backend sees none of the previous client's session state.
func TestServerResetQuery(t *testing.T) {
	pg := testenv.PG(t)
	c := baseConf(t, "session")
	c.set("pool.default_pool_size", 1)
	s := startSluice(t, c.YAML(t))
	dsn := s.DSN(pg.User, pg.Password, itDB)
	direct := connect(t, superDSN(t, itDB))
	defaultTimeout := scalar[string](t, direct, "SHOW statement_timeout")

	a := connect(t, dsn, simpleProtocol)
	pidA := scalar[int32](t, a, "SELECT pg_backend_pid()")
	mustExec(t, a, "SET statement_timeout = 1234")
	mustExec(t, a, "PREPARE leftover AS SELECT 1")
	mustExec(t, a, "CREATE TEMP TABLE leftover_tmp (v int)")
	mustExec(t, a, "SELECT set_config('sluice.custom', 'dirty', false)")
	if got := scalar[string](t, a, "SHOW statement_timeout"); got != "1234ms" {
		t.Fatalf("SET did not take: %s", got)
	}
	a.Close(context.Background())

	b := connect(t, dsn, simpleProtocol)
	if pid := scalar[int32](t, b, "SELECT pg_backend_pid()"); pid != pidA {
		t.Fatalf("pool size 1 gave another backend (%d, was %d): the test proves nothing", pid, pidA)
	}
	checks := map[string]string{
		"SHOW statement_timeout":                                                    defaultTimeout,
		"SELECT count(*)::text FROM pg_prepared_statements":                         "0",
		"SELECT coalesce(to_regclass('pg_temp.leftover_tmp')::text, 'gone')":        "gone",
		"SELECT coalesce(current_setting('sluice.custom', true), '')":               "",
		"SELECT count(*)::text FROM pg_prepared_statements WHERE name = 'leftover'": "0",
	}
	for sql, want := range checks {
		if got := scalar[string](t, b, sql); got != want {
			t.Errorf("%s: %q, want %q (the previous client's state leaked)", sql, got, want)
		}
	}
	// And the new client can use the same names.
	mustExec(t, b, "PREPARE leftover AS SELECT 2")
	if got := scalar[int](t, b, "EXECUTE leftover"); got != 2 {
		t.Fatal(got)
	}
}
