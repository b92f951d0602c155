package monitor_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/monitor"
)

// fastMonitor makes the analyses tick fast enough for a test: the fast
// pass every 200ms over a 3s window, the pg_stat_* poll every 500ms, the
// index advice every second, with thresholds low enough to reach.
const fastMonitor = `
monitor:
  sample_interval: 500ms
  analysis_interval: 200ms
  window: 3s
  db_stats_interval: 500ms
  index_advice: {interval: 1s, min_mean_time: 1ms, top_queries: 5, min_cost_factor: 2}
  thresholds:
    pool_wait_p95: 50ms
    idle_in_transaction: 1s
    uncached_min_calls: 20
    regression_factor: 3
    regression_min_calls: 5
    regression_min_delta: 5ms
    seq_scan_min_rows: 100000
    seq_scan_min_scans: 3
`

// findingTimeout bounds every wait for a finding.
const findingTimeout = 30 * time.Second

// traffic runs f in n goroutines, each with its own connection through
// Sluice, until the returned stop is called (stop waits for them).
func (e *env) traffic(n int, mode pgx.QueryExecMode, f func(c *pgx.Conn, i int) error) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	var mu sync.Mutex
	for w := range n {
		c := e.connect(mode)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := f(c, w*1_000_000+i); err != nil && ctx.Err() == nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if firstErr != nil {
				e.t.Errorf("traffic: %v", firstErr)
			}
		})
	}
}

// checkRecommended asserts the finding is on /api/v1/recommendations.
func (e *env) checkRecommended(f monitor.Finding) {
	e.t.Helper()
	var r monitor.RecommendationsResponse
	e.getJSON("/api/v1/recommendations", &r)
	for i, rec := range r.Recommendations {
		if rec.Rank != i+1 {
			e.t.Errorf("recommendation %d has rank %d", i, rec.Rank)
		}
		if rec.FindingID == f.ID {
			if rec.Action == "" || rec.Why == "" {
				e.t.Errorf("recommendation for %s without action or why: %+v", f.ID, rec)
			}
			return
		}
	}
	e.t.Errorf("finding %s not on /api/v1/recommendations", f.ID)
}

func value(f monitor.Finding, key string) float64 {
	v, _ := f.Evidence.Values[key].(float64)
	return v
}

// TestFindingPoolWait: a pool of one server and four clients running
// pg_sleep: clients wait, and the finding says the one server is busy.
func TestFindingPoolWait(t *testing.T) {
	t.Parallel()
	e := startYAML(t, "", func(b string) string { return replacePoolSize(b, 1) + fastMonitor })
	stop := e.traffic(4, pgx.QueryExecModeSimpleProtocol, func(c *pgx.Conn, _ int) error {
		_, err := c.Exec(context.Background(), "SELECT pg_sleep(0.05)")
		return err
	})
	defer stop()
	subject := e.db + "/" + e.pg.User
	f := e.waitFinding(monitor.KindPoolWait, func(f monitor.Finding) bool { return f.Subject == subject }, findingTimeout, nil)
	stop()
	if value(f, "pool_size") != 1 || value(f, "wait_p95_ms") < 50 || value(f, "checkouts") < 1 || value(f, "peak_clients_waiting") < 1 {
		t.Errorf("pool.wait evidence: %+v", f.Evidence)
	}
	if f.Evidence.Window == "" || f.Evidence.From.IsZero() || !f.Evidence.To.After(f.Evidence.From) {
		t.Errorf("pool.wait evidence window: %q %v..%v", f.Evidence.Window, f.Evidence.From, f.Evidence.To)
	}
	if !strings.Contains(f.Recommendation, "pool size") {
		t.Errorf("pool.wait recommendation does not talk about the pool size: %q", f.Recommendation)
	}
	e.checkRecommended(f)
}

// bigTable is 200k rows with an unindexed column k; hypopg is installed
// when withHypopg.
func bigTable(withHypopg bool) string {
	s := `CREATE TABLE big (id int PRIMARY KEY, k int NOT NULL, pad text);
INSERT INTO big SELECT g, g % 5000, repeat('x', 20) FROM generate_series(1, 200000) g;
ANALYZE big;`
	if withHypopg {
		s = "CREATE EXTENSION hypopg; " + s
	}
	return s
}

// TestFindingIndexAdvice: a slow read filtering an unindexed column of a
// large table, with hypopg installed: the advice names big(k) with both
// estimated costs, and pg_stat_user_tables' seq scans are reported too.
func TestFindingIndexAdvice(t *testing.T) {
	t.Parallel()
	e := startNamed(t, bigTable(true), func(b string) string { return b + fastMonitor })
	stop := e.traffic(2, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT id, pad FROM big WHERE k = $1", i%5000)
		return err
	})
	defer stop()
	f := e.waitFinding(monitor.KindIndexAdvice, func(f monitor.Finding) bool {
		return strings.HasPrefix(f.Subject, e.db+"/")
	}, findingTimeout, nil)
	if col, _ := f.Evidence.Values["column"].(string); col != "k" {
		t.Errorf("index advice column %q, want k: %+v", col, f.Evidence)
	}
	if tbl, _ := f.Evidence.Values["table"].(string); !strings.HasSuffix(tbl, "big") {
		t.Errorf("index advice table %q, want big", tbl)
	}
	before, after := value(f, "cost_before"), value(f, "cost_after")
	if before <= 0 || after <= 0 || before/after < 2 {
		t.Errorf("index advice costs %v -> %v, want a drop of at least 2x", before, after)
	}
	if !strings.Contains(f.Recommendation, "CREATE INDEX") || !strings.Contains(f.Recommendation, "(k)") {
		t.Errorf("index advice recommendation %q", f.Recommendation)
	}
	if !strings.Contains(f.Evidence.Summary, fmt.Sprintf("%.1f", before)) {
		t.Errorf("index advice summary does not show the cost before: %q", f.Evidence.Summary)
	}
	e.checkRecommended(f)

	// Nothing real was created.
	var n int
	if err := e.direct().QueryRow(context.Background(), "SELECT count(*) FROM pg_indexes WHERE tablename = 'big' AND indexdef LIKE '%(k)%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("an index on big(k) exists after advice (n=%d, err=%v)", n, err)
	}

	s := e.waitFinding(monitor.KindDBSeqScan, func(f monitor.Finding) bool {
		return strings.HasPrefix(f.Subject, e.db+"/") && strings.Contains(f.Subject, "big")
	}, findingTimeout, nil)
	if !strings.Contains(s.Evidence.Summary+s.Recommendation, "big") {
		t.Errorf("seq scan finding does not name the table: %+v", s)
	}
}

// TestFindingIndexAdviceLimited: without hypopg in the database the
// advice says it is limited and why.
func TestFindingIndexAdviceLimited(t *testing.T) {
	t.Parallel()
	e := startYAML(t, bigTable(false), func(b string) string { return b + fastMonitor })
	stop := e.traffic(2, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT id, pad FROM big WHERE k = $1", i%5000)
		return err
	})
	defer stop()
	f := e.waitFinding(monitor.KindIndexLimited, func(f monitor.Finding) bool { return f.Subject == e.db }, findingTimeout, nil)
	if !strings.Contains(f.Evidence.Summary+f.Recommendation, "hypopg") {
		t.Errorf("advice_limited does not say why: %+v", f)
	}
	for _, g := range e.findings().Findings {
		if g.Kind == monitor.KindIndexAdvice && strings.HasPrefix(g.Subject, e.db+"/") {
			t.Errorf("index advice without hypopg: %+v", g)
		}
	}
}

// TestFindingIdleInTransaction: a pgx client that BEGINs and then sits
// idle: pg_stat_activity (through the monitoring connection) and Sluice's
// own server states both report it, and committing clears it.
func TestFindingIdleInTransaction(t *testing.T) {
	t.Parallel()
	e := startNamed(t, tableT, func(b string) string { return b + fastMonitor })
	c := e.connect(pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "UPDATE t SET v = 'held' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	d := e.waitFinding(monitor.KindDBIdleInTx, func(f monitor.Finding) bool { return f.Subject == e.db }, findingTimeout, nil)
	if !strings.Contains(d.Evidence.Summary, "UPDATE t SET v") {
		t.Errorf("database.idle_in_transaction does not show the last statement: %q", d.Evidence.Summary)
	}
	if value(d, "oldest_s") < 1 {
		t.Errorf("database.idle_in_transaction oldest_s %v", value(d, "oldest_s"))
	}
	e.checkRecommended(d)

	t.Run("sluice server states", func(t *testing.T) {
		f := e.waitFinding(monitor.KindPoolIdleInTx, func(f monitor.Finding) bool { return f.Subject == e.db+"/"+e.pg.User }, findingTimeout, nil)
		if !strings.Contains(f.Evidence.Summary, "idle in transaction") || f.Recommendation == "" {
			t.Errorf("pool.idle_in_transaction: %+v", f)
		}
	})

	// Committing clears it.
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(findingTimeout)
	for {
		left := 0
		for _, g := range e.findings().Findings {
			if (g.Kind == monitor.KindPoolIdleInTx && g.Subject == e.db+"/"+e.pg.User) || (g.Kind == monitor.KindDBIdleInTx && g.Subject == e.db) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle-in-transaction findings stay after COMMIT")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFindingDatabaseWildcard: database findings for a database reached
// only through the "*" entry (the sample config's only entry).
func TestFindingDatabaseWildcard(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT, func(b string) string { return b + fastMonitor })
	c := e.connect(pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "UPDATE t SET v = 'held' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	e.waitFinding(monitor.KindDBIdleInTx, func(f monitor.Finding) bool { return f.Subject == e.db }, findingTimeout, nil)
}

// TestFindingUncachedRead: a cacheable read repeated with no cache rule
// gets a rule suggestion naming its fingerprint; adding that rule makes
// the read a cache hit.
func TestFindingUncachedRead(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT, func(b string) string { return b + fastMonitor })
	stop := e.traffic(1, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT v FROM t WHERE id = $1", i%100+1)
		time.Sleep(5 * time.Millisecond)
		return err
	})
	defer stop()
	f := e.waitFinding(monitor.KindQueryUncached, func(f monitor.Finding) bool {
		q, _ := f.Evidence.Values["query"].(string)
		return strings.Contains(q+f.Evidence.Summary, "FROM t WHERE id = $1")
	}, findingTimeout, nil)
	q := e.query("SELECT v FROM t WHERE id = $1")
	if q == nil || f.Subject != q.Fingerprint {
		t.Fatalf("uncached_read subject %q, fingerprint in /api/v1/queries %+v", f.Subject, q)
	}
	want := `fingerprint: "` + q.Fingerprint + `"`
	if !strings.Contains(f.Recommendation, want) || !strings.Contains(f.Recommendation, "cache: {ttl:") {
		t.Errorf("uncached_read recommendation lacks %s and a cache ttl: %q", want, f.Recommendation)
	}
	if q.CacheHits != 0 || q.CacheLookups < 20 {
		t.Errorf("fingerprint %s: hits %d lookups %d", q.Fingerprint, q.CacheHits, q.CacheLookups)
	}
	e.checkRecommended(f)

	// The suggested rule is valid config: applied through the reload
	// endpoint, the read is served from cache and the finding goes away.
	_, rule, ok := strings.Cut(f.Recommendation, "add to rules: ")
	if !ok {
		t.Fatalf("no rule in %q", f.Recommendation)
	}
	next := e.yaml + "rules:\n  " + rule + "\n"
	e.inst.App.ReloadFunc = func() error {
		cfg, err := config.Parse([]byte(next), nil)
		if err != nil {
			return err
		}
		return e.inst.App.Reload(cfg)
	}
	if r := e.request("POST", "/api/v1/reload", nil); r.code != 200 {
		t.Fatalf("reload with the suggested rule %q: %d %s", rule, r.code, r.body)
	}
	// New connections (the traffic's prepared statement predates the
	// reload; see the subtest below).
	stop()
	stop = e.traffic(1, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT v FROM t WHERE id = $1", i%3+1)
		time.Sleep(5 * time.Millisecond)
		return err
	})
	deadline := time.Now().Add(findingTimeout)
	for {
		q := e.query("SELECT v FROM t WHERE id = $1")
		still := false
		for _, g := range e.findings().Findings {
			still = still || g.ID == f.ID
		}
		if q != nil && q.CacheHits > 0 && !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after applying the suggested rule: hits %d, finding still there %v", q.CacheHits, still)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()

	t.Run("statement prepared before the reload", func(t *testing.T) {
		next = e.yaml // without the rule
		if r := e.request("POST", "/api/v1/reload", nil); r.code != 200 {
			t.Fatalf("reload: %d %s", r.code, r.body)
		}
		c := e.connect(pgx.QueryExecModeCacheStatement)
		exec(t, c, "SELECT v FROM t WHERE id = $1", 7) // prepared without the rule
		next = e.yaml + "rules:\n  " + rule + "\n"     // then the rule comes
		if r := e.request("POST", "/api/v1/reload", nil); r.code != 200 {
			t.Fatalf("reload: %d %s", r.code, r.body)
		}
		h0 := e.query("SELECT v FROM t WHERE id = $1").CacheHits
		for range 20 {
			exec(t, c, "SELECT v FROM t WHERE id = $1", 9)
			time.Sleep(10 * time.Millisecond)
		}
		if h := e.query("SELECT v FROM t WHERE id = $1").CacheHits; h == h0 {
			t.Errorf("a statement prepared before the reload is never served from cache under the new rule")
		}
	})
}

// TestFindingLatencyRegression: a statement calling a function whose
// pg_sleep delay is raised from 1ms to 40ms after a baseline.
func TestFindingLatencyRegression(t *testing.T) {
	t.Parallel()
	e := startYAML(t, `CREATE TABLE delay (ms float8 NOT NULL); INSERT INTO delay VALUES (1);
CREATE FUNCTION slow_fn(x int) RETURNS int LANGUAGE sql AS $$ SELECT x FROM (SELECT pg_sleep((SELECT ms FROM delay) / 1000.0)) s $$;`,
		func(b string) string { return b + fastMonitor })
	stop := e.traffic(4, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT slow_fn($1)", i)
		return err
	})
	defer stop()
	// A baseline over several analysis ticks.
	time.Sleep(2 * time.Second)
	for _, g := range e.findings().Findings {
		if g.Kind == monitor.KindQueryRegression && strings.Contains(fmt.Sprint(g.Evidence.Values["query"]), "slow_fn") {
			t.Fatalf("regression reported before the delay changed: %+v", g)
		}
	}
	exec(t, e.direct(), "UPDATE delay SET ms = 40")
	f := e.waitFinding(monitor.KindQueryRegression, func(f monitor.Finding) bool {
		return strings.Contains(fmt.Sprint(f.Evidence.Values["query"]), "slow_fn")
	}, findingTimeout, nil)
	if value(f, "factor") < 3 || value(f, "mean_ms") < 5+value(f, "baseline_ms") || value(f, "baseline_ms") > 10 {
		t.Errorf("regression evidence: %s %+v", f.Evidence.Summary, f.Evidence.Values)
	}
	q := e.query("slow_fn")
	if q == nil || f.Subject != q.Fingerprint {
		t.Errorf("regression subject %q, fingerprint %+v", f.Subject, q)
	}
	e.checkRecommended(f)
}

// TestFindingUncachedReadAlreadyRuled: a read that a cache rule already
// covers but whose parameters never repeat must not be told to add the
// rule it already has.
func TestFindingUncachedReadAlreadyRuled(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT, func(b string) string {
		return b + fastMonitor + "rules:\n  - {name: cache-t, match: {relations_any: [t]}, cache: {ttl: 60s}}\n"
	})
	stop := e.traffic(1, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, i int) error {
		_, err := c.Exec(context.Background(), "SELECT v FROM t WHERE id = $1", i%100+1) // 100 distinct keys
		time.Sleep(5 * time.Millisecond)
		return err
	})
	defer stop()
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range e.findings().Findings {
			if f.Kind == monitor.KindQueryUncached && strings.Contains(f.Recommendation, "add to rules") {
				t.Fatalf("told to add a cache rule the statement already has (%v): %s", e.query("FROM t WHERE id = $1").Rules, f.Recommendation)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
