package rules_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// modes are the pool modes tests run in where the mode matters.
var modes = []string{"transaction", "session"}

var dbSeq atomic.Int64

// env is one test's database and a Sluice in front of it.
type env struct {
	pg   testenv.Postgres
	db   string
	inst *sluicetest.Instance
}

// newDB creates a fresh database (dropped when the test ends) and runs
// setup in it directly on PostgreSQL.
func newDB(t *testing.T, setup string) (testenv.Postgres, string) {
	t.Helper()
	pg := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	name := fmt.Sprintf("sluice_rules_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
		admin.Close(ctx)
	})
	if setup != "" {
		c, err := pgx.Connect(ctx, pg.DSN(name))
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, setup, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	return pg, name
}

// start creates a database with setup and a Sluice in pool mode with the
// extra YAML (rules:, max_rows:, rewrite:) appended to the base config.
func start(t *testing.T, mode, setup, extra string) *env {
	t.Helper()
	pg, db := newDB(t, setup)
	inst := sluicetest.Start(t, sluicetest.Base(pg, mode)+extra)
	return &env{pg: pg, db: db, inst: inst}
}

// notices collects the NoticeResponses a connection receives.
type notices struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notices) add(_ *pgconn.PgConn, m *pgconn.Notice) {
	n.mu.Lock()
	n.msgs = append(n.msgs, m.Severity+" "+m.Code+" "+m.Message)
	n.mu.Unlock()
}

// take returns and clears what arrived so far.
func (n *notices) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.msgs
	n.msgs = nil
	return out
}

// connOpts adjusts a pgx config before connecting.
type connOpts func(*pgx.ConnConfig)

func withApp(name string) connOpts {
	return func(c *pgx.ConnConfig) { c.RuntimeParams["application_name"] = name }
}

func withMode(m pgx.QueryExecMode) connOpts {
	return func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = m }
}

func connectDSN(t *testing.T, dsn string, opts ...connOpts) (*pgx.Conn, *notices) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	n := &notices{}
	cfg.OnNotice = n.add
	for _, o := range opts {
		o(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, n
}

// sluice connects through Sluice as the superuser.
func (e *env) sluice(t *testing.T, opts ...connOpts) (*pgx.Conn, *notices) {
	t.Helper()
	return connectDSN(t, e.inst.DSN(e.pg.User, e.pg.Password, e.db), opts...)
}

// direct connects to PostgreSQL itself.
func (e *env) direct(t *testing.T, opts ...connOpts) (*pgx.Conn, *notices) {
	t.Helper()
	return connectDSN(t, e.pg.DSN(e.db), opts...)
}

// rowsOf runs sql and renders each row as text.
func rowsOf(ctx context.Context, c *pgx.Conn, sql string, args ...any) ([]string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out, rows.Err()
}

// mustRows is rowsOf failing the test on error.
func mustRows(t *testing.T, c *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	out, err := rowsOf(context.Background(), c, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// scalar returns the single value of sql.
func scalar[T any](t *testing.T, c *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// pgErr returns the PostgreSQL error in err, or nil.
func pgErr(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// hasNotice reports whether one of msgs names the rule.
func hasNotice(msgs []string, rule string) bool {
	for _, m := range msgs {
		if strings.Contains(m, `"`+rule+`"`) {
			return true
		}
	}
	return false
}
