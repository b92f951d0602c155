package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// openAll opens n connections with at most concurrency logins in flight
// (each SCRAM login costs the client 4096 PBKDF2 iterations, and a flood of
// them measures the CPU, not the memory). It returns the connections that
// opened and the first error; it stops early when ctx ends.
func openAll(ctx context.Context, cfg *pgconn.Config, n, concurrency int) ([]*pgconn.PgConn, error) {
	var (
		mu       sync.Mutex
		conns    = make([]*pgconn.PgConn, 0, n)
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range min(concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, firstErr
}

// checkSample runs SELECT 1 on every step-th connection, all at once and
// each bounded by timeout (a pooler that hangs must not stall the whole
// benchmark), and counts the failures: an idle client must still be
// served when it wakes up. firstErr is the failure on the lowest index.
func checkSample(ctx context.Context, conns []*pgconn.PgConn, step int, timeout time.Duration) (checked, failed int, firstErr error) {
	var idx []int
	for i := 0; i < len(conns); i += step {
		idx = append(idx, i)
	}
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if _, err := conns[i].Exec(cctx, "SELECT 1").ReadAll(); err != nil {
				errs[k] = fmt.Errorf("SELECT 1 on connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return len(idx), failed, firstErr
}

// closeAll sends Terminate on every connection, concurrency at a time.
func closeAll(ctx context.Context, conns []*pgconn.PgConn, concurrency int) {
	ch := make(chan *pgconn.PgConn)
	var wg sync.WaitGroup
	for range max(1, concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				c.Close(ctx)
			}
		}()
	}
	for _, c := range conns {
		ch <- c
	}
	close(ch)
	wg.Wait()
}
