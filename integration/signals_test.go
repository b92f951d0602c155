package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

func reloaded(r map[string]any) bool { return r["message"] == "config reloaded" }

func reloadRefused(r map[string]any) bool {
	return strings.Contains(fmt.Sprint(r["message"]), "reload refused")
}

// TestReload: SIGHUP applies a changed file (a new user can log in, the
// pool grows) and keeps the old config when the new file is invalid.
func TestReload(t *testing.T) {
	pg := testenv.PG(t)
	c := baseConf(t, "transaction")
	delete(c, "auth")
	c.addUser(pg.User, pg.Password)
	c.set("pool.default_pool_size", 1)
	c.set("pool.query_wait_timeout", "500ms")
	s := startSluice(t, c.YAML(t))
	super := s.DSN(pg.User, pg.Password, itDB)
	newUser := s.DSN(itUser, itPass, itDB)

	wantPgErr(t, loginErr(newUser), "28P01", authFailed(itUser))
	holder := connect(t, super)
	waiter := connect(t, super)
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT 1")
	_, err := waiter.Exec(ctxT(t, 10*time.Second), "SELECT 1")
	wantPgErr(t, err, "53300", "")

	// A valid change: one more user, a bigger pool.
	c.addUser(itUser, itPass)
	c.set("pool.default_pool_size", 2)
	s.Rewrite(c.YAML(t))
	s.Signal(syscall.SIGHUP)
	if s.WaitLog(t, 10*time.Second, reloaded) == nil {
		t.Fatal("no \"config reloaded\" in the log after SIGHUP")
	}
	if err := loginErr(newUser); err != nil {
		t.Fatalf("the added user cannot log in after reload: %v", err)
	}
	if got := scalar[int](t, waiter, "SELECT 5"); got != 5 { // while holder still holds one
		t.Fatal(got)
	}

	// An invalid file: the old config stays, the process keeps serving and
	// says why.
	s.Rewrite(c.YAML(t) + "pool_sise: 3\n")
	s.Signal(syscall.SIGHUP)
	rec := s.WaitLog(t, 10*time.Second, reloadRefused)
	if rec == nil {
		t.Fatal("no \"reload refused\" in the log after SIGHUP with an invalid file")
	}
	if msg := fmt.Sprint(rec["error"]); !strings.Contains(msg, "pool_sise") {
		t.Errorf("the refusal does not name the bad key: %v", rec)
	}
	if s.Exited(200 * time.Millisecond) {
		t.Fatal("sluice exited on an invalid reload")
	}
	mustExec(t, holder, "COMMIT")
	if err := loginErr(newUser); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	if got := scalar[int](t, waiter, "SELECT 6"); got != 6 {
		t.Fatal(got)
	}
}

// TestShutdown: on SIGTERM Sluice stops accepting, lets a transaction in
// flight commit, ends idle clients, ends a transaction that outlives
// shutdown_timeout (rolling it back), and exits 0.
func TestShutdown(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		c := baseConf(t, mode).set("shutdown_timeout", "3s")
		s := startSluice(t, c.YAML(t))
		dsn := s.DSN(pg.User, pg.Password, itDB)
		direct := connect(t, superDSN(t, itDB))
		table := uniq("shutdown")
		mustExec(t, direct, fmt.Sprintf("CREATE TABLE %s (who text)", table))
		t.Cleanup(func() { dropTable(t, table) })

		finisher := connect(t, dsn)
		straggler := connect(t, dsn)
		idle := connect(t, dsn)
		for _, cl := range []*pgx.Conn{finisher, straggler} {
			mustExec(t, cl, "BEGIN")
		}
		mustExec(t, finisher, fmt.Sprintf("INSERT INTO %s VALUES ('finisher')", table))
		mustExec(t, straggler, fmt.Sprintf("INSERT INTO %s VALUES ('straggler')", table))

		start := time.Now()
		s.Signal(syscall.SIGTERM)
		// New connections are refused.
		eventually(t, 2*time.Second, func() string {
			if err := loginErr(dsn); err == nil {
				return "a new client logged in after SIGTERM"
			}
			return ""
		})
		// The idle client is disconnected.
		eventually(t, 2*time.Second, func() string {
			if _, err := idle.Exec(ctxT(t, time.Second), "SELECT 1"); err == nil {
				return "an idle client is still served after SIGTERM"
			}
			return ""
		})
		// The transaction in flight can finish.
		mustExec(t, finisher, fmt.Sprintf("INSERT INTO %s VALUES ('finisher 2')", table))
		mustExec(t, finisher, "COMMIT")
		if s.Exited(0) {
			t.Fatal("exited while a transaction was open")
		}
		if !s.Exited(8 * time.Second) {
			t.Fatal("still running 8s after SIGTERM with shutdown_timeout 3s")
		}
		elapsed := time.Since(start)
		if elapsed < 2500*time.Millisecond {
			t.Fatalf("exited after %s, before shutdown_timeout (3s), with a transaction open", elapsed)
		}
		if s.err != nil {
			t.Fatalf("exit status: %v", s.err)
		}
		var got []string
		for _, r := range rows(t, direct, fmt.Sprintf("SELECT who FROM %s ORDER BY who", table)) {
			got = append(got, fmt.Sprint(r[0]))
		}
		if strings.Join(got, ",") != "finisher,finisher 2" {
			t.Fatalf("committed rows %v, want the finisher's only", got)
		}
		if _, err := straggler.Exec(context.Background(), "COMMIT"); err == nil {
			t.Fatal("the straggler's COMMIT succeeded after shutdown")
		}
		eventually(t, 5*time.Second, func() string {
			n := scalar[int](t, direct, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", itDB)
			if n > 0 {
				return fmt.Sprintf("%d transactions left open on the server", n)
			}
			return ""
		})
	})
}
