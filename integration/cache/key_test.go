package cache_test

import (
	"testing"
)

// TestKeySettings: connections whose startup search_path, TimeZone or
// DateStyle differ never share an entry: each gets what PostgreSQL sends
// it directly, while each one's repeat is a hit.
func TestKeySettings(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE SCHEMA s1", "CREATE SCHEMA s2",
		"CREATE TABLE s1.t (v text)", "CREATE TABLE s2.t (v text)",
		"INSERT INTO s1.t VALUES ('schema one')", "INSERT INTO s2.t VALUES ('schema two')",
		"CREATE TABLE public.d (ts timestamptz, day date)",
		"INSERT INTO public.d VALUES ('2024-06-01 12:00:00+00', '2024-06-01')")
	inst := s.start("transaction", s.cacheYAML("rules", "")+ruleYAML("t", "d", "s1.t", "s2.t"))
	cases := []struct {
		name   string
		sql    string
		params []string
	}{
		{"search_path", "SELECT v FROM t", []string{"&search_path=s1", "&search_path=s2"}},
		{"timezone", "SELECT ts FROM public.d", []string{"&timezone=UTC", "&timezone=Asia/Tokyo"}},
		{"datestyle", "SELECT day, ts FROM public.d", []string{"&DateStyle=ISO,MDY", "&DateStyle=German,DMY"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var answers []string
			for i, par := range c.params {
				want := rawConnect(t, s.pg.DSN(s.db)+par).simple(c.sql)
				via := rawConnect(t, inst.DSN(s.pg.User, s.pg.Password, s.db)+par)
				p := s.proof(t, inst)
				first := via.simple(c.sql)
				p.expect(par+" first read", 0)
				if !first.equal(want) {
					t.Fatalf("%s (connection %d): got another setting's entry: %s", par, i, first.firstDiff(want))
				}
				if second := via.simple(c.sql); !second.equal(want) {
					t.Fatalf("%s: hit differs from direct: %s", par, second.firstDiff(want))
				}
				p.expect(par+" repeat", 1)
				answers = append(answers, string(want[1]))
			}
			if answers[0] == answers[1] {
				t.Fatalf("the settings do not change the answer; the case proves nothing")
			}
		})
	}
}

// TestKeyComments: /* sluice:nocache */ bypasses a rule, /* sluice:cache
// ttl=60s */ opts a statement in with mode rules and no rule, and
// sqlcommenter-style tags don't split entries.
func TestKeyComments(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE ruled (v int)", "INSERT INTO ruled VALUES (1)",
		"CREATE TABLE plain (v int)", "INSERT INTO plain VALUES (1)")
	inst := s.start("session", s.cacheYAML("rules", "")+ruleYAML("ruled"))
	via := rawConnect(t, inst.DSN(s.pg.User, s.pg.Password, s.db))

	t.Run("nocache", func(t *testing.T) {
		p := s.proof(t, inst)
		for i := 0; i < 3; i++ {
			via.simple("/* sluice:nocache */ SELECT v FROM ruled")
		}
		p.expect("nocache", 0)
		s.exec("UPDATE ruled SET v = 2")
		if got := via.simple("/* sluice:nocache */ SELECT v FROM ruled"); string(got[1]) != string(rawDataRow("2")) {
			t.Fatalf("nocache read did not see a direct write: %v", got)
		}
	})
	t.Run("opt_in", func(t *testing.T) {
		p := s.proof(t, inst)
		via.simple("SELECT v FROM plain")
		via.simple("SELECT v FROM plain")
		p.expect("no rule, no comment", 0)
		via.simple("/* sluice:cache ttl=60s */ SELECT v FROM plain")
		via.simple("/* sluice:cache ttl=60s */ SELECT v FROM plain")
		p.expect("opted in", 1)
	})
	t.Run("sqlcommenter", func(t *testing.T) {
		p := s.proof(t, inst)
		a := via.simple("SELECT v FROM ruled WHERE v > 0 /*application='x',route='%2Forders'*/")
		b := via.simple("SELECT v FROM ruled WHERE v > 0 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/")
		c := via.simple("/* controller=home */ SELECT v FROM ruled WHERE v > 0")
		p.expect("differently tagged repeats", 2)
		if !a.equal(b) || !a.equal(c) {
			t.Fatalf("tagged answers differ: %v %v %v", a, b, c)
		}
	})
}

// rawDataRow is the encoding of a one-column text DataRow.
func rawDataRow(v string) []byte {
	b := []byte{'D', 0, 0, 0, 0, 0, 1, 0, 0, 0, byte(len(v))}
	b = append(b, v...)
	n := len(b) - 1
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}
