package rules_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/internal/sluicetest"
)

func capRule(n int, pattern string) string {
	return `
rules:
  - name: cap-t
    match: {relations_any: [t], pattern: '` + pattern + `'}
    max_rows: ` + itoa(n) + `
`
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// TestReload: App.Reload with a changed rule takes effect for the next
// statement, on an open connection and a new one; an invalid rule set is
// rejected naming the rule, and the old rules stay in force.
func TestReload(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pg, db := newDB(t, maxRowsSetup)
			base := sluicetest.Base(pg, mode)
			inst := sluicetest.Start(t, base+capRule(10, "FROM t"))
			e := &env{pg: pg, db: db, inst: inst}
			// The simple protocol: a statement pgx prepared before the reload
			// keeps the text PostgreSQL prepared (with the old limit).
			s, n := e.sluice(t, withMode(pgx.QueryExecModeSimpleProtocol))
			count := func(c string) int { return len(mustRows(t, s, c)) }
			if got := count("SELECT x FROM t"); got != 10 {
				t.Fatalf("before reload: %d rows, want 10", got)
			}
			n.take()

			cfg, err := config.Parse([]byte(base+capRule(3, "FROM t")), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := inst.App.Reload(cfg); err != nil {
				t.Fatalf("reload: %v", err)
			}
			if got := count("SELECT x FROM t"); got != 3 {
				t.Errorf("after reload, same connection: %d rows, want 3", got)
			}
			if m := n.take(); !hasNotice(m, "cap-t") || !strings.Contains(m[0], "limited to 3 rows") {
				t.Errorf("after reload: notices %q, want the new limit", m)
			}
			s2, _ := e.sluice(t)
			if got := len(mustRows(t, s2, "SELECT x FROM t WHERE x > $1", 0)); got != 3 {
				t.Errorf("after reload, new connection, extended protocol: %d rows, want 3", got)
			}

			// A bad regexp: config.Parse refuses it, naming the rule...
			if _, err := config.Parse([]byte(base+capRule(5, "FROM (t")), nil); err == nil || !strings.Contains(err.Error(), `"cap-t"`) {
				t.Errorf("config.Parse of a bad regexp: %v, want an error naming rule cap-t", err)
			}
			// ...and so does Reload of a config that skipped validation.
			bad, err := config.Parse([]byte(base+capRule(5, "FROM t")), nil)
			if err != nil {
				t.Fatal(err)
			}
			bad.Rewrite.Rules[0].Match.Pattern = "FROM (t"
			if err := inst.App.Reload(bad); err == nil || !strings.Contains(err.Error(), `"cap-t"`) || !strings.Contains(err.Error(), "pattern") {
				t.Errorf("reload with a bad regexp: %v, want an error naming rule cap-t and its pattern", err)
			}
			for _, yml := range []string{
				"\nrules:\n  - name: bad-hint\n    hint: \"NotAHint(t)\"\n",
				"\nrules:\n  - name: bad-key\n    max_rows: 5\n    colour: blue\n",
			} {
				if _, err := config.Parse([]byte(base+yml), nil); err == nil {
					t.Errorf("config.Parse accepted %q", yml)
				} else if strings.Contains(yml, "bad-hint") && !strings.Contains(err.Error(), "bad-hint") {
					t.Errorf("invalid hint: %v, want the rule named", err)
				}
			}
			if got := count("SELECT x FROM t"); got != 3 {
				t.Errorf("after refused reloads: %d rows, want 3 (the old rules)", got)
			}
		})
	}
}
