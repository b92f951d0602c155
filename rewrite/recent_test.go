package rewrite

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestRecentSameDecisions: a client's Recent changes how fast a shape is
// found, never what is decided. One Recent serves every corpus text, each
// followed by a variant, on two engines in turn (one with a row limit, one
// without, so a shape remembered from the other engine would show), and
// every Decision equals what a fresh engine of the same config gives.
func TestRecentSameDecisions(t *testing.T) {
	limited := corpusEngine(t)
	plain, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	refLimited := corpusEngine(t)
	refPlain, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var rec Recent
	remembered := 0
	check := func(e, ref *Engine, sql string) {
		t.Helper()
		got := e.ProcessRecent(sql, Session{}, &rec)
		if rec.find(e, rec.last) != nil {
			remembered++
		}
		want := ref.Process(sql, Session{})
		gb, _ := yaml.Marshal(describe(got))
		wb, _ := yaml.Marshal(describe(want))
		if !bytes.Equal(gb, wb) || got.SQL != want.SQL {
			t.Errorf("%q:\n--- want\n%s%s\n--- with Recent\n%s%s", sql, wb, want.SQL, gb, got.SQL)
		}
	}
	for i, sql := range shapeCorpus(t) {
		e, ref := limited, refLimited
		if i%2 == 1 {
			e, ref = plain, refPlain
		}
		check(e, ref, sql)
		if v, ok := variant(sql); ok {
			check(e, ref, v)
			// The same shape on the other engine.
			if e == limited {
				check(plain, refPlain, v)
			} else {
				check(limited, refLimited, v)
			}
		}
	}
	if remembered < 30 {
		t.Errorf("Recent held a shape after only %d texts, want >= 30", remembered)
	}
}

// TestRecentSkipsSharedTable: a repeat of the remembered shape does not
// look in the engine's shape table (the point of Recent), and a key too
// long to keep is not remembered.
func TestRecentSkipsSharedTable(t *testing.T) {
	e, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var rec Recent
	e.ProcessRecent("SELECT abalance FROM pgbench_accounts WHERE aid = 1", Session{}, &rec)
	if rec.sh == nil || !rec.sh.ok {
		t.Fatal("first text: no shareable shape remembered")
	}
	e.shapes.c.InvalidateAll()
	d := e.ProcessRecent("SELECT abalance FROM pgbench_accounts WHERE aid = 2", Session{}, &rec)
	if n := e.shapes.c.EstimatedSize(); n != 0 {
		t.Errorf("shape table has %d entries after a repeat: the repeat was looked up and re-added", n)
	}
	if len(d.Statements) != 1 || d.Statements[0].Text != "SELECT abalance FROM pgbench_accounts WHERE aid = 2" {
		t.Errorf("repeat: statements %+v", d.Statements)
	}
	long := "SELECT abalance FROM pgbench_accounts WHERE aid IN (1" + string(bytes.Repeat([]byte(", 1"), 600)) + ")"
	e.ProcessRecent(long, Session{}, &rec)
	if len(rec.last) > maxRecentKey {
		t.Errorf("Recent kept a %d-byte key, limit %d", len(rec.last), maxRecentKey)
	}
}
