package rewrite_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/sluice-proxy/sluice/rewrite"
)

// TestEngineConcurrent runs many sessions over shared and new texts at once
// (meaningful under -race) and checks every goroutine sees the Decision its
// session should get.
func TestEngineConcurrent(t *testing.T) {
	e := engine(t, "max_rows: 20\nrules:\n  - {name: bob, match: {user: [bob]}, max_rows: 2}\n  - {name: blk, match: {user: [eve]}, block: no}")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			users := []string{"bob", "eve", "app"}
			for i := 0; i < 300; i++ {
				u := users[(g+i)%3]
				sql := "SELECT * FROM t WHERE k = " + strconv.Itoa(i%17)
				d := e.Process(sql, rewrite.Session{User: u})
				var ok bool
				switch u {
				case "bob":
					ok = d.MaxRows == 2 && d.Block == nil
				case "eve":
					ok = d.Block != nil
				default:
					ok = d.MaxRows == 20 && d.Block == nil
				}
				if !ok {
					select {
					case errs <- u + ": " + d.SQL:
					default:
					}
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("wrong decision for " + e)
	}
}
