package proxy

import "testing"

// TestSettingsQueryVersions: a server that already carries a client's
// settings version gets no query; any change on either side, or another
// client in between, makes settingsQuery compare the maps again.
func TestSettingsQueryVersions(t *testing.T) {
	newSession := func(tz string) *session {
		s := &session{wanted: map[string]string{"timezone": tz}}
		s.wantedChanged()
		return s
	}
	a, b := newSession("UTC"), newSession("Europe/Berlin")
	sc := &serverConn{applied: map[string]string{}}
	steps := []struct {
		name string
		s    *session
		do   func()
		want string
	}{
		{"first use", a, nil, "SELECT pg_catalog.set_config('timezone', 'UTC', false)"},
		{"same version", a, nil, ""},
		{"other client", b, nil, "SELECT pg_catalog.set_config('timezone', 'Europe/Berlin', false)"},
		{"back to the first", a, nil, "SELECT pg_catalog.set_config('timezone', 'UTC', false)"},
		{"client SET", a, func() { a.wanted["datestyle"] = "ISO, MDY"; a.wantedChanged() },
			"SELECT pg_catalog.set_config('datestyle', 'ISO, MDY', false), pg_catalog.set_config('timezone', 'UTC', false)"},
		{"server reset", a, func() { clear(sc.applied); sc.appliedChanged() },
			"SELECT pg_catalog.set_config('datestyle', 'ISO, MDY', false), pg_catalog.set_config('timezone', 'UTC', false)"},
		{"setting dropped", a, func() { delete(a.wanted, "datestyle"); a.wantedChanged() },
			`SELECT pg_catalog.set_config('timezone', 'UTC', false); RESET "datestyle"`},
		{"settled", a, nil, ""},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		if got := settingsQuery(sc, st.s); got != st.want {
			t.Fatalf("%s: settingsQuery = %q, want %q", st.name, got, st.want)
		}
	}
}
