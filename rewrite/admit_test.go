package rewrite

import (
	"fmt"
	"testing"
)

// TestDoorkeeper: a text is admitted on its second sighting, not its
// first, and thousands of one-off texts in between do not all push a
// repeating one out.
func TestDoorkeeper(t *testing.T) {
	d := newDoorkeeper()
	if d.admit("SELECT 1") {
		t.Fatal("admitted on first sighting")
	}
	if !d.admit("SELECT 1") {
		t.Fatal("not admitted on second sighting")
	}
	hot, admitted := "SELECT * FROM t WHERE id = 42", 0
	for i := range 20000 {
		d.admit(fmt.Sprintf("SELECT * FROM t WHERE id = %d", 1000+i))
		if i%100 == 0 && d.admit(hot) {
			admitted++
		}
	}
	if admitted < 150 {
		t.Fatalf("a text repeating every 100 one-off texts was admitted %d times in 200 sightings", admitted)
	}
}

// TestShapeTextsCachedOnRepeat: a shape-derived text goes into the
// exact-text cache only when it repeats.
func TestShapeTextsCachedOnRepeat(t *testing.T) {
	e, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1") // makes the shape
	once := "SELECT abalance FROM pgbench_accounts WHERE aid = 2"
	e.Analyze(once)
	if _, ok := e.cache.get(once); ok {
		t.Fatal("a text seen once was cached")
	}
	e.Analyze(once)
	if _, ok := e.cache.get(once); !ok {
		t.Fatal("a text seen twice was not cached")
	}
}
