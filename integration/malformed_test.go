package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// freshDB creates a database of the test's own (dropped at cleanup), for
// tests that count the server connections Sluice opens to it.
func freshDB(t testing.TB) string {
	t.Helper()
	setup(t)
	name := uniq("it_db")
	admin := connect(t, superDSN(t, "postgres"))
	mustExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), superDSN(t, "postgres"))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return name
}

// backends counts server connections to db (other than the caller's).
func backends(t testing.TB, db string) int {
	t.Helper()
	c := connect(t, superDSN(t, "postgres"))
	defer c.Close(context.Background())
	n := scalar[int](t, c, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", db)
	if os.Getenv("IT_DEBUG") != "" {
		t.Log(rows(t, c, "SELECT pid, usename, application_name, state, backend_start, query FROM pg_stat_activity WHERE datname = $1", db))
	}
	return n
}

// TestMalformedInput sends each kind of bad input on its own connection
// and checks the error PostgreSQL would give, that the connection is
// closed, that a second client keeps working throughout, and that no
// server connection leaks.
func TestMalformedInput(t *testing.T) {
	pg := testenv.PG(t)
	const poolSize = 2
	// Besides the pool, Sluice keeps one side connection per database for
	// the result cache's catalog reads; a leak per bad client would still
	// pass this bound after the first case.
	const maxBackends = poolSize + 1
	forModes(t, func(t *testing.T, mode string) {
		db := freshDB(t)
		c := baseConf(t, mode)
		c.set("auth.method", "trust") // raw clients skip the password exchange
		c.set("client_login_timeout", "1s")
		c.set("max_message_size", 1024)
		c.set("pool.default_pool_size", poolSize)
		s := startSluice(t, c.YAML(t))
		other := connect(t, s.DSN(pg.User, "", db))
		mustExec(t, other, "CREATE TABLE kept (v int)")
		otherWorks := func(t *testing.T, round int) {
			t.Helper()
			mustExec(t, other, "INSERT INTO kept VALUES ($1)", round)
			if got := scalar[int](t, other, "SELECT count(*) FROM kept"); got != round+1 {
				t.Fatalf("the other client sees %d rows, want %d", got, round+1)
			}
		}
		login := func(t *testing.T) *rawConn {
			r := dialRaw(t, s.Addr())
			r.startup(pgproto3.ProtocolVersionNumber, map[string]string{"user": pg.User, "database": db})
			msgs, err := r.untilReady()
			if err != nil {
				t.Fatalf("login: %v (%v)", err, msgs)
			}
			return r
		}
		startupPacket := func(version uint32, kv ...string) []byte {
			var b []byte
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, version)
			for _, s := range kv {
				b = append(append(b, s...), 0)
			}
			b = append(b, 0)
			binary.BigEndian.PutUint32(b, uint32(len(b)))
			return b
		}
		cases := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"bad length in a typed message", func(t *testing.T) {
				r := login(t)
				r.write([]byte{'Q', 0, 0, 0, 2})
				r.fatalThenClose("08P01", "")
			}},
			{"negative length", func(t *testing.T) {
				r := login(t)
				r.write([]byte{'P', 0xff, 0xff, 0xff, 0xfe})
				r.fatalThenClose("08P01", "")
			}},
			{"unknown message type", func(t *testing.T) {
				r := login(t)
				r.write(frame('y', nil))
				r.fatalThenClose("08P01", "invalid frontend message type 121")
			}},
			{"unknown message type mid-transaction", func(t *testing.T) {
				r := login(t)
				r.write(frame('Q', []byte("BEGIN\x00")))
				if _, err := r.untilReady(); err != nil {
					t.Fatal(err)
				}
				r.write(frame('y', nil))
				r.fatalThenClose("08P01", "invalid frontend message type 121")
			}},
			{"message over max_message_size", func(t *testing.T) {
				r := login(t)
				r.write(frame('Q', append([]byte("SELECT '"+strings.Repeat("x", 2000)+"'"), 0)))
				r.fatalThenClose("08P01", "")
			}},
			{"message at max_message_size", func(t *testing.T) {
				r := login(t)
				q := "SELECT '" + strings.Repeat("x", 1024-11) + "'"
				r.write(frame('Q', append([]byte(q), 0)))
				msgs, err := r.untilReady()
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if e, ok := m.(*pgproto3.ErrorResponse); ok {
						t.Fatalf("a message of exactly max_message_size refused: %s %s", e.Code, e.Message)
					}
				}
				r.conn.Close() // in session mode it holds a server
			}},
			{"truncated startup then close", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(pgproto3.ProtocolVersionNumber, "user", pg.User)[:11])
				r.conn.Close()
			}},
			{"startup length too small", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write([]byte{0, 0, 0, 3})
				r.fatalThenClose("08P01", "invalid length of startup packet")
			}},
			{"startup length too large", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write([]byte{0, 1, 0, 0, 0, 3, 0, 0})
				r.fatalThenClose("08P01", "invalid length of startup packet")
			}},
			{"startup without user", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(pgproto3.ProtocolVersionNumber, "database", db))
				r.fatalThenClose("28000", "no PostgreSQL user name specified in startup packet")
			}},
			{"protocol 4.0", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(4<<16, "user", pg.User))
				r.fatalThenClose("0A000", "unsupported frontend protocol 4.0: server supports 3.0 to 3.0")
			}},
			{"protocol 2.0", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(2<<16, "user", pg.User))
				r.fatalThenClose("0A000", "unsupported frontend protocol 2.0: server supports 3.0 to 3.0")
			}},
			{"protocol 3.2 negotiates down", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(3<<16|2, "user", pg.User, "database", db, "_pq_.sluice_test", "1"))
				msgs, err := r.untilReady()
				if err != nil {
					t.Fatalf("login: %v (%v)", err, msgs)
				}
				npv, ok := msgs[0].(*pgproto3.NegotiateProtocolVersion)
				if !ok {
					t.Fatalf("first reply %T, want NegotiateProtocolVersion", msgs[0])
				}
				if npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.sluice_test" {
					t.Fatalf("NegotiateProtocolVersion %+v", npv)
				}
				if _, ok := msgs[1].(*pgproto3.AuthenticationOk); !ok {
					t.Fatalf("then %T, want AuthenticationOk", msgs[1])
				}
				r.write(frame('Q', []byte("SELECT 40 + 2\x00")))
				msgs, err = r.untilReady()
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, m := range msgs {
					if d, ok := m.(*pgproto3.DataRow); ok && string(d.Values[0]) == "42" {
						found = true
					}
				}
				if !found {
					t.Fatalf("query after 3.2 login: %v", msgs)
				}
				r.conn.Close()
			}},
			{"stall before the startup packet", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				start := time.Now()
				stalledOut(t, r, start)
			}},
			{"stall inside the startup packet", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write(startupPacket(pgproto3.ProtocolVersionNumber, "user", pg.User)[:9])
				stalledOut(t, r, time.Now())
			}},
			{"stall after SSLRequest", func(t *testing.T) {
				r := dialRaw(t, s.Addr())
				r.write([]byte{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f})
				var b [1]byte
				if _, err := r.conn.Read(b[:]); err != nil || b[0] != 'N' {
					t.Fatalf("SSLRequest answered %q %v, want N", b[:], err)
				}
				stalledOut(t, r, time.Now())
			}},
			{"garbage after login", func(t *testing.T) {
				r := login(t)
				r.write(bytes.Repeat([]byte{0xff}, 64))
				r.fatalThenClose("08P01", "")
			}},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.run(t)
				otherWorks(t, i)
				// A new client still gets in.
				fresh := connect(t, s.DSN(pg.User, "", db))
				if got := scalar[int](t, fresh, "SELECT 1"); got != 1 {
					t.Fatal(got)
				}
				fresh.Close(context.Background())
				eventually(t, 5*time.Second, func() string {
					if n := backends(t, db); n > maxBackends {
						return fmt.Sprintf("%d server connections to %s, pool size %d", n, db, poolSize)
					}
					return ""
				})
			})
		}
		eventually(t, 5*time.Second, func() string {
			if n := backends(t, db); n > maxBackends {
				return fmt.Sprintf("%d server connections to %s, pool size %d", n, db, poolSize)
			}
			return ""
		})
		if n := s.logCount(func(r map[string]any) bool { return strings.Contains(fmt.Sprint(r["message"]), "panic") }); n > 0 {
			t.Fatalf("%d panics logged", n)
		}
	})
}

// stalledOut checks that a client that stops sending during startup gets
// an error after client_login_timeout (1s) and is disconnected.
func stalledOut(t *testing.T, r *rawConn, start time.Time) {
	t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(6 * time.Second))
	m, err := r.receive()
	elapsed := time.Since(start)
	if err == nil {
		e, ok := m.(*pgproto3.ErrorResponse)
		if !ok {
			t.Fatalf("got %T, want an ErrorResponse", m)
		}
		if e.Severity != "FATAL" || (e.Code != "57014" && e.Code != "08P01" && e.Code != "08006") {
			t.Fatalf("got %s %s %q", e.Severity, e.Code, e.Message)
		}
		r.expectClosed()
	} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatalf("still connected after %s with client_login_timeout 1s", elapsed)
	}
	if elapsed < 800*time.Millisecond || elapsed > 4*time.Second {
		t.Fatalf("disconnected after %s, want about client_login_timeout (1s)", elapsed)
	}
}
