package integration

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type connResult struct {
	conn *pgx.Conn
	err  error
}

func connectOrErr(ctx context.Context, dsn string) connResult {
	c, err := pgx.Connect(ctx, dsn)
	return connResult{c, err}
}

// connect opens a pgx connection that the test closes at cleanup.
func connect(t testing.TB, dsn string, opts ...func(*pgx.ConnConfig)) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func simpleProtocol(c *pgx.ConnConfig) { c.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol }

func redact(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(dsn)"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustExec runs sql and fails the test on error.
func mustExec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(ctxT(t, 30*time.Second), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// rows runs a query and returns every row as Go values.
func rows(t testing.TB, c *pgx.Conn, sql string, args ...any) [][]any {
	t.Helper()
	r, err := c.Query(ctxT(t, 30*time.Second), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(r, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// scalar runs a one-value query.
func scalar[T any](t testing.TB, c *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := c.QueryRow(ctxT(t, 30*time.Second), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// pgErr returns the PostgreSQL error inside err, or nil.
func pgErr(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// wantPgErr fails unless err is a PostgreSQL error with code and, when
// msg is not empty, exactly that message.
func wantPgErr(t testing.TB, err error, code, msg string) {
	t.Helper()
	pe := pgErr(err)
	if pe == nil {
		t.Fatalf("got %v (%T), want SQLSTATE %s", err, err, code)
	}
	if pe.Code != code || (msg != "" && pe.Message != msg) {
		t.Fatalf("got %s %q, want %s %q", pe.Code, pe.Message, code, msg)
	}
}

func sameRows(t testing.TB, what string, want, got [][]any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: through Sluice\n%v\ndirect\n%v", what, got, want)
	}
}

// eventually polls f until it returns "" or timeout; the last message is
// the failure.
func eventually(t testing.TB, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
