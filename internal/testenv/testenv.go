// Package testenv gives tests the PostgreSQL and Redis that
// scripts/testenv.sh started. A test asks for a server; where its variable is
// unset the test skips naming the variable, unless SLUICE_TEST_REQUIRED=1 (set
// by `make test` and CI), where a missing server is a failure: green means
// tested.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Postgres describes the test cluster; User is a superuser.
type Postgres struct {
	Host, Port, User, Password string
	Bin, Data                  string
}

// DSN is a libpq/pgx URL for database db as the superuser.
func (p Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", p.User, p.Password, p.Host, p.Port, db)
}

// Addr is host:port.
func (p Postgres) Addr() string { return p.Host + ":" + p.Port }

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("SLUICE_TEST_REQUIRED") == "1" {
			t.Fatalf("%s is not set but SLUICE_TEST_REQUIRED=1: run `scripts/testenv.sh start` (make test does)", name)
		}
		t.Skipf("%s not set: run `scripts/testenv.sh start` and source .testenv/env", name)
	}
	return v
}

// PG returns the test PostgreSQL or skips/fails as the package doc says.
func PG(t testing.TB) Postgres {
	t.Helper()
	return Postgres{
		Host:     need(t, "SLUICE_TEST_PGHOST"),
		Port:     need(t, "SLUICE_TEST_PGPORT"),
		User:     need(t, "SLUICE_TEST_PGUSER"),
		Password: os.Getenv("SLUICE_TEST_PGPASSWORD"),
		Bin:      os.Getenv("SLUICE_TEST_PGBIN"),
		Data:     os.Getenv("SLUICE_TEST_PGDATA"),
	}
}

// RedisAddr returns host:port of the test Redis or skips/fails.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return need(t, "SLUICE_TEST_REDIS_ADDR")
}

// RedisBin is the redis-server binary, for tests that start their own
// (kill-and-restart tests).
func RedisBin(t testing.TB) string {
	t.Helper()
	return need(t, "SLUICE_TEST_REDIS_BIN")
}

// Missing skips a test whose program or server is absent, naming what to
// install, or fails it under SLUICE_TEST_REQUIRED=1.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("SLUICE_TEST_REQUIRED") == "1" {
		t.Fatalf("%s (SLUICE_TEST_REQUIRED=1: a missing program is a failure)", what)
	}
	t.Skip(what)
}
