package rules_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

const replaceSetup = `
CREATE TABLE users (id int PRIMARY KEY, active bool NOT NULL);
INSERT INTO users SELECT g, g % 2 = 0 FROM generate_series(1, 20) g;
CREATE VIEW active_users AS SELECT * FROM users WHERE active;
`

const replaceRules = `
rules:
  - name: to-active
    match: {relations_any: [users], kind: [select]}
    replace: {pattern: 'FROM users WHERE', with: 'FROM active_users WHERE'}
  - name: answer
    match: {pattern: 'AS question$'}
    replace_with: "SELECT 42 AS answer"
  - name: plus-thousand
    match: {pattern: 'AS plus_me'}
    replace_with: "SELECT $1::int + 1000 AS plus"
`

// TestReplace: the replacement is what runs (its result differs from the
// original's), constants and the client's parameters are carried over, in
// every protocol mode.
func TestReplace(t *testing.T) {
	cases := []struct {
		name     string
		sql      string
		args     []any
		want     string // rows through Sluice, joined
		direct   string // rows directly (the original)
		extended bool   // only over the extended protocol
	}{
		{name: "replace keeps params", sql: "SELECT id FROM users WHERE id <= $1 ORDER BY id", args: []any{10}, want: "2 4 6 8 10", direct: "1 2 3 4 5 6 7 8 9 10"},
		{name: "replace keeps constants", sql: "SELECT id FROM users WHERE id <= 10 AND id > 3 ORDER BY id", want: "4 6 8 10", direct: "4 5 6 7 8 9 10"},
		{name: "replace_with", sql: "SELECT 'what' AS question", want: "42", direct: "what"},
		{name: "replace_with keeps param", sql: "SELECT $1::int AS plus_me", args: []any{5}, want: "1005", direct: "5", extended: true},
		{name: "not matched untouched", sql: "SELECT count(*) FROM users", want: "20", direct: "20"},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, replaceSetup, replaceRules)
			for _, qm := range allModes {
				s, _ := e.sluice(t, withMode(qm))
				d, _ := e.direct(t, withMode(qm))
				for _, tc := range cases {
					if tc.extended && qm == pgx.QueryExecModeSimpleProtocol {
						continue
					}
					t.Run(qm.String()+"/"+tc.name, func(t *testing.T) {
						if got := join(mustRows(t, s, tc.sql, tc.args...)); got != tc.want {
							t.Errorf("through Sluice %q: %q, want %q", tc.sql, got, tc.want)
						}
						if got := join(mustRows(t, d, tc.sql, tc.args...)); got != tc.direct {
							t.Errorf("directly %q: %q, want %q", tc.sql, got, tc.direct)
						}
					})
				}
			}
		})
	}
}

func join(rows []string) string {
	out := ""
	for i, r := range rows {
		if i > 0 {
			out += " "
		}
		out += r
	}
	return out
}
