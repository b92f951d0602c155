package monitor

import (
	"fmt"
	"slices"
	"testing"
)

func TestParseRead(t *testing.T) {
	tests := []struct {
		sql     string
		ok      bool
		tables  string // sorted alias=schema.rel
		columns string
		params  int
	}{
		{"SELECT * FROM orders WHERE customer_id = 42", true, "[orders=.orders]", "[.customer_id]", 0},
		{"SELECT o.id FROM public.orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = $1 AND o.status = $2", true,
			"[c=.customers o=public.orders]", "[c.id c.name o.customer_id o.status]", 2},
		{"SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE u.c > $3)", true, "[t=.t u=.u]", "[.a u.c]", 3},
		{"SELECT count(*) FROM t", true, "[t=.t]", "[]", 0},
		{"WITH x AS (SELECT * FROM t WHERE k = 1) SELECT * FROM x", true, "[t=.t x=.x]", "[.k]", 0},
		{"SELECT 1; SELECT 2", false, "", "", 0},
		{"DELETE FROM t WHERE a = 1", false, "", "", 0},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", false, "", "", 0},
		{"SELECT * INTO newt FROM t", false, "", "", 0},
		{"SELECT * FROM t FOR UPDATE", false, "", "", 0},
		{"SELEC oops", false, "", "", 0},
		{"", false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			sh, err := parseRead(tt.sql)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			var tabs []string
			for a, tb := range sh.tables {
				tabs = append(tabs, a+"="+tb[0]+"."+tb[1])
			}
			slices.Sort(tabs)
			var cols []string
			for _, c := range sh.columns {
				cols = append(cols, c.qualifier+"."+c.column)
			}
			slices.Sort(cols)
			if got := fmt.Sprint(tabs); got != tt.tables {
				t.Errorf("tables = %s, want %s", got, tt.tables)
			}
			if got := fmt.Sprint(cols); got != tt.columns {
				t.Errorf("columns = %s, want %s", got, tt.columns)
			}
			if sh.params != tt.params {
				t.Errorf("params = %d, want %d", sh.params, tt.params)
			}
		})
	}
}

// FuzzParseRead: any text must be accepted or refused, never panic.
func FuzzParseRead(f *testing.F) {
	for _, s := range []string{"SELECT * FROM t WHERE a = $1", "SELECT a.b.c FROM x.y a WHERE a.b.c = 1", "select", "SELECT * FROM t t1 JOIN t t2 USING (id)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseRead(s)
	})
}

// FuzzSketch: arbitrary values never break the bounds or the count.
func FuzzSketch(f *testing.F) {
	f.Add(0.001, 1e-9, 3e5)
	f.Fuzz(func(t *testing.T, a, b, c float64) {
		var s Sketch
		for _, v := range []float64{a, b, c, a * 1e6, b / 1e6} {
			s.AddSeconds(v)
		}
		if s.Count() != 5 || len(s.bins) > sketchMaxBins {
			t.Fatalf("count %d bins %d", s.Count(), len(s.bins))
		}
		_ = s.Quantile(0.99)
	})
}
