package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// freshDB creates an empty database for one test and drops it afterwards.
func freshDB(t *testing.T) (testenv.Postgres, string) {
	t.Helper()
	pg := testenv.PG(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("monitor_test_%d", rand.Uint32())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pg.DSN("postgres"))
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	return pg, name
}

func dialer(pg testenv.Postgres) func(ctx context.Context, db string) (*pgconn.PgConn, error) {
	return func(ctx context.Context, db string) (*pgconn.PgConn, error) { return pgconn.Connect(ctx, pg.DSN(db)) }
}

func connect(t *testing.T, pg testenv.Postgres, db string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func mustExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// runRecorded runs sql on c like a client through Sluice would and records
// the event with the measured duration and row count.
func runRecorded(t *testing.T, rec Recorder, c *pgx.Conn, db string, fp uint64, normalized, sql string, cacheable bool, args ...any) {
	t.Helper()
	start := time.Now()
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for rows.Next() {
		n++
	}
	rows.Close()
	ev := QueryEvent{Database: db, User: "postgres", Fingerprint: fp, Normalized: normalized, Example: sql,
		Duration: time.Since(start), Rows: n, Cacheable: cacheable}
	if err := rows.Err(); err != nil {
		var pe *pgconn.PgError
		if ok := asPgError(err, &pe); ok {
			ev.SQLState = pe.Code
		}
	}
	rec.Query(ev)
}

func asPgError(err error, pe **pgconn.PgError) bool {
	p, ok := err.(*pgconn.PgError)
	if ok {
		*pe = p
	}
	return ok
}

func TestQueryFindingsFromRealQueries(t *testing.T) {
	pg, db := freshDB(t)
	c := connect(t, pg, db)
	mustExec(t, c, "CREATE TABLE items (id int PRIMARY KEY, name text)")
	mustExec(t, c, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g")

	cfg := analysisConfig()
	cfg.Monitor.Thresholds.UncachedMinCalls = 50
	cfg.Monitor.Thresholds.RegressionMinCalls = 10
	// Wide margins so a loaded test machine does not look like a regression.
	cfg.Monitor.Thresholds.RegressionFactor = 8
	cfg.Monitor.Thresholds.RegressionMinDelta = 50 * time.Millisecond
	cfg.Monitor.Thresholds.HugeRows = 5000
	m := newTestMonitor(t, cfg, Deps{})
	rec := m.Recorder()
	now := time.Now()
	tick := func() []Finding {
		now = now.Add(cfg.Monitor.AnalysisInterval)
		return m.analyzer.fastPass(context.Background(), now)
	}

	// Baseline: a 5 ms statement for four ticks, plus a repeated read.
	const slowFP, readFP, bigFP = 0xa1, 0xb2, 0xc3
	for i := 0; i < 4; i++ {
		for j := 0; j < 12; j++ {
			runRecorded(t, rec, c, db, slowFP, "SELECT pg_sleep($1)", "SELECT pg_sleep(0.005)", false)
			runRecorded(t, rec, c, db, readFP, "SELECT name FROM items WHERE id = $1", "SELECT name FROM items WHERE id = $1", true, j)
		}
		fs := tick()
		if r := findKind(fs, KindQueryRegression); len(r) != 0 {
			t.Fatalf("regression during baseline tick %d: %+v", i, r)
		}
	}
	// The read repeated 48 times so far; 50 is the threshold.
	for j := 0; j < 12; j++ {
		if j < 10 {
			runRecorded(t, rec, c, db, slowFP, "SELECT pg_sleep($1)", "SELECT pg_sleep(0.2)", false)
		}
		runRecorded(t, rec, c, db, readFP, "SELECT name FROM items WHERE id = $1", "SELECT name FROM items WHERE id = $1", true, j)
	}
	runRecorded(t, rec, c, db, bigFP, "SELECT g FROM generate_series($1, $2) g", "SELECT g FROM generate_series(1, 20000) g", false)
	fs := tick()

	reg := findKind(fs, KindQueryRegression)
	if len(reg) != 1 || reg[0].Subject != fpHex(slowFP) {
		t.Fatalf("latency regression findings = %s", kinds(fs))
	}
	if f := reg[0].Evidence.Values["factor"].(float64); f < 8 {
		t.Errorf("regression factor %.1f", f)
	}
	unc := findKind(fs, KindQueryUncached)
	if len(unc) != 1 || unc[0].Subject != fpHex(readFP) || !strings.Contains(unc[0].Recommendation, `match: {fingerprint: "`+fpHex(readFP)+`"`) {
		t.Fatalf("uncached read findings = %+v", unc)
	}
	huge := findKind(fs, KindQueryHugeRows)
	if len(huge) != 1 || huge[0].Evidence.Values["max_rows"] != int64(20000) || !strings.Contains(huge[0].Recommendation, "max_rows: 5000") {
		t.Fatalf("huge rows findings = %+v", huge)
	}
	top := findKind(fs, KindQueryTopTime)
	if len(top) == 0 || top[0].Subject != fpHex(slowFP) {
		t.Fatalf("top total time findings = %+v", top)
	}

	// Once the read is served from cache it is no longer reported.
	for j := 0; j < 60; j++ {
		rec.Query(QueryEvent{Database: db, Fingerprint: readFP, Normalized: "x", Duration: time.Microsecond, CacheHit: true, Cacheable: true})
	}
	if f := findKind(tick(), KindQueryUncached); len(f) != 0 {
		t.Errorf("uncached read still reported after cache hits: %+v", f)
	}
}

func TestDatabaseFindingsFromRealServer(t *testing.T) {
	pg, db := freshDB(t)
	setup := connect(t, pg, db)
	mustExec(t, setup, "CREATE TABLE big (id int, val int, payload text)")
	mustExec(t, setup, "INSERT INTO big SELECT g, g % 5000, repeat('x', 20) FROM generate_series(1, 120000) g")
	mustExec(t, setup, "CREATE TABLE dl (id int PRIMARY KEY, v int)")
	mustExec(t, setup, "INSERT INTO dl VALUES (1, 0), (2, 0)")
	setup.Close(context.Background()) // flush n_live_tup

	cfg := analysisConfig()
	cfg.Monitor.Thresholds.SeqScanMinRows = 100000
	cfg.Monitor.Thresholds.SeqScanMinScans = 5
	cfg.Monitor.Thresholds.IdleInTransaction = time.Second
	cfg.Monitor.Thresholds.LongRunning = time.Second
	m := newTestMonitor(t, cfg, Deps{Dial: dialer(pg), Databases: func() []string { return []string{db} }})

	// Sequential scans and a sort that spills to a temp file.
	scanner, err := pgx.Connect(context.Background(), pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		mustExec(t, scanner, "SELECT count(*) FROM big WHERE val = $1", i)
	}
	mustExec(t, scanner, "SET work_mem = '64kB'")
	mustExec(t, scanner, "SELECT * FROM big ORDER BY payload, val OFFSET 119999")
	scanner.Close(context.Background()) // flushes its statistics

	// A deadlock between two sessions.
	a, b := connect(t, pg, db), connect(t, pg, db)
	ctx := context.Background()
	ta, _ := a.Begin(ctx)
	tb, _ := b.Begin(ctx)
	mustExec(t, ta.Conn(), "UPDATE dl SET v = 1 WHERE id = 1")
	mustExec(t, tb.Conn(), "UPDATE dl SET v = 1 WHERE id = 2")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, errs[0] = ta.Exec(ctx, "UPDATE dl SET v = 2 WHERE id = 2") }()
	go func() {
		defer wg.Done()
		time.Sleep(100 * time.Millisecond)
		_, errs[1] = tb.Exec(ctx, "UPDATE dl SET v = 2 WHERE id = 1")
	}()
	wg.Wait()
	ta.Rollback(ctx)
	tb.Rollback(ctx)
	if errs[0] == nil && errs[1] == nil {
		t.Fatal("no deadlock happened")
	}
	a.Close(ctx) // backends flush their statistics on exit
	b.Close(ctx)

	// An idle-in-transaction client and a long-running statement.
	idle := connect(t, pg, db)
	itx, err := idle.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer itx.Rollback(ctx)
	mustExec(t, itx.Conn(), "SELECT 1 /* left open by the test */")
	long := connect(t, pg, db)
	longCtx, cancelLong := context.WithCancel(ctx)
	longDone := make(chan struct{})
	go func() {
		defer close(longDone)
		long.Exec(longCtx, "SELECT pg_sleep(30) /* long runner */")
	}()
	// The cancel closes the connection from the Exec's goroutine: wait for
	// it before the cleanup closes the connection too.
	defer func() { cancelLong(); <-longDone }()
	time.Sleep(1500 * time.Millisecond)

	// Statistics reach the views asynchronously; collect findings over a
	// few polls (each poll reports deltas since the previous one).
	var fs []Finding
	want := []string{KindDBSeqScan, KindDBTempFiles, KindDBDeadlocks, KindDBIdleInTx, KindDBLongRunning}
	deadline := time.Now().Add(10 * time.Second)
	seen := map[string]bool{}
	for {
		for _, f := range m.analyzer.dbPass(ctx, time.Now()) {
			if !seen[f.Kind] {
				seen[f.Kind] = true
				fs = append(fs, f)
			}
		}
		if len(seen) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, k := range want {
		if len(findKind(fs, k)) != 1 {
			t.Errorf("missing %s; findings: %s", k, kinds(fs))
		}
	}
	if f := findKind(fs, KindDBSeqScan); len(f) == 1 {
		if f[0].Evidence.Values["table"] != "public.big" || f[0].Evidence.Values["seq_scans"].(int64) < 5 {
			t.Errorf("seq scan evidence = %v", f[0].Evidence.Values)
		}
	}
	if f := findKind(fs, KindDBIdleInTx); len(f) == 1 && !strings.Contains(f[0].Evidence.Summary, "left open by the test") {
		t.Errorf("idle in tx evidence = %s", f[0].Evidence.Summary)
	}
	if f := findKind(fs, KindDBLongRunning); len(f) == 1 && !strings.Contains(f[0].Evidence.Summary, "long runner") {
		t.Errorf("long running evidence = %s", f[0].Evidence.Summary)
	}
	// The second poll works on deltas: nothing new happened, so the
	// cumulative seq scans, temp files and deadlocks are not reported again.
	fs = m.analyzer.dbPass(ctx, time.Now())
	for _, k := range []string{KindDBSeqScan, KindDBTempFiles, KindDBDeadlocks} {
		if len(findKind(fs, k)) != 0 {
			t.Errorf("%s reported again without new activity", k)
		}
	}
	// The findings are what /api/v1/bottlenecks shows.
	if len(findKind(m.store.list(), KindDBIdleInTx)) != 1 {
		t.Errorf("store lacks the idle-in-transaction finding")
	}
}

func TestDatabasePollFailureIsAFinding(t *testing.T) {
	m := newTestMonitor(t, analysisConfig(), Deps{
		Dial: func(ctx context.Context, db string) (*pgconn.PgConn, error) {
			return pgconn.Connect(ctx, "postgres://x@127.0.0.1:1/x")
		},
		Databases: func() []string { return []string{"gone"} },
	})
	fs := m.analyzer.dbPass(context.Background(), time.Now())
	if len(findKind(fs, KindDBUnreachable)) != 1 {
		t.Fatalf("findings = %s", kinds(fs))
	}
}

func TestIndexAdviceWithHypopg(t *testing.T) {
	pg, db := freshDB(t)
	c := connect(t, pg, db)
	mustExec(t, c, "CREATE TABLE orders (id int PRIMARY KEY, customer_id int, status text, note text)")
	mustExec(t, c, "INSERT INTO orders SELECT g, g % 20000, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'done' END, repeat('n', 30) FROM generate_series(1, 200000) g")
	mustExec(t, c, "CREATE TABLE customers (id int PRIMARY KEY, name text)")
	mustExec(t, c, "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20000) g")
	mustExec(t, c, "ANALYZE")

	cfg := analysisConfig()
	cfg.Monitor.IndexAdvice.CreateExtension = true
	cfg.Monitor.IndexAdvice.MinMeanTime = 0
	m := newTestMonitor(t, cfg, Deps{Dial: dialer(pg)})
	rec := m.Recorder()
	for i := 0; i < 3; i++ {
		runRecorded(t, rec, c, db, 0x1, "SELECT * FROM orders WHERE customer_id = $1", "SELECT * FROM orders WHERE customer_id = 42", true)
		// Parameterized, aliased, joined: advice must come from the generic plan.
		runRecorded(t, rec, c, db, 0x2, "SELECT ... JOIN ... WHERE c.name = $1",
			"SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = $1", true, "c7")
		// Already indexed: no advice expected.
		runRecorded(t, rec, c, db, 0x3, "SELECT * FROM orders WHERE id = $1", "SELECT * FROM orders WHERE id = 5", true)
	}
	// A write is never explained.
	rec.Query(QueryEvent{Database: db, Fingerprint: 0x4, Example: "DELETE FROM orders WHERE note = 'x'", Duration: time.Second})

	fs := m.analyzer.indexPass(context.Background(), time.Now())
	byCol := map[string]Finding{}
	for _, f := range findKind(fs, KindIndexAdvice) {
		byCol[fmt.Sprint(f.Evidence.Values["table"], ".", f.Evidence.Values["column"])] = f
	}
	f, ok := byCol["orders.customer_id"]
	if !ok {
		t.Fatalf("no advice for orders.customer_id; findings: %s", kinds(fs))
	}
	before, after := f.Evidence.Values["cost_before"].(float64), f.Evidence.Values["cost_after"].(float64)
	if before < 2*after || !strings.Contains(f.Recommendation, "CREATE INDEX CONCURRENTLY ON orders (customer_id)") ||
		!strings.Contains(f.Evidence.Summary, fmt.Sprintf("%.1f -> %.1f", before, after)) {
		t.Errorf("advice = %+v", f)
	}
	// The parameterized, aliased join is explained through its generic plan
	// and gets advice on one of its filtered or joined columns.
	joinAdvised := false
	for col, f := range byCol {
		if slices.Contains(f.Evidence.Values["fingerprints"].([]string), fpHex(0x2)) {
			joinAdvised = col == "customers.name" || col == "orders.customer_id"
		}
		if slices.Contains(f.Evidence.Values["fingerprints"].([]string), fpHex(0x3)) {
			t.Errorf("advice for the already indexed lookup: %+v", f)
		}
	}
	if !joinAdvised {
		t.Errorf("no advice for the parameterized join; got %v", kinds(fs))
	}
	if len(findKind(fs, KindIndexLimited)) != 0 {
		t.Errorf("unexpected findings: %s", kinds(fs))
	}
	// The hypothetical indexes are gone and nothing real was created.
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_indexes WHERE tablename IN ('orders','customers')").Scan(&n); err != nil || n != 2 {
		t.Errorf("real indexes = %d (%v), want the 2 primary keys", n, err)
	}
}

func TestIndexAdviceWithoutHypopgSaysWhy(t *testing.T) {
	pg, db := freshDB(t)
	c := connect(t, pg, db)
	mustExec(t, c, "CREATE TABLE t (id int, k int)")
	mustExec(t, c, "INSERT INTO t SELECT g, g FROM generate_series(1, 50000) g")
	cfg := analysisConfig()
	cfg.Monitor.IndexAdvice.MinMeanTime = 0 // create_extension stays false
	m := newTestMonitor(t, cfg, Deps{Dial: dialer(pg)})
	runRecorded(t, m.Recorder(), c, db, 0x9, "SELECT * FROM t WHERE k = $1", "SELECT * FROM t WHERE k = 7", true)
	fs := m.analyzer.indexPass(context.Background(), time.Now())
	lim := findKind(fs, KindIndexLimited)
	if len(lim) != 1 || !strings.Contains(lim[0].Evidence.Summary, "create_extension is false") ||
		!strings.Contains(lim[0].Recommendation, "k") || len(findKind(fs, KindIndexAdvice)) != 0 {
		t.Fatalf("findings = %+v", fs)
	}
	var ext int
	c.QueryRow(context.Background(), "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").Scan(&ext)
	if ext != 0 {
		t.Error("hypopg was installed although create_extension is false")
	}
}

// TestTimersPublishFindingsOverHTTP runs the real timers (no direct pass
// calls) against PostgreSQL and reads the finding from /api/v1/bottlenecks
// and /api/v1/recommendations.
func TestTimersPublishFindingsOverHTTP(t *testing.T) {
	pg, db := freshDB(t)
	cfg := analysisConfig()
	cfg.Monitor.AnalysisInterval = 100 * time.Millisecond
	cfg.Monitor.Window = time.Second
	cfg.Monitor.SampleInterval = 100 * time.Millisecond
	cfg.Monitor.DBStatsInterval = 200 * time.Millisecond
	cfg.Monitor.Thresholds.IdleInTransaction = 500 * time.Millisecond
	cfg.Admin.Token = "t"
	m := newTestMonitor(t, cfg, Deps{Dial: dialer(pg), Databases: func() []string { return []string{"*", db} }})
	addr, err := m.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := connect(t, pg, db)
	tx, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	mustExec(t, tx.Conn(), "SELECT 42 /* held open */")
	get := func(path string, v any) {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+path, nil)
		req.Header.Set("Authorization", "Bearer t")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var b BottlenecksResponse
		get("/api/v1/bottlenecks", &b)
		if f := findKind(b.Findings, KindDBIdleInTx); len(f) == 1 {
			if !strings.Contains(f[0].Evidence.Summary, "held open") {
				t.Errorf("evidence = %s", f[0].Evidence.Summary)
			}
			if len(findKind(b.Findings, KindDBUnreachable)) != 0 {
				t.Errorf("the wildcard database was polled: %s", kinds(b.Findings))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle-in-transaction finding over HTTP; findings: %s", kinds(b.Findings))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var r RecommendationsResponse
	get("/api/v1/recommendations", &r)
	found := false
	for _, rec := range r.Recommendations {
		found = found || rec.FindingID == KindDBIdleInTx+":"+db
	}
	if !found || r.Recommendations[0].Rank != 1 {
		t.Errorf("recommendations = %+v", r.Recommendations)
	}
}
