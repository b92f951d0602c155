package cache_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// redisServer is a redis-server this test started, with an append-only
// file so that a restart brings back what it held (including entries that
// became stale while it was down).
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisServer{t: t, bin: testenv.RedisBin(t), dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
	}
	r.t.Fatalf("redis did not listen on %s", r.addr())
}

// kill stops it with SIGKILL (no shutdown save) and reaps it.
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestRedisKilledAndRestarted: under a bounded read/write load through two
// instances sharing one Redis, the Redis is killed and restarted (its AOF
// brings back the entries it held). Clients see no error at all; a write
// made through A while Redis is down is visible through A and B after it
// returns (no stale L1 or L2 entry), and the cache is used again after.
func TestRedisKilledAndRestarted(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL)",
		"INSERT INTO counters SELECT g, 0 FROM generate_series(1, 5) g")
	rs := startRedis(t)
	cfg := fmt.Sprintf("cache:\n  mode: rules\n  redis: {addrs: [%q], key_prefix: %q, timeout: 100ms, breaker: {failures: 2, cooldown: 300ms}}\n",
		rs.addr(), s.prefix) + ruleYAML("counters")
	a, b := s.start("transaction", cfg), s.start("transaction", cfg)
	const q = "SELECT v FROM counters WHERE id = $1"
	readA := s.viaSluice(a, execMode(pgx.QueryExecModeSimpleProtocol))
	readB := s.viaSluice(b)
	writeA := s.viaSluice(a)

	// Warm both instances: id 1 cached in L1 of A and B and in L2.
	pb := s.proof(t, b)
	for i := 0; i < 3; i++ {
		queryInt(t, readA, q, 1)
		queryInt(t, readB, q, 1)
	}
	pb.expect("warm-up on B", 2)

	var clientErrs atomic.Int64
	var ops atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, inst := range []*sluicetest.Instance{a, b, a, b} {
		conn := s.viaSluice(inst, execMode([]pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement}[i%2]))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := context.Background()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				id := 2 + n%4
				// A hang is a client-visible failure too: bound each operation.
				opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if i == 0 && n%7 == 0 {
					_, err = conn.Exec(opCtx, "UPDATE counters SET v = v + 1 WHERE id = $1", id)
				} else {
					var v int64
					err = conn.QueryRow(opCtx, q, id).Scan(&v)
				}
				cancel()
				if err != nil {
					clientErrs.Add(1)
					t.Errorf("client %d (instance %s) after %d operations: %v", i, []string{"A", "B"}[i%2], n, err)
					return
				}
				ops.Add(1)
			}
		}(i)
	}

	time.Sleep(time.Second)
	rs.kill()
	time.Sleep(300 * time.Millisecond)
	if _, err := writeA.Exec(context.Background(), "UPDATE counters SET v = 1000 WHERE id = 1"); err != nil {
		t.Fatalf("write while redis is down: %v", err)
	}
	if v := queryInt(t, readA, q, 1); v != 1000 {
		t.Errorf("A read %d right after its write with Redis down, want 1000", v)
	}
	time.Sleep(time.Second)
	rs.start()
	// From the restart on, every read of id 1 must be the new value, even
	// though Redis came back with the old entry and versions.
	restarted := time.Now()
	for time.Since(restarted) < 3*time.Second {
		for name, c := range map[string]*pgx.Conn{"A": readA, "B": readB} {
			if v := queryInt(t, c, q, 1); v != 1000 {
				t.Fatalf("%s read %d %v after Redis returned, want 1000 (stale)", name, v, time.Since(restarted))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := clientErrs.Load(); n != 0 {
		t.Fatalf("%d client errors during the outage (of %d operations)", n, ops.Load())
	}
	// With the load stopped, the cache is used again on both instances
	// (B held fills of A's writes whose end edges were lost until A's probe
	// replayed them or B re-read the in-flight marks from Redis).
	resumed(t, s, a, readA, q)
	resumed(t, s, b, readB, q)
	t.Logf("%d operations, 0 errors", ops.Load())
}

// resumed waits until inst serves id 1 from the cache again.
func resumed(t *testing.T, s *setup, inst *sluicetest.Instance, conn *pgx.Conn, q string) {
	t.Helper()
	p := s.proof(t, inst)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		queryInt(t, conn, q, 1)
		if v := queryInt(t, conn, q, 1); v != 1000 {
			t.Fatalf("read %d after recovery, want 1000", v)
		}
		if local, _ := p.hits(); local > 0 {
			return
		}
		if time.Now().After(deadline) {
			m := scrape(t, inst)
			t.Fatalf("nothing served from the cache within 5 s after Redis returned and the load stopped "+
				"(process-wide: breaker_state %v, fill_rejected race %v, write_in_flight %v)",
				m.get("sluice_resultcache_breaker_state"), m.get("sluice_resultcache_fill_rejected_total", "reason", "race"),
				m.get("sluice_resultcache_fill_rejected_total", "reason", "write_in_flight"))
		}
	}
}

// TestRedisOutageLostWriteEnd: a transaction through A writes (its begin
// edge reaches B), Redis is killed, the transaction commits (its end edge
// can't be published) and Redis returns. Reads through B are fresh and B
// must use the cache again once Redis is back, not only after write_lease.
func TestRedisOutageLostWriteEnd(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec("CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL)", "INSERT INTO counters VALUES (1, 0)")
	rs := startRedis(t)
	cfg := fmt.Sprintf("cache:\n  mode: rules\n  redis: {addrs: [%q], key_prefix: %q, timeout: 100ms, breaker: {failures: 2, cooldown: 300ms}}\n",
		rs.addr(), s.prefix) + ruleYAML("counters")
	a, b := s.start("transaction", cfg), s.start("transaction", cfg)
	const q = "SELECT v FROM counters WHERE id = $1"
	readB := s.viaSluice(b)
	for i := 0; i < 2; i++ {
		queryInt(t, readB, q, 1)
	}
	writer := s.viaSluice(a)
	ctx := context.Background()
	tx, err := writer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE counters SET v = 1000 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	rs.kill()
	time.Sleep(200 * time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit with Redis down: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	rs.start()
	restarted := time.Now()
	for time.Since(restarted) < time.Second {
		if v := queryInt(t, readB, q, 1); v != 1000 {
			t.Fatalf("B read %d after Redis returned, want 1000 (stale)", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resumed(t, s, b, readB, q)
}
