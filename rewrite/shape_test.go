package rewrite

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

// variant rewrites every literal the shape lexer sees to another value of
// the same kind, so the text has the same shape but different constants.
func variant(sql string) (string, bool) {
	toks, _, ok := lexShape(sql, nil, nil)
	if !ok {
		return "", false
	}
	var b []byte
	last, n := 0, 0
	for _, t := range toks {
		switch t.kind {
		case lexNumber:
			b = append(b, sql[last:t.start]...)
			b = append(b, sql[t.start:t.end]...)
			b = append(b, '7')
		case lexString:
			b = append(b, sql[last:t.start]...)
			b = append(b, "'v'''"...)
			b = append(b, sql[t.start+1:t.end]...)
		default:
			continue
		}
		last = int(t.end)
		n++
	}
	if n == 0 {
		return "", false
	}
	return string(append(b, sql[last:]...)), true
}

func shapeCorpus(t testing.TB) []string {
	var out []string
	for _, cases := range loadCorpus(t) {
		for _, c := range cases {
			out = append(out, c.SQL)
		}
	}
	return append(out,
		"SELECT abalance FROM pgbench_accounts WHERE aid = 17;",
		"SELECT * FROM t WHERE a = 1 AND b = 'x' LIMIT $1",
		"SELECT * FROM t WHERE a = 1.5e3 ORDER BY 2",
		"UPDATE t SET a = 'it''s' WHERE id = 4",
		"INSERT INTO t VALUES (1, 'a'), (2, 'b')",
		"SELECT * FROM t LIMIT 5",
	)
}

// TestShapeMatchesFullAnalysis: for every corpus text with literals, a
// variant with other literal values gets, through the shape path, exactly
// the analysis and rewrite a full pg_query analysis gives it.
func TestShapeMatchesFullAnalysis(t *testing.T) {
	withShapes := corpusEngine(t)
	full := corpusEngine(t)
	full.shapes = nil
	hits := 0
	for _, sql := range shapeCorpus(t) {
		v, ok := variant(sql)
		if !ok {
			continue
		}
		withShapes.Process(sql, Session{})
		an := withShapes.analysisFor(v, nil)
		if an.shape != nil && an.shape.ok && len(an.stmts) == 1 && an.stmts[0].st.Fingerprint == 0 {
			t.Errorf("%q: shape analysis has no fingerprint", v)
		}
		got := withShapes.Process(v, Session{})
		want := full.Process(v, Session{})
		if an.shape != nil && an.shape.ok {
			hits++
		}
		gb, _ := yaml.Marshal(describe(got))
		wb, _ := yaml.Marshal(describe(want))
		if !bytes.Equal(gb, wb) || got.SQL != want.SQL {
			t.Errorf("%q (variant of %q):\n--- full\n%s%s\n--- shape\n%s%s", v, sql, wb, want.SQL, gb, got.SQL)
		}
		for i := range want.Statements {
			if i < len(got.Statements) && got.Statements[i].Text != want.Statements[i].Text {
				t.Errorf("%q: Text %q, want %q", v, got.Statements[i].Text, want.Statements[i].Text)
			}
		}
	}
	if hits < 30 {
		t.Errorf("only %d variants took the shape path, want >= 30", hits)
	}
	t.Logf("%d variants served from shapes", hits)
}

// TestShapeNotSharedWhenLiteralsMatter: a constant LIMIT and a SET value
// change the analysis, so those texts are analyzed one by one.
func TestShapeNotSharedWhenLiteralsMatter(t *testing.T) {
	e := corpusEngine(t)
	for _, pair := range [][2]string{
		{"SELECT * FROM t LIMIT 5", "SELECT * FROM t LIMIT 50"},
		{"SELECT set_config('a.b', 'x', false)", "SELECT set_config('a.c', 'x', true)"},
		{"SET work_mem = '4MB'", "SET work_mem = '64MB'"},
	} {
		e.Process(pair[0], Session{})
		if an := e.analysisFor(pair[1], nil); an.shape != nil && an.shape.ok {
			t.Errorf("%q shares the analysis of %q", pair[1], pair[0])
		}
	}
	if d := e.Process("SELECT * FROM t LIMIT 50", Session{}); d.SQL != "SELECT * FROM t LIMIT 10" {
		t.Errorf("LIMIT 50 -> %q", d.SQL)
	}
	if d := e.Process("SELECT * FROM t LIMIT 5", Session{}); d.Rewritten {
		t.Errorf("LIMIT 5 rewritten to %q", d.SQL)
	}
	if d := e.Process("SET work_mem = '64MB'", Session{}); d.Statements[0].SessionState[0].Value != "64MB" {
		t.Errorf("SET value = %q", d.Statements[0].SessionState[0].Value)
	}
}

func TestLexShape(t *testing.T) {
	tests := []struct {
		sql string
		key string // "" means not of the simple shape
	}{
		{"SELECT a FROM t WHERE id = 5", "SELECT a FROM t WHERE id = \x00N"},
		{"SELECT 'a''b', 1.5e-3, $1 FROM t;", "SELECT \x00S, \x00N, $1 FROM t;"},
		{`SELECT "we""ird" FROM t WHERE x = '1'`, "SELECT \"we\"\"ird\" FROM t WHERE x = \x00S"},
		{"SELECT 1 -- c", ""},
		{"SELECT /* c */ 1", ""},
		{"SELECT E'a\\n'", ""},
		{"SELECT U&'x'", ""},
		{"SELECT $$x$$", ""},
		{"SELECT 0x1F", ""},
		{"SELECT 1_000", ""},
		{"SELECT .5", ""},
		{"SELECT 1; SELECT 2", ""},
		{"SELECT 'unterminated", ""},
		{"", ""},
		{"SELECT 1;;", "SELECT \x00N;;"},
		{"select x.y1 from s.t where z = -4", "select x.y1 from s.t where z = -\x00N"},
	}
	for _, tt := range tests {
		_, key, ok := lexShape(tt.sql, nil, nil)
		if tt.key == "" {
			if ok {
				t.Errorf("%q: lexed as simple (key %q), want not", tt.sql, key)
			}
			continue
		}
		if !ok || string(key) != tt.key {
			t.Errorf("%q: key %q ok=%v, want %q", tt.sql, key, ok, tt.key)
		}
	}
}
