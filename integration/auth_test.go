package integration

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// loginErr tries a login and returns the error.
func loginErr(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err == nil {
		c.Close(ctx)
	}
	return err
}

func authFailed(user string) string {
	return fmt.Sprintf("password authentication failed for user %q", user)
}

func TestAuthPlaintextUsers(t *testing.T) {
	pg := testenv.PG(t)
	for _, method := range []string{"scram-sha-256", "md5", "password"} {
		t.Run(method, func(t *testing.T) {
			c := baseConf(t, "transaction").set("auth.method", method)
			s := startSluice(t, c.YAML(t))
			if err := loginErr(s.DSN(itUser, itPass, itDB)); err != nil {
				t.Fatalf("right password refused: %v", err)
			}
			// Wrong password and unknown user get the same answer, as
			// PostgreSQL gives: nothing tells which users exist.
			wantPgErr(t, loginErr(s.DSN(itUser, "wrong", itDB)), "28P01", authFailed(itUser))
			wantPgErr(t, loginErr(s.DSN("nobody_here", "wrong", itDB)), "28P01", authFailed("nobody_here"))
			// An empty password: with method password PostgreSQL says
			// "empty password returned by client", whoever the user is.
			wantPgErr(t, loginErr(s.DSN(pg.User, "", itDB)), "28P01", "")
			if err := loginErr(s.DSN(pg.User, pg.Password, itDB)); err != nil {
				t.Fatalf("superuser refused: %v", err)
			}
		})
	}
}

// TestAuthVerifiers: users configured with the verifiers PostgreSQL stores
// (md5 and SCRAM-SHA-256), logging in to the server with server_password.
func TestAuthVerifiers(t *testing.T) {
	pg := testenv.PG(t)
	setup(t)
	direct := connect(t, superDSN(t, "postgres"))
	scram := scalar[string](t, direct, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", itUser)
	sum := md5.Sum([]byte(itPass + itUser))
	md5v := "md5" + hex.EncodeToString(sum[:])
	cases := []struct{ name, method, verifier string }{
		{"scram verifier", "scram-sha-256", scram},
		{"md5 verifier", "md5", md5v},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConf(t, "session").set("auth.method", tc.method)
			delete(c, "auth")
			c.set("auth.method", tc.method)
			c.addUser(pg.User, pg.Password)
			c.addUser(itUser, tc.verifier, "server_password", itPass)
			s := startSluice(t, c.YAML(t))
			conn := connect(t, s.DSN(itUser, itPass, itDB))
			if got := scalar[string](t, conn, "SELECT current_user"); got != itUser {
				t.Fatalf("logged in as %q", got)
			}
			wantPgErr(t, loginErr(s.DSN(itUser, itPass+"x", itDB)), "28P01", authFailed(itUser))
		})
	}
}

// TestAuthQuery: users not in the config are looked up with auth_query,
// run by a role that may read passwords only through a SECURITY DEFINER
// function (PgBouncer's recommended set-up).
func TestAuthQuery(t *testing.T) {
	pg := testenv.PG(t)
	setup(t)
	admin := connect(t, superDSN(t, itDB))
	lookupRole, lookupPass := "it_lookup", "lookup pass"
	fn := "public.it_user_lookup"
	for _, sql := range []string{
		fmt.Sprintf(`DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END$$`, lookupRole, lookupRole),
		fmt.Sprintf("ALTER ROLE %s PASSWORD %s", lookupRole, quoteLit(lookupPass)),
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s(p_user text, OUT usename name, OUT passwd text) RETURNS record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS
$$SELECT usename, passwd FROM pg_shadow WHERE usename = p_user$$`, fn),
		fmt.Sprintf("REVOKE ALL ON FUNCTION %s(text) FROM PUBLIC", fn),
		fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s(text) TO %s", fn, lookupRole),
	} {
		mustExec(t, admin, sql)
	}
	port, _ := strconv.Atoi(pg.Port)
	c := baseConf(t, "transaction")
	delete(c, "auth")
	c.set("auth.method", "scram-sha-256")
	c.set("auth.auth_query", map[string]any{
		"user": lookupRole, "password": lookupPass, "database": itDB,
		"query": fmt.Sprintf("SELECT usename, passwd FROM %s($1)", fn),
	})
	// auth_query users have no password Sluice could log in upstream with,
	// so the database entry names the server login.
	c["databases"] = []any{map[string]any{"name": "*", "host": pg.Host, "port": port, "sslmode": "disable", "user": itUser, "password": itPass}}
	s := startSluice(t, c.YAML(t))
	conn := connect(t, s.DSN(itUser, itPass, itDB))
	if got := scalar[string](t, conn, "SELECT current_user"); got != itUser {
		t.Fatalf("logged in as %q", got)
	}
	wantPgErr(t, loginErr(s.DSN(itUser, "wrong", itDB)), "28P01", authFailed(itUser))
	wantPgErr(t, loginErr(s.DSN("nobody_here", "wrong", itDB)), "28P01", authFailed("nobody_here"))
	// The lookup role itself has a password too, found the same way.
	if err := loginErr(s.DSN(lookupRole, lookupPass, itDB)); err != nil {
		t.Fatalf("lookup role refused: %v", err)
	}
}
