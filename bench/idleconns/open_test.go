package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestOpenCheckClose opens real connections to the test PostgreSQL, checks
// every one with SELECT 1 and closes them; the server's own count of
// backends shows they were open and are gone afterwards.
func TestOpenCheckClose(t *testing.T) {
	pg := testenv.PG(t)
	cfg, err := pgconn.ParseConfig(pg.DSN("postgres") + "&application_name=idleconns_test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 12
	conns, err := openAll(ctx, cfg, n, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != n {
		t.Fatalf("opened %d, want %d", len(conns), n)
	}
	if got := backends(t, ctx, conns[0]); got != n {
		t.Errorf("server sees %d idleconns_test backends, want %d", got, n)
	}
	checked, failed, err := checkSample(ctx, conns, 5, 10*time.Second)
	if checked != 3 || failed != 0 || err != nil {
		t.Errorf("checkSample = %d checked, %d failed (%v); want 3, 0", checked, failed, err)
	}
	closeAll(ctx, conns[1:], 3)
	var got int
	for range 50 { // backends exit shortly after Terminate
		if got = backends(t, ctx, conns[0]); got == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != 1 {
		t.Errorf("after closeAll the server still sees %d backends, want 1", got)
	}
	conns[0].Close(ctx)
}

func TestOpenAllReportsErrors(t *testing.T) {
	pg := testenv.PG(t)
	cfg, err := pgconn.ParseConfig(pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns, err := openAll(ctx, cfg, 3, 2)
	if err == nil || len(conns) != 0 {
		t.Fatalf("wrong password: got %d conns, err %v; want none and an error", len(conns), err)
	}
}

func backends(t *testing.T, ctx context.Context, c *pgconn.PgConn) int {
	t.Helper()
	res := c.ExecParams(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'idleconns_test'", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("count backends: %v", res.Err)
	}
	var n int
	for _, b := range res.Rows[0][0] {
		n = n*10 + int(b-'0')
	}
	return n
}
