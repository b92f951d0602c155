package rules_test

import (
	"context"
	"testing"
)

// TestParseErrorPassesThrough: a text the analyzer cannot parse goes to
// PostgreSQL unchanged, with rules and a global limit on, and the client
// gets PostgreSQL's own error (SQLSTATE, message, position) exactly as
// directly.
func TestParseErrorPassesThrough(t *testing.T) {
	bad := []string{
		"SELEC 1",
		"SELECT * FROM t WHERE",
		"SELECT 1 +",
		"SELECT x FROM t; UPDATE",
		"DELETE t",
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, mode, "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 30);", `
max_rows: 10
rules:
  - name: no-delete
    match: {kind: [delete]}
    block: "no deletes"
`)
			for _, qm := range allModes {
				s, _ := e.sluice(t, withMode(qm))
				d, _ := e.direct(t, withMode(qm))
				for _, sql := range bad {
					t.Run(qm.String()+"/"+sql, func(t *testing.T) {
						_, serr := s.Exec(context.Background(), sql)
						_, derr := d.Exec(context.Background(), sql)
						sp, dp := pgErr(serr), pgErr(derr)
						if dp == nil || dp.Code != "42601" {
							t.Fatalf("directly: %v, want a syntax error", derr)
						}
						if sp == nil {
							t.Fatalf("through Sluice: %v, want PostgreSQL's error", serr)
						}
						if sp.Code != dp.Code || sp.Message != dp.Message || sp.Position != dp.Position || sp.Position == 0 {
							t.Errorf("through Sluice %s %q at %d, directly %s %q at %d", sp.Code, sp.Message, sp.Position, dp.Code, dp.Message, dp.Position)
						}
						if n := scalar[int](t, s, "SELECT count(*) FROM t"); n != 30 {
							t.Errorf("after the error: %d rows, want 30", n)
						}
					})
				}
			}
		})
	}
}
