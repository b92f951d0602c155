package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// pgAdmin connects to the test PostgreSQL as its superuser.
func pgAdmin(t *testing.T) (*pgconn.PgConn, func(ctx context.Context) (*pgconn.PgConn, error)) {
	t.Helper()
	pg := testenv.PG(t)
	dial := func(ctx context.Context) (*pgconn.PgConn, error) {
		cfg, err := pgconn.ParseConfig(pg.DSN("postgres"))
		if err != nil {
			return nil, err
		}
		cfg.RuntimeParams["application_name"] = "sluice-auth-test"
		return pgconn.ConnectConfig(ctx, cfg)
	}
	conn, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, dial
}

func pgExec(t *testing.T, conn *pgconn.PgConn, sql string) []*pgconn.Result {
	t.Helper()
	res, err := conn.Exec(context.Background(), sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// tempRole creates a LOGIN role with a unique name, dropped at cleanup.
func tempRole(t *testing.T, conn *pgconn.PgConn, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	pgExec(t, conn, "CREATE ROLE "+name+" LOGIN")
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+name).ReadAll() })
	return name
}

func rolpassword(t *testing.T, conn *pgconn.PgConn, role string) string {
	t.Helper()
	res := pgExec(t, conn, "SELECT rolpassword FROM pg_authid WHERE rolname = "+quote(role))
	if len(res[0].Rows) != 1 || res[0].Rows[0][0] == nil {
		t.Fatalf("no rolpassword for %s", role)
	}
	return string(res[0].Rows[0][0])
}

// TestPostgresVerifiers checks our verifiers against the ones PostgreSQL
// itself stores, including passwords that exercise each SASLprep step,
// and logs a real client in against PostgreSQL's verifier.
func TestPostgresVerifiers(t *testing.T) {
	conn, _ := pgAdmin(t)
	tests := []struct {
		password string
		login    bool // pgx's client normalizes like PostgreSQL for this one
	}{
		{"p", true},
		{"correct horse battery staple", true},
		{"p\u00e4ss", true},    // composed ä: NFKC keeps it
		{"pa\u0308ss", true},   // decomposed: NFKC composes it
		{"\u2168x", false},     // ROMAN NUMERAL NINE: NFKC gives "IXx"
		{"I\u00adX", false},    // soft hyphen: mapped to nothing
		{"a\u00a0b", false},    // no-break space: mapped to space
		{"\u05d0\u05d1", true}, // RandALCat only: allowed
		{"a\u05d0", true},      // mixed bidi: prohibited, raw bytes used
		{"x\u0221", true},      // unassigned in Unicode 3.2: raw bytes used
		{"tab\there", true},    // ASCII control: raw bytes
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.password), func(t *testing.T) {
			role := tempRole(t, conn, "sluice_v")
			pgExec(t, conn, "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+role+" PASSWORD "+quote(tt.password))
			stored := rolpassword(t, conn, role)

			// Recompute with PostgreSQL's salt and iteration count.
			var iter int
			var saltB64 string
			head, _, _ := strings.Cut(strings.TrimPrefix(stored, "SCRAM-SHA-256$"), "$")
			itStr, saltB64, _ := strings.Cut(head, ":")
			iter, _ = strconv.Atoi(itStr)
			salt, err := base64.StdEncoding.DecodeString(saltB64)
			if err != nil {
				t.Fatalf("salt of %q: %v", stored, err)
			}
			if got := auth.SCRAMVerifier(tt.password, salt, iter); got != stored {
				t.Fatalf("SCRAMVerifier = %s\nPostgreSQL stores %s", got, stored)
			}

			sec := secretOf(t, role, stored)
			for _, m := range []auth.Method{auth.MethodSCRAM, auth.MethodPassword} {
				if !tt.login && m == auth.MethodSCRAM {
					continue
				}
				addr, results := fakeServer(t, m, func(string) (auth.Secret, bool) { return sec, true })
				if err := connect(t, addr, role, tt.password); err != nil {
					t.Fatalf("%s login with PostgreSQL's verifier: %v", m, err)
				}
				if err := <-results; err != nil {
					t.Fatal(err)
				}
			}

			pgExec(t, conn, "SET password_encryption = 'md5'; ALTER ROLE "+role+" PASSWORD "+quote(tt.password))
			if got, stored := auth.MD5Verifier(role, tt.password), rolpassword(t, conn, role); got != stored {
				t.Fatalf("MD5Verifier = %s, PostgreSQL stores %s", got, stored)
			}
		})
	}
	res := pgExec(t, conn, "SELECT 'md5' || md5('secret' || 'alice')")
	if got := string(res[0].Rows[0][0]); got != auth.MD5Verifier("alice", "secret") {
		t.Fatalf("PostgreSQL md5 %s != MD5Verifier", got)
	}
}

func TestAuthQueryPostgres(t *testing.T) {
	conn, dial := pgAdmin(t)
	role := tempRole(t, conn, "sluice_aq")
	pgExec(t, conn, "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+role+" PASSWORD 'pw1'")
	nopw := tempRole(t, conn, "sluice_nopw")
	ghost := "sluice_ghost_" + role[len("sluice_aq_"):]
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+ghost).ReadAll() })

	q := &auth.AuthQuery{Dial: dial, TTL: time.Hour}
	t.Cleanup(func() { q.Close() })
	ctx := context.Background()

	// login checks that the looked-up secret accepts password.
	login := func(password string) error {
		t.Helper()
		sec, found, err := q.Lookup(ctx, role)
		if err != nil || !found {
			t.Fatalf("Lookup(%s) = %v, %v", role, found, err)
		}
		addr, results := fakeServer(t, auth.MethodSCRAM, func(string) (auth.Secret, bool) { return sec, true })
		err = connect(t, addr, role, password)
		<-results
		return err
	}

	sec, found, err := q.Lookup(ctx, role)
	if err != nil || !found || sec.Kind() != "scram-sha-256" {
		t.Fatalf("Lookup(%s) = %s, %v, %v", role, sec, found, err)
	}
	if err := login("pw1"); err != nil {
		t.Fatalf("login with pg_shadow's verifier: %v", err)
	}
	for _, user := range []string{nopw, ghost} {
		if _, found, err := q.Lookup(ctx, user); err != nil || found {
			t.Fatalf("Lookup(%s) = %v, %v; want not found", user, found, err)
		}
	}

	// Cached, positive and negative, until invalidated.
	pgExec(t, conn, "ALTER ROLE "+role+" PASSWORD 'pw2'; CREATE ROLE "+ghost+" LOGIN PASSWORD 'boo'")
	if err := login("pw1"); err != nil {
		t.Fatalf("cached secret should still accept the old password: %v", err)
	}
	if _, found, _ := q.Lookup(ctx, ghost); found {
		t.Fatal("negative result was not cached")
	}
	q.Invalidate()
	if err := login("pw2"); err != nil {
		t.Fatalf("after Invalidate, new password: %v", err)
	}
	if err := login("pw1"); err == nil {
		t.Fatal("after Invalidate, old password still accepted")
	}
	if _, found, _ := q.Lookup(ctx, ghost); !found {
		t.Fatal("after Invalidate, new role not found")
	}

	// The lookup connection is killed: the next lookup re-dials.
	pgExec(t, conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sluice-auth-test' AND pid <> pg_backend_pid()")
	q.Invalidate()
	if _, found, err := q.Lookup(ctx, role); err != nil || !found {
		t.Fatalf("Lookup after the server dropped the connection = %v, %v", found, err)
	}

	// Concurrent lookups share one connection (run with -race).
	q.Invalidate()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, found, err := q.Lookup(ctx, role); err != nil || !found {
				t.Errorf("concurrent Lookup = %v, %v", found, err)
			}
		})
	}
	wg.Wait()

	q.Close()
	if _, _, err := q.Lookup(ctx, "x"); err == nil {
		t.Fatal("Lookup after Close succeeded")
	}
}

func TestAuthQueryErrors(t *testing.T) {
	_, dial := pgAdmin(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"sql error", "SELECT nosuchcolumn FROM pg_shadow WHERE usename = $1", "nosuchcolumn"},
		{"one column", "SELECT passwd FROM pg_shadow WHERE usename = $1", "want 2"},
		{"bad verifier", "SELECT $1::text, 'SCRAM-SHA-256$x:y$z:w'", "iteration count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &auth.AuthQuery{Query: tt.query, Dial: dial, TTL: time.Hour}
			defer q.Close()
			for range 2 { // errors are not cached: both attempts query
				_, found, err := q.Lookup(ctx, "postgres")
				if err == nil || found || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Lookup = %v, %v; want error containing %q", found, err, tt.want)
				}
			}
		})
	}
}

func TestAuthQueryCacheBound(t *testing.T) {
	conn, dial := pgAdmin(t)
	q := &auth.AuthQuery{Dial: dial, TTL: time.Hour, MaxEntries: 3}
	defer q.Close()
	ctx := context.Background()
	for i := range 10 {
		if _, _, err := q.Lookup(ctx, "nobody_"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Eviction is oldest first: a role created after its negative result
	// was cached is seen once three newer users pushed that entry out.
	role := tempRole(t, conn, "sluice_evict")
	pgExec(t, conn, "ALTER ROLE "+role+" PASSWORD 'x'")
	if _, found, _ := q.Lookup(ctx, role); !found {
		t.Fatal("new role not found")
	}
	pgExec(t, conn, "DROP ROLE "+role)
	if _, found, _ := q.Lookup(ctx, role); !found {
		t.Fatal("fresh entry evicted too early")
	}
	for i := range 3 {
		q.Lookup(ctx, "nobody_more_"+strconv.Itoa(i))
	}
	if _, found, _ := q.Lookup(ctx, role); found {
		t.Fatal("cache kept more than MaxEntries entries: dropped role still found")
	}
}
