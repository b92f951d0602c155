package integration

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestStartupParams: settings given in the startup packet (as parameters
// and through `options`) are in effect through Sluice, as directly.
func TestStartupParams(t *testing.T) {
	pg := testenv.PG(t)
	schema := uniq("sp")
	admin := connect(t, superDSN(t, itDB))
	mustExec(t, admin, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { admin.Exec(ctxT(t, 10e9), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	params := []string{
		"application_name=it_app",
		"options=-c TimeZone=Asia/Tokyo -c statement_timeout=4321 --DateStyle=SQL,\\ DMY",
		"search_path=" + schema + ",public",
		"IntervalStyle=iso_8601",
	}
	show := "SELECT current_setting('application_name'), current_setting('TimeZone'), current_setting('statement_timeout'), " +
		"current_setting('DateStyle'), current_setting('search_path'), current_setting('IntervalStyle'), now()::timestamptz::text = (now() AT TIME ZONE 'Asia/Tokyo')::text"
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		via := connect(t, s.DSN(pg.User, pg.Password, itDB, params...))
		direct := connect(t, directDSN(t, pg.User, pg.Password, itDB, params...))
		want := rows(t, direct, show)
		if fmt.Sprint(want[0][0]) != "it_app" || fmt.Sprint(want[0][1]) != "Asia/Tokyo" {
			t.Fatalf("direct connection did not take the settings: %v", want)
		}
		for i := 0; i < 3; i++ {
			sameRows(t, "settings", want, rows(t, via, show))
			// ParameterStatus the driver saw at login.
			for _, k := range []string{"application_name", "TimeZone", "DateStyle", "IntervalStyle"} {
				if g, w := via.PgConn().ParameterStatus(k), direct.PgConn().ParameterStatus(k); g != w {
					t.Fatalf("ParameterStatus %s: %q through Sluice, %q direct", k, g, w)
				}
			}
		}
		// A SET after login is reported and sticks like directly.
		mustExec(t, via, "SET TimeZone = 'Europe/Lisbon'")
		if got := scalar[string](t, via, "SHOW TimeZone"); got != "Europe/Lisbon" {
			t.Fatalf("after SET: %s", got)
		}
		if got := via.PgConn().ParameterStatus("TimeZone"); got != "Europe/Lisbon" {
			t.Fatalf("ParameterStatus after SET: %q", got)
		}
	})
}

// TestSettingsFollowClients: in transaction mode with one server, two
// clients with different settings take turns on it, and each always sees
// its own settings, including ones changed with SET.
func TestSettingsFollowClients(t *testing.T) {
	pg := testenv.PG(t)
	c := baseConf(t, "transaction")
	c.set("pool.default_pool_size", 1)
	s := startSluice(t, c.YAML(t))
	type client struct {
		conn          *pgx.Conn
		app, tz, date string
	}
	clients := []*client{
		{app: "client_a", tz: "America/New_York", date: "ISO, MDY"},
		{app: "client_b", tz: "Asia/Kolkata", date: "German, DMY"},
	}
	for _, cl := range clients {
		cl.conn = connect(t, s.DSN(pg.User, pg.Password, itDB, "application_name="+cl.app, "options=-c TimeZone="+cl.tz), simpleProtocol)
		mustExec(t, cl.conn, "SET DateStyle = '"+cl.date+"'")
	}
	var pids sync.Map
	for round := 0; round < 10; round++ {
		for _, cl := range clients {
			var app, tz, date string
			var pid int
			if err := cl.conn.QueryRow(ctxT(t, 10e9), "SELECT current_setting('application_name'), current_setting('TimeZone'), current_setting('DateStyle'), pg_backend_pid()").
				Scan(&app, &tz, &date, &pid); err != nil {
				t.Fatal(err)
			}
			pids.Store(pid, true)
			if app != cl.app || tz != cl.tz || date != cl.date {
				t.Fatalf("round %d: %s sees application_name=%q TimeZone=%q DateStyle=%q", round, cl.app, app, tz, date)
			}
		}
		if round == 5 { // change a setting mid-way
			clients[0].tz = "Europe/Berlin"
			mustExec(t, clients[0].conn, "SET TimeZone = 'Europe/Berlin'")
		}
	}
	n := 0
	pids.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("pool size 1 used %d servers", n)
	}
}
