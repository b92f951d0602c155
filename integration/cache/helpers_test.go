package cache_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// user is a client login added to the generated config.
type user struct{ name, password string }

// setup is one test's world: its own database on the test PostgreSQL.
type setup struct {
	t      *testing.T
	pg     testenv.Postgres
	db     string
	prefix string // Redis key prefix, unique per test
}

// newSetup creates a database with a unique name and drops it at cleanup.
func newSetup(t *testing.T) *setup {
	t.Helper()
	pg := testenv.PG(t)
	id := randID()
	s := &setup{t: t, pg: pg, db: "cache_e2e_" + id, prefix: "sluicetest" + id}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+s.db); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			t.Logf("drop %s: %v", s.db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v", s.db, err)
		}
	})
	return s
}

func randID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// direct is a superuser connection straight to PostgreSQL, closed at cleanup.
func (s *setup) direct() *pgx.Conn {
	s.t.Helper()
	return connect(s.t, s.pg.DSN(s.db))
}

// exec runs statements directly on PostgreSQL as the superuser.
func (s *setup) exec(sqls ...string) {
	s.t.Helper()
	c := s.direct()
	defer c.Close(context.Background())
	for _, q := range sqls {
		if _, err := c.Exec(context.Background(), q); err != nil {
			s.t.Fatalf("direct %q: %v", q, err)
		}
	}
}

// conf is the Sluice YAML: the test PostgreSQL behind "*", the superuser and
// extra users as logins, the pool mode, and extra top-level YAML.
func (s *setup) conf(mode string, extra string, users ...user) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
log: {level: warn, format: json}
auth:
  users:
    - {name: %q, password: %q}
`, s.pg.User, s.pg.Password)
	for _, u := range users {
		fmt.Fprintf(&b, "    - {name: %q, password: %q}\n", u.name, u.password)
	}
	fmt.Fprintf(&b, `pool:
  mode: %s
  default_pool_size: 10
  server_check_delay: 0s
databases:
  - {name: "*", host: %q, port: %s, sslmode: disable}
`, mode, s.pg.Host, s.pg.Port)
	b.WriteString(extra)
	return b.String()
}

// cacheYAML is a cache section; redis "" means L1 only.
func (s *setup) cacheYAML(mode, redis string, more ...string) string {
	y := fmt.Sprintf("cache:\n  mode: %s\n  default_ttl: 60s\n", mode)
	if redis != "" {
		// timeout and ack_timeout well above the defaults, for a loaded CI
		// machine: a Redis call that times out is a miss (a warm-up proof
		// would fail), and past ack_timeout an instance may serve the old
		// result for a moment (documented), not what these tests check.
		y += fmt.Sprintf("  redis: {addrs: [%q], key_prefix: %q, timeout: 1s, ack_timeout: 2s}\n", redis, s.prefix)
	}
	for _, m := range more {
		y += "  " + m + "\n"
	}
	return y
}

// ruleYAML caches every statement reading one of the relations for 60s.
func ruleYAML(rels ...string) string {
	return fmt.Sprintf("rules:\n  - {name: cache-them, match: {relations_any: [%s]}, cache: {ttl: 60s}}\n", strings.Join(rels, ", "))
}

// start runs a Sluice in-process for this test. With Redis configured it
// returns once the instance is subscribed to invalidations (/readyz says
// redis ok): before that the cache answers nothing, so a test's first
// reads would not be the fills and hits it counts on.
func (s *setup) start(mode, extra string, users ...user) *sluicetest.Instance {
	s.t.Helper()
	inst := sluicetest.Start(s.t, s.conf(mode, extra, users...))
	if strings.Contains(extra, "redis:") {
		waitSubscribed(s.t, inst)
	}
	return inst
}

func waitSubscribed(t *testing.T, inst *sluicetest.Instance) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + inst.Admin + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		var st struct {
			Redis *struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			} `json:"redis"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		switch {
		case err != nil:
			last = err.Error()
		case st.Redis == nil:
			t.Fatal("/readyz reports no Redis although the cache has one")
		case st.Redis.OK:
			return
		default:
			last = st.Redis.Error
		}
	}
	t.Fatalf("the cache did not subscribe to Redis within 10 s: %s", last)
}

// viaSluice is a pgx connection through inst as the superuser.
func (s *setup) viaSluice(inst *sluicetest.Instance, opts ...func(*pgx.ConnConfig)) *pgx.Conn {
	s.t.Helper()
	return connect(s.t, inst.DSN(s.pg.User, s.pg.Password, s.db), opts...)
}

func connect(t *testing.T, dsn string, opts ...func(*pgx.ConnConfig)) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	for _, o := range opts {
		o(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// execMode sets pgx's default query exec mode.
func execMode(m pgx.QueryExecMode) func(*pgx.ConnConfig) {
	return func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = m }
}

// queryInt runs a one-value query and returns it as int64.
func queryInt(t *testing.T, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var v int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	return v
}

// queryText returns every row of a query rendered as text, for comparisons.
func queryText(t *testing.T, c *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("%q: values: %v", sql, err)
		}
		fmt.Fprintf(&b, "%v\n", vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	return b.String()
}

// metrics is one scrape of an instance's /metrics, by series
// ("name{label=\"v\"}" exactly as exposed, or "name" without labels).
type metrics map[string]float64

// scrape reads the Prometheus text exposition of the admin port.
func scrape(t *testing.T, inst *sluicetest.Instance) metrics {
	t.Helper()
	resp, err := http.Get("http://" + inst.Admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// get is a series value (0 when absent).
func (m metrics) get(name string, labels ...string) float64 {
	if len(labels) == 0 {
		return m[name]
	}
	var parts []string
	for i := 0; i+1 < len(labels); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	return m[name+"{"+strings.Join(parts, ",")+"}"]
}

// Metric names the tests read.
const (
	mHits   = "sluice_resultcache_hits_total"
	mMisses = "sluice_resultcache_misses_total"
	mFills  = "sluice_resultcache_fills_total"
	mSkips  = "sluice_resultcache_skips_total"
)

// hits is the sum of hits at every level.
func (m metrics) hits() float64 {
	return m.get(mHits, "level", "l1") + m.get(mHits, "level", "l2") + m.get(mHits, "level", "coalesced")
}

// queryStat is the part of /api/v1/queries the tests use.
type queryStat struct {
	Fingerprint  string `json:"fingerprint"`
	Query        string `json:"query"`
	Calls        int64  `json:"calls"`
	CacheHits    int64  `json:"cache_hits"`
	CacheLookups int64  `json:"cache_lookups"`
}

// dbCacheHits is the number of statements this instance served from the
// cache in database db: per instance and per database, so unlike the
// process-wide Prometheus counters it is not moved by tests running in
// parallel.
func dbCacheHits(t *testing.T, inst *sluicetest.Instance, db string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + inst.Admin + "/api/v1/queries?limit=10000&database=" + db)
	if err != nil {
		t.Fatalf("queries: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Queries []queryStat `json:"queries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("queries: %v", err)
	}
	var n int64
	for _, q := range out.Queries {
		n += q.CacheHits
	}
	return n
}

// hitProof asserts that between before and now the instance served at least
// want statements of this test's database from the cache and the
// process-wide hit counter moved by at least as much.
type hitProof struct {
	t     *testing.T
	inst  *sluicetest.Instance
	db    string
	m     metrics
	local int64
}

func (s *setup) proof(t *testing.T, inst *sluicetest.Instance) *hitProof {
	t.Helper()
	return &hitProof{t: t, inst: inst, db: s.db, m: scrape(t, inst), local: dbCacheHits(t, inst, s.db)}
}

// hits is how many hits (local to the database, global in metrics) happened since.
func (p *hitProof) hits() (local int64, global float64) {
	p.t.Helper()
	return dbCacheHits(p.t, p.inst, p.db) - p.local, scrape(p.t, p.inst).hits() - p.m.hits()
}

// expect asserts the number of local hits since the proof was taken, and
// that the metrics saw at least that many.
func (p *hitProof) expect(what string, want int64) {
	p.t.Helper()
	local, global := p.hits()
	// The monitor may record a statement a moment after its answer is sent.
	for deadline := time.Now().Add(time.Second); local != want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		local, global = p.hits()
	}
	if local != want {
		p.t.Fatalf("%s: %d cache hits in database %s, want %d (metrics moved by %v)", what, local, p.db, want, global)
	}
	if global < float64(want) {
		p.t.Fatalf("%s: %s moved by %v, want >= %d", what, mHits, global, want)
	}
}

// delta is a metric series' change since the proof was taken.
func (p *hitProof) delta(name string, labels ...string) float64 {
	p.t.Helper()
	return scrape(p.t, p.inst).get(name, labels...) - p.m.get(name, labels...)
}
