package proxy_test

// Session state in transaction mode: each client's settings follow it from
// server to server and never leak to another client; state that cannot
// follow (LISTEN, temporary tables, advisory locks) pins the client to its
// server or is refused, and a pinned server is cleaned before reuse.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/proxy"
)

// TestStartupSettingsPerClient has two clients with different TimeZone
// and application_name in their startup packets share one server and
// alternate queries, simple and prepared.
func TestStartupSettingsPerClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	type client struct{ tz, app string }
	clients := []client{{"America/New_York", "app_a"}, {"Europe/Berlin", "app_b"}}
	conns := make([]*rawConn, len(clients))
	for i, c := range clients {
		conns[i] = dialRaw(t, h.dsn(db, "timezone="+c.tz, "application_name="+c.app))
	}
	pgxConns := make([]func() (string, string), len(clients))
	for i, c := range clients {
		pc := connect(t, h.dsn(db, "timezone="+c.tz, "application_name="+c.app))
		pgxConns[i] = func() (string, string) {
			var tz, app string
			if err := pc.QueryRow(context.Background(), "SELECT current_setting($1), current_setting($2)", "TimeZone", "application_name").Scan(&tz, &app); err != nil {
				t.Fatal(err)
			}
			return tz, app
		}
	}
	for round := range 10 {
		for i, c := range clients {
			if got := conns[i].value("SHOW timezone"); got != c.tz {
				t.Fatalf("round %d client %d: timezone %q, want %q", round, i, got, c.tz)
			}
			if got := conns[i].value("SELECT current_setting('application_name')"); got != c.app {
				t.Fatalf("round %d client %d: application_name %q, want %q", round, i, got, c.app)
			}
			if tz, app := pgxConns[i](); tz != c.tz || app != c.app {
				t.Fatalf("round %d pgx client %d: %q %q, want %q %q", round, i, tz, app, c.tz, c.app)
			}
		}
	}
}

// TestSetTimeZoneFollowsClient: a client's SET TimeZone (reported with
// ParameterStatus) holds in its later transactions on either server; the
// other client keeps its own.
func TestSetTimeZoneFollowsClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	a := dialRaw(t, h.dsn(db, "timezone=UTC"))
	b := dialRaw(t, h.dsn(db, "timezone=UTC"))
	hold := holder{dialRaw(t, h.dsn(db))}
	want := dialRaw(t, directDSN(h.pg, db, "timezone=UTC")).query("SET TimeZone = 'Asia/Tokyo'")
	if !contains(want, "ParameterStatus TimeZone=Asia/Tokyo") {
		t.Fatalf("PostgreSQL did not report the change: %q", want)
	}
	sameTranscript(t, "SET", want, a.query("SET TimeZone = 'Asia/Tokyo'"))
	pids := map[string]bool{}
	for round := range 6 {
		if round%2 == 0 {
			hold.hold()
		}
		pids[a.value("SELECT pg_backend_pid()")] = true
		if tz := a.value("SHOW timezone"); tz != "Asia/Tokyo" {
			t.Fatalf("round %d: client that SET sees timezone %q", round, tz)
		}
		if tz := b.value("SHOW timezone"); tz != "UTC" {
			t.Fatalf("round %d: other client sees timezone %q", round, tz)
		}
		if round%2 == 0 {
			hold.release()
		}
	}
	if len(pids) < 2 {
		t.Fatalf("client ran on %d server(s), want 2", len(pids))
	}
	// No ParameterStatus of Sluice's own set_config reaches the client.
	for _, m := range a.query("SELECT 1") {
		if strings.HasPrefix(m, "ParameterStatus") {
			t.Fatalf("unexpected %s", m)
		}
	}
}

// TestSetSearchPathFollowsClient is the case the issue names: two clients
// with different search_path values share one server; each sees its own
// schema. SET LOCAL and a SET rolled back are not kept, as in PostgreSQL.
func TestSetSearchPathFollowsClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	admin := connect(t, directDSN(h.pg, db))
	for _, s := range []string{"sa", "sb", "sc"} {
		mustExec(t, admin, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s.t (v text); INSERT INTO %s.t VALUES ('%s')", s, s, s, s))
	}
	a, b := dialRaw(t, h.dsn(db)), dialRaw(t, h.dsn(db))
	a.query("SET search_path = sa, public")
	b.query("SET search_path TO sb")
	expect := func(what string, c *rawConn, want string) {
		t.Helper()
		if got := c.value("SELECT v FROM t"); got != want {
			t.Fatalf("%s: sees schema %q, want %q", what, got, want)
		}
	}
	for round := range 5 {
		expect(fmt.Sprint("a round ", round), a, "sa")
		expect(fmt.Sprint("b round ", round), b, "sb")
	}
	// A pgx client with a statement cached before the other client's SET.
	pc := connect(t, h.dsn(db))
	mustExec(t, pc, "SET search_path = sc")
	var v string
	for range 3 {
		if err := pc.QueryRow(context.Background(), "SELECT v FROM t WHERE v <> $1", "x").Scan(&v); err != nil || v != "sc" {
			t.Fatalf("pgx client: %v %q", err, v)
		}
		expect("a after pgx", a, "sa")
	}
	// SET LOCAL ends with the transaction; a rolled back SET is undone.
	a.query("BEGIN")
	a.query("SET LOCAL search_path = sb")
	expect("a inside SET LOCAL", a, "sb")
	a.query("COMMIT")
	expect("a after SET LOCAL", a, "sa")
	a.query("BEGIN")
	a.query("SET search_path = sb")
	a.query("ROLLBACK")
	expect("a after rolled back SET", a, "sa")
	expect("b at the end", b, "sb")
	a.query("RESET search_path")
	if got := a.value("SHOW search_path"); got != `"$user", public` {
		t.Fatalf("after RESET: search_path %q", got)
	}
	expect("b after a's RESET", b, "sb")
}

// TestSetStatementTimeoutFollowsClient carries a setting PostgreSQL does
// not report (statement_timeout) and checks it neither stays behind on the
// server nor is lost on another one.
func TestSetStatementTimeoutFollowsClient(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	a, b := dialRaw(t, h.dsn(db)), dialRaw(t, h.dsn(db))
	hold := holder{dialRaw(t, h.dsn(db))}
	a.query("SET statement_timeout = '150ms'")
	for round := range 4 {
		if round%2 == 0 {
			hold.hold()
		}
		got := a.query("SELECT pg_sleep(1)")
		if !contains(got, "ErrorResponse ERROR 57014 canceling statement due to statement timeout") {
			t.Fatalf("round %d: statement_timeout not in effect for the client that set it: %q", round, got)
		}
		if v := b.value("SHOW statement_timeout"); v != "0" {
			t.Fatalf("round %d: other client sees statement_timeout %q", round, v)
		}
		if round%2 == 0 {
			hold.release()
		}
	}
}

// TestSessionStatePins checks what can't be carried: by default the
// client is pinned to its server (its temp table, LISTEN and advisory lock
// keep working across transactions while another client uses the pool),
// and when it leaves, the server is reset before another client gets it.
func TestSessionStatePins(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	admin := connect(t, directDSN(h.pg, db))
	a := dialRaw(t, h.dsn(db))
	other := dialRaw(t, h.dsn(db))
	// Statements a prepared before pinning must work on the pinned server,
	// and the same SQL from another client must work after a is gone.
	a.roundTrip(msgParse("S", "SELECT 'shared'::text"), msgSync())
	a.query("CREATE TEMP TABLE scratch (v int); INSERT INTO scratch VALUES (1)")
	pid := a.value("SELECT pg_backend_pid()")
	a.query("LISTEN sluice_chan")
	a.query("SELECT pg_advisory_lock(42)")
	for round := range 4 {
		if got := other.value("SELECT 2"); got != "2" {
			t.Fatalf("other client: %s", got)
		}
		if got := a.value("SELECT pg_backend_pid()"); got != pid {
			t.Fatalf("round %d: pinned client moved from server %s to %s", round, pid, got)
		}
		if got := a.value("SELECT count(*) FROM scratch"); got != "1" {
			t.Fatalf("round %d: temp table: %s", round, got)
		}
		got := a.roundTrip(msgBind("S"), msgExecute(), msgSync())
		sameTranscript(t, "prepared on pinned server", []string{"BindComplete", "DataRow [shared]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
	}
	var locks int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND pid = $1::int", pid).Scan(&locks); err != nil || locks != 1 {
		t.Fatalf("advisory lock of the pinned client: %v %d", err, locks)
	}
	a.conn.Close()
	waitFor(t, "the advisory lock to go", func() bool {
		var n int
		admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42").Scan(&n)
		return n == 0
	})
	// Every server of the pool is clean and knows what it holds.
	for i := range 4 {
		c := dialRaw(t, h.dsn(db))
		if i%2 == 0 {
			other.query("BEGIN")
			other.query("SELECT 1")
		}
		if got := c.query("SELECT count(*) FROM scratch"); !strings.HasPrefix(got[0], "ErrorResponse ERROR 42P01") {
			t.Fatalf("another client sees the pinned client's temp table: %q", got)
		}
		if got := c.value("SELECT count(*) FROM pg_listening_channels()"); got != "0" {
			t.Fatalf("another client's server still listens: %s", got)
		}
		got := c.roundTrip(msgParse("T", "SELECT 'shared'::text"), msgBind("T"), msgExecute(), msgSync())
		sameTranscript(t, "statement after the pinned client left", []string{"ParseComplete", "BindComplete", "DataRow [shared]", "CommandComplete SELECT 1", "ReadyForQuery I"}, got)
		if i%2 == 0 {
			other.query("COMMIT")
		}
	}
}

// TestSessionStateError refuses what can't be carried when
// pool.on_session_state is "error", with SQLSTATE 0A000, and leaves
// nothing behind.
func TestSessionStateError(t *testing.T) {
	t.Parallel()
	db := freshDB(t)
	h := startSluice(t, "transaction", 1, func(c *proxy.Config) { c.Pool.OnSessionState = "error" })
	a := dialRaw(t, h.dsn(db))
	for _, sql := range []string{
		"LISTEN sluice_chan",
		"CREATE TEMP TABLE scratch (v int)",
		"SELECT pg_advisory_lock(7)",
	} {
		got := a.query(sql)
		if len(got) == 0 || !strings.HasPrefix(got[0], "ErrorResponse ERROR 0A000") {
			t.Fatalf("%s: want 0A000, got %q", sql, got)
		}
		if got[len(got)-1] != "ReadyForQuery I" {
			t.Fatalf("%s: client left in state %q", sql, got[len(got)-1])
		}
	}
	if got := a.value("SELECT count(*) FROM pg_listening_channels()"); got != "0" {
		t.Fatalf("LISTEN ran anyway: %s listening channels", got)
	}
	if got := a.value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); got != "0" {
		t.Fatalf("advisory lock taken anyway: %s", got)
	}
	// Session-level statements that are carried still work: SQL PREPARE
	// (sqlprepare.go), but not when sent with Parse.
	sameTranscript(t, "PREPARE", []string{"CommandComplete PREPARE", "ReadyForQuery I"}, a.query("PREPARE p AS SELECT 1"))
	sameTranscript(t, "EXECUTE", []string{"RowDescription [?column?:23:0]", "DataRow [1]", "CommandComplete SELECT 1", "ReadyForQuery I"}, a.query("EXECUTE p"))
	if got := a.roundTrip(msgParse("", "PREPARE p2 AS SELECT 1"), msgBind(""), msgExecute(), msgSync()); !strings.HasPrefix(got[len(got)-2], "ErrorResponse ERROR 0A000") {
		t.Fatalf("PREPARE sent with Parse: want 0A000, got %q", got)
	}
	sameTranscript(t, "SET", []string{"CommandComplete SET", "ReadyForQuery I"}, a.query("SET statement_timeout = '5s'"))
	if got := a.value("SHOW statement_timeout"); got != "5s" {
		t.Fatalf("statement_timeout %q", got)
	}
}
