package proxy_test

import (
	"context"
	"testing"
	"time"
)

func TestZZScratch(t *testing.T) {
	db := freshDB(t)
	h := startSluice(t, "transaction", 2)
	h5 := startSluice(t, "transaction", 6)
	_ = h5
	admin := connect(t, directDSN(h.pg, db))
	hold := holder{dialRaw(t, h.dsn(db))}
	show := func(name string, c *rawConn, sql string) {
		t.Logf("%s: %s -> %q", name, sql, c.query(sql))
	}
	// 1. set_config constant
	a := dialRaw(t, h.dsn(db))
	show("setcfg", a, "SELECT set_config('statement_timeout', '150ms', false)")
	hold.hold()
	show("setcfg-after", a, "SHOW statement_timeout")
	hold.release()
	show("setcfg-after2", a, "SHOW statement_timeout")
	// 2. extended-protocol SET
	b := dialRaw(t, h.dsn(db))
	t.Logf("ext SET: %q", b.roundTrip(msgParse("", "SET statement_timeout = '150ms'"), msgBind(""), msgExecute(), msgSync()))
	hold.hold()
	show("extset-after", b, "SHOW statement_timeout")
	hold.release()
	show("extset-after2", b, "SHOW statement_timeout")
	// 3. xact advisory lock: pinned?
	c := dialRaw(t, h.dsn(db))
	show("xactlock", c, "SELECT pg_advisory_xact_lock(5)")
	p1 := c.value("SELECT pg_backend_pid()")
	hold.hold()
	p2 := c.value("SELECT pg_backend_pid()")
	hold.release()
	t.Logf("xact lock pids %s %s (same = pinned)", p1, p2)
	// 4. SET ROLE
	d := dialRaw(t, h.dsn(db))
	mustExec(t, admin, "CREATE ROLE zz_role_"+db[len(db)-6:])
	show("setrole", d, "SET ROLE zz_role_"+db[len(db)-6:])
	hold.hold()
	show("role-after", d, "SELECT current_user")
	hold.release()
	show("role-after2", d, "SELECT current_user")
	e := dialRaw(t, h.dsn(db))
	show("other role", e, "SELECT current_user")
	// 5. DEALLOCATE name of protocol statement
	f := dialRaw(t, h.dsn(db))
	t.Logf("parse: %q", f.roundTrip(msgParse("S", "SELECT 1"), msgSync()))
	show("dealloc", f, `DEALLOCATE "S"`)
	t.Logf("bind after dealloc: %q", f.roundTrip(msgBind("S"), msgExecute(), msgSync()))
	// 6. LISTEN notifications while idle
	g := dialRaw(t, h.dsn(db))
	show("listen", g, "LISTEN zzchan")
	mustExec(t, admin, "NOTIFY zzchan, 'hello'")
	g.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	m, err := g.fe.Receive()
	t.Logf("notification while idle: %T %v %v", m, m, err)
	// 7. WITH HOLD cursor
	k := dialRaw(t, h.dsn(db))
	show("cursor", k, "DECLARE cur CURSOR WITH HOLD FOR SELECT generate_series(1,3)")
	hold.hold()
	show("fetch", k, "FETCH 1 FROM cur")
	hold.release()
	hold5 := holder{dialRaw(t, h5.dsn(db))}
	// 8. temp table via extended protocol
	l := dialRaw(t, h5.dsn(db))
	t.Logf("ext temp: %q", l.roundTrip(msgParse("", "CREATE TEMP TABLE tt (a int)"), msgBind(""), msgExecute(), msgSync()))
	hold5.hold()
	show("ext temp after", l, "SELECT count(*) FROM tt")
	hold5.release()
	show("ext temp after2", l, "SELECT count(*) FROM tt")
	// 9. SET in a multi-statement query / DO block
	n := dialRaw(t, h5.dsn(db))
	show("do", n, "DO $$BEGIN PERFORM set_config('statement_timeout','150ms',false); END$$")
	hold5.hold()
	show("do-after", n, "SHOW statement_timeout")
	hold5.release()
	show("do-after2", n, "SHOW statement_timeout")
	// 10. session-mode? search_path via startup options
	o := dialRaw(t, h5.dsn(db, "search_path=pg_catalog"))
	hold5.hold()
	show("startup search_path", o, "SHOW search_path")
	hold5.release()
	_ = context.Background()
}
