package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/monitor"
)

var dbSeq atomic.Int64

// env is one test's database and a Sluice in front of it.
type env struct {
	t     *testing.T
	pg    testenv.Postgres
	db    string
	inst  *sluicetest.Instance
	token string // sent as a bearer token when set
	yaml  string // the config the instance started with
}

// newDB creates a fresh database (dropped when the test ends) and runs
// setup in it directly on PostgreSQL.
func newDB(t *testing.T, setup string) (testenv.Postgres, string) {
	t.Helper()
	pg := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	name := fmt.Sprintf("sluice_mon_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
		admin.Close(ctx)
	})
	if setup != "" {
		c, err := pgx.Connect(ctx, pg.DSN(name))
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, setup, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	return pg, name
}

// start creates a database with setup and a Sluice (transaction pooling
// unless extra overrides pool:) with extra YAML appended.
func start(t *testing.T, setup, extra string) *env {
	t.Helper()
	pg, db := newDB(t, setup)
	inst := sluicetest.Start(t, sluicetest.Base(pg, "transaction")+extra)
	return &env{t: t, pg: pg, db: db, inst: inst}
}

// startYAML is start with a full config built from the base by f.
func startYAML(t *testing.T, setup string, f func(base string) string) *env {
	t.Helper()
	pg, db := newDB(t, setup)
	y := f(sluicetest.Base(pg, "transaction"))
	inst := sluicetest.Start(t, y)
	return &env{t: t, pg: pg, db: db, inst: inst, yaml: y}
}

// connect is a pgx connection through Sluice to the test database.
func (e *env) connect(mode pgx.QueryExecMode) *pgx.Conn {
	e.t.Helper()
	cfg, err := pgx.ParseConfig(e.inst.DSN(e.pg.User, e.pg.Password, e.db))
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		e.t.Fatalf("connect through sluice: %v", err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct is a pgx connection straight to PostgreSQL.
func (e *env) direct() *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.pg.DSN(e.db))
	if err != nil {
		e.t.Fatalf("connect direct: %v", err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// exec runs sql on c and fails the test on error.
func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// count runs a query returning rows and gives their number.
func count(t *testing.T, c *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// response is one admin HTTP answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// request sends one request to the admin port with e.token (if any).
func (e *env) request(method, path string, body []byte) response {
	e.t.Helper()
	return e.requestAuth(method, path, body, e.token)
}

// requestAuth sends one request with the given bearer token ("" = none).
func (e *env) requestAuth(method, path string, body []byte, token string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+e.inst.Admin+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// getJSON fetches path (which must answer 200) into out.
func (e *env) getJSON(path string, out any) {
	e.t.Helper()
	r := e.request(http.MethodGet, path, nil)
	if r.code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		e.t.Fatalf("GET %s: %v\n%s", path, err, r.body)
	}
}

// stats is /api/v1/stats.
func (e *env) stats() monitor.StatsResponse {
	e.t.Helper()
	var s monitor.StatsResponse
	e.getJSON("/api/v1/stats", &s)
	return s
}

// queries is /api/v1/queries of this test's database.
func (e *env) queries() []monitor.QueryStats {
	e.t.Helper()
	var q monitor.QueriesResponse
	e.getJSON("/api/v1/queries?limit=10000&database="+e.db, &q)
	return q.Queries
}

// query finds the statistics of the fingerprint whose normalized text
// contains all parts, or nil.
func (e *env) query(parts ...string) *monitor.QueryStats {
	e.t.Helper()
	for _, q := range e.queries() {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(q.Query, p)
		}
		if ok {
			return &q
		}
	}
	return nil
}

// findings is /api/v1/bottlenecks.
func (e *env) findings() monitor.BottlenecksResponse {
	e.t.Helper()
	var b monitor.BottlenecksResponse
	e.getJSON("/api/v1/bottlenecks", &b)
	return b
}

// waitFinding polls /api/v1/bottlenecks until a finding of kind whose
// subject satisfies match appears, or fails after timeout listing what
// was there. poke runs between polls (to keep traffic going) when set.
func (e *env) waitFinding(kind string, match func(monitor.Finding) bool, timeout time.Duration, poke func()) monitor.Finding {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []monitor.Finding
	for time.Now().Before(deadline) {
		last = e.findings().Findings
		for _, f := range last {
			if f.Kind == kind && (match == nil || match(f)) {
				return f
			}
		}
		if poke != nil {
			poke()
		}
		time.Sleep(200 * time.Millisecond)
	}
	var seen []string
	for _, f := range last {
		seen = append(seen, f.ID+" ("+f.Evidence.Summary+")")
	}
	e.t.Fatalf("no %s finding within %s; findings: %q", kind, timeout, seen)
	return monitor.Finding{}
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	r := e.request(http.MethodGet, "/metrics", nil)
	if r.code != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d %s", r.code, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample sums the values (counter, gauge, or histogram/summary count) of
// family name over the series whose labels include every pair in labels.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels...) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels ...string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sluiceBase is sluicetest.Base in transaction mode.
func sluiceBase(pg testenv.Postgres) string { return sluicetest.Base(pg, "transaction") }

// startInst starts a Sluice from a full config.
func startInst(t *testing.T, yaml string) *sluicetest.Instance { return sluicetest.Start(t, yaml) }

// replacePoolSize sets pool.default_pool_size in a base config.
func replacePoolSize(base string, n int) string {
	return strings.Replace(base, "default_pool_size: 10", "default_pool_size: "+strconv.Itoa(n), 1)
}

// namedDB adds an explicit databases: entry for db (same server as the
// wildcard): the monitor polls pg_stat_* only for named databases.
func namedDB(base string, pg testenv.Postgres, db string) string {
	return strings.Replace(base, "databases:\n",
		fmt.Sprintf("databases:\n  - {name: %q, host: %q, port: %s, sslmode: disable}\n", db, pg.Host, pg.Port), 1)
}

// startNamed is startYAML with the test database named in databases:.
func startNamed(t *testing.T, setup string, f func(base string) string) *env {
	t.Helper()
	pg, db := newDB(t, setup)
	y := f(namedDB(sluicetest.Base(pg, "transaction"), pg, db))
	inst := sluicetest.Start(t, y)
	return &env{t: t, pg: pg, db: db, inst: inst, yaml: y}
}
