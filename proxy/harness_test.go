package proxy_test

// The harness runs a real Sluice in the test process in front of the test
// PostgreSQL (internal/testenv) and gives tests two kinds of client: pgx for
// what drivers do, and a raw pgproto3 connection that sees every message, so
// a test can run one script directly against PostgreSQL and once through
// Sluice and compare the replies message for message.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/proxy"
	"github.com/sluice-proxy/sluice/rewrite"
)

// sluiceHarness is one in-process Sluice and the PostgreSQL behind it.
type sluiceHarness struct {
	t    testing.TB
	pg   testenv.Postgres
	addr string
}

// startSluice runs Sluice on 127.0.0.1:0 with every database ("*") routed to
// the test PostgreSQL, the superuser as its only login, the given pool mode
// and size, and the rule engine with no rules (as cmd/sluice runs it);
// opts adjust the config further. Shutdown is a cleanup.
func startSluice(t testing.TB, mode string, poolSize int, opts ...func(*proxy.Config)) *sluiceHarness {
	t.Helper()
	pg := testenv.PG(t)
	port, err := strconv.Atoi(pg.Port)
	if err != nil {
		t.Fatalf("SLUICE_TEST_PGPORT %q: %v", pg.Port, err)
	}
	cfg := proxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Databases = []proxy.DatabaseConfig{{Name: "*", Host: pg.Host, Port: port}}
	cfg.Auth.Users = []proxy.UserConfig{{Name: pg.User, Password: pg.Password}}
	cfg.Pool.Mode = mode
	cfg.Pool.DefaultPoolSize = poolSize
	cfg.Pool.QueryWaitTimeout = 20 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	lw := &testLogWriter{t: t}
	srv, err := proxy.New(cfg, zerolog.New(lw).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	// The binary always installs the rule engine (internal/app); its
	// analysis is what tells Sluice which statements change session state.
	eng, err := rewrite.NewEngine(rewrite.DefaultConfig())
	if err != nil {
		t.Fatalf("rewrite.NewEngine: %v", err)
	}
	srv.SetRewriter(eng)
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		lw.stop()
	})
	return &sluiceHarness{t: t, pg: pg, addr: srv.Addr().String()}
}

// dsn is a pgx/libpq URL for db through Sluice; extra are more URL query
// parameters (e.g. "timezone=UTC").
func (h *sluiceHarness) dsn(db string, extra ...string) string {
	u := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", h.pg.User, h.pg.Password, h.addr, db)
	for _, e := range extra {
		u += "&" + e
	}
	return u
}

// directDSN is the same URL straight to PostgreSQL.
func directDSN(pg testenv.Postgres, db string, extra ...string) string {
	u := pg.DSN(db)
	for _, e := range extra {
		u += "&" + e
	}
	return u
}

// testLogWriter sends Sluice's log to the test log until the test's
// cleanup has stopped Sluice; later lines (none expected) are dropped
// rather than panic the test binary.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// dumpProxyGoroutines logs the stacks of Sluice's goroutines, for a test
// that found a client hanging.
func dumpProxyGoroutines(t testing.TB) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sluice/proxy.(") {
			t.Log(g)
		}
	}
}

// uniqueName is a fresh lower-case identifier with the given prefix.
func uniqueName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// freshDB creates an empty database for one test and drops it at the end.
func freshDB(t testing.TB) string {
	t.Helper()
	pg := testenv.PG(t)
	name := uniqueName("sluice_tx")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			t.Errorf("drop database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	return name
}

// connect opens a pgx connection (default exec mode: statement cache) and
// closes it at the end of the test.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// mustExec runs SQL on c or fails the test.
func mustExec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.LastIndex(dsn[:i], ":"); j > 0 {
			return dsn[:j] + ":***" + dsn[i:]
		}
	}
	return dsn
}

// rawConn is a client speaking the protocol message by message: logged in
// by pgconn (so SCRAM is pgx's), then hijacked.
type rawConn struct {
	t       testing.TB
	conn    net.Conn
	fe      *pgproto3.Frontend
	writing chan error // the write in flight, if any
}

// dialRaw logs in to dsn and returns the raw connection, closed at the end
// of the test.
func dialRaw(t testing.TB, dsn string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dsn), err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatalf("hijack: %v", err)
	}
	c := &rawConn{t: t, conn: hc.Conn, fe: hc.Frontend}
	t.Cleanup(func() {
		c.wait()
		c.conn.Close()
	})
	return c
}

// send writes msgs as one batch from a goroutine, so that a pipeline larger
// than the socket buffers cannot deadlock against the replies the test has
// not read yet. The next read waits for the write to finish.
func (c *rawConn) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	c.wait()
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			c.t.Fatalf("encode %T: %v", m, err)
		}
	}
	c.conn.SetDeadline(time.Now().Add(60 * time.Second))
	done := make(chan error, 1)
	c.writing = done
	go func() {
		_, err := c.conn.Write(buf)
		done <- err
	}()
}

// wait finishes the write in flight.
func (c *rawConn) wait() {
	if c.writing == nil {
		return
	}
	err := <-c.writing
	c.writing = nil
	if err != nil {
		c.t.Errorf("write: %v", err)
	}
}

// recv reads one message and describes it.
func (c *rawConn) recv() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			dumpProxyGoroutines(c.t)
		}
		c.t.Fatalf("receive: %v", err)
	}
	return describe(m)
}

// recvN reads exactly n messages.
func (c *rawConn) recvN(n int) []string {
	c.t.Helper()
	out := make([]string, 0, n)
	for range n {
		out = append(out, c.recv())
	}
	return out
}

// untilReady reads up to and including the n-th ReadyForQuery, then
// finishes the write in flight.
func (c *rawConn) untilReady(n int) []string {
	c.t.Helper()
	var out []string
	for n > 0 {
		m := c.recv()
		out = append(out, m)
		if strings.HasPrefix(m, "ReadyForQuery") {
			n--
		}
	}
	c.wait()
	return out
}

// roundTrip sends msgs and reads the replies up to as many ReadyForQuery as
// msgs hold Sync and Query messages.
func (c *rawConn) roundTrip(msgs ...pgproto3.FrontendMessage) []string {
	c.t.Helper()
	n := 0
	for _, m := range msgs {
		switch m.(type) {
		case *pgproto3.Sync, *pgproto3.Query:
			n++
		}
	}
	c.send(msgs...)
	return c.untilReady(n)
}

// query runs one simple Query and returns the replies.
func (c *rawConn) query(sql string) []string {
	c.t.Helper()
	return c.roundTrip(&pgproto3.Query{String: sql})
}

// value runs a simple Query expected to return one row of one column.
func (c *rawConn) value(sql string) string {
	c.t.Helper()
	var vals []string
	for _, m := range c.query(sql) {
		switch {
		case strings.HasPrefix(m, "DataRow "):
			vals = append(vals, strings.TrimPrefix(m, "DataRow "))
		case strings.HasPrefix(m, "ErrorResponse"):
			c.t.Fatalf("%s: %s", sql, m)
		}
	}
	if len(vals) != 1 {
		c.t.Fatalf("%s: want one row, got %q", sql, vals)
	}
	return strings.Trim(vals[0], "[]")
}

// describe renders a backend message with what a client can observe of it,
// so two transcripts compare as string slices. Errors keep severity, code
// and message; settings reports keep name and value.
func describe(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag)
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = string(v)
			}
		}
		return "DataRow [" + strings.Join(vals, " ") + "]"
	case *pgproto3.RowDescription:
		f := make([]string, len(m.Fields))
		for i, fd := range m.Fields {
			f[i] = fmt.Sprintf("%s:%d:%d", fd.Name, fd.DataTypeOID, fd.Format)
		}
		return "RowDescription [" + strings.Join(f, " ") + "]"
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs)
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("ErrorResponse %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.NoticeResponse:
		return fmt.Sprintf("NoticeResponse %s %s", m.Code, m.Message)
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus)
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name + "=" + m.Value
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
}

// sameTranscript fails the test where got (through Sluice) differs from
// want (PostgreSQL directly), naming the first differing message.
func sameTranscript(t testing.TB, what string, want, got []string) {
	t.Helper()
	n := min(len(want), len(got))
	for i := range n {
		if want[i] != got[i] {
			t.Fatalf("%s: message %d differs:\n direct: %s\n sluice: %s\n(direct has %d messages, sluice %d)",
				what, i, want[i], got[i], len(want), len(got))
		}
	}
	if len(want) != len(got) {
		var extra []string
		if len(want) > n {
			extra = want[n:min(len(want), n+5)]
		} else {
			extra = got[n:min(len(got), n+5)]
		}
		t.Fatalf("%s: direct sent %d messages, sluice %d; first extra: %q", what, len(want), len(got), extra)
	}
}

// Message constructors keep the scripts short.

func msgParse(name, sql string, oids ...uint32) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: sql, ParameterOIDs: oids}
}

// msgBind binds statement stmt to the unnamed portal with text parameters.
func msgBind(stmt string, params ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{PreparedStatement: stmt}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return b
}

func msgExecute() *pgproto3.Execute { return &pgproto3.Execute{} }

func msgDescribeStmt(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'S', Name: name}
}

func msgDescribePortal() *pgproto3.Describe { return &pgproto3.Describe{ObjectType: 'P'} }

func msgCloseStmt(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }

func msgSync() *pgproto3.Sync { return &pgproto3.Sync{} }

func msgFlush() *pgproto3.Flush { return &pgproto3.Flush{} }

func msgQuery(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }

// poolModes are the pool modes every pipeline test runs in.
var poolModes = []string{"session", "transaction"}
