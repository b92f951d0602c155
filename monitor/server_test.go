package monitor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/monitor"
)

type endpoint struct {
	method, path string
	body         string
	public       bool
}

var endpoints = []endpoint{
	{"GET", "/healthz", "", true},
	{"GET", "/readyz", "", false},
	{"GET", "/metrics", "", false},
	{"GET", "/api/v1/stats", "", false},
	{"GET", "/api/v1/queries?sort=calls&limit=5", "", false},
	{"GET", "/api/v1/system", "", false},
	{"GET", "/api/v1/system/history", "", false},
	{"GET", "/api/v1/timeline", "", false},
	{"GET", "/api/v1/bottlenecks", "", false},
	{"GET", "/api/v1/recommendations", "", false},
	{"POST", "/api/v1/cache/purge", `{"all": true}`, false},
	{"POST", "/api/v1/reload", "", false},
	{"GET", "/", "", true},
	{"GET", "/assets/app.js", "", true},
}

func waitSystemSample(t *testing.T, h *harness) {
	eventually(t, 5*time.Second, func() string {
		if r := h.do(t, "GET", "/api/v1/system", "good", nil); r.code != 200 {
			return fmt.Sprintf("system sample not ready: %d %s", r.code, r.body)
		}
		return ""
	})
}

func TestEndpointsAuth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
	}{{"token set", "s3cret-token"}, {"no token", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Admin.Token = tc.token
			h := startHarness(t, cfg, nil)
			waitSystemSample(t, h)
			for _, ep := range endpoints {
				var body []byte
				if ep.body != "" {
					body = []byte(ep.body)
				}
				good := h.do(t, ep.method, ep.path, "good", body)
				if good.code != http.StatusOK {
					t.Errorf("%s %s with good token: %d %s", ep.method, ep.path, good.code, good.body)
				}
				none := h.do(t, ep.method, ep.path, "", body)
				bad := h.do(t, ep.method, ep.path, "wrong-token", body)
				if tc.token == "" || ep.public {
					if none.code != http.StatusOK {
						t.Errorf("%s %s without token: %d, want 200", ep.method, ep.path, none.code)
					}
					continue
				}
				for _, r := range []reply{none, bad} {
					if r.code != http.StatusUnauthorized {
						t.Errorf("%s %s unauthenticated: %d, want 401", ep.method, ep.path, r.code)
						continue
					}
					var e monitor.APIError
					r.json(t, &e)
					if e.Status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s %s: bad 401 body/header: %s %v", ep.method, ep.path, r.body, r.header)
					}
				}
				// A token that is a prefix of the real one must not pass.
				if r := h.do(t, ep.method, ep.path, tc.token[:len(tc.token)-1], body); r.code != 401 {
					t.Errorf("%s %s with truncated token: %d", ep.method, ep.path, r.code)
				}
			}
		})
	}
}

func TestWrongMethod(t *testing.T) {
	cfg := testConfig()
	cfg.Admin.Token = "tok"
	h := startHarness(t, cfg, nil)
	for _, ep := range endpoints {
		method := "DELETE"
		if ep.method == "GET" {
			method = "POST"
		} else if ep.method == "POST" {
			method = "GET"
		}
		r := h.do(t, method, strings.Split(ep.path, "?")[0], "good", nil)
		if r.code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", method, ep.path, r.code)
			continue
		}
		var e monitor.APIError
		r.json(t, &e)
		if !strings.Contains(r.header.Get("Allow"), ep.method) || e.Status != 405 {
			t.Errorf("%s %s: Allow=%q body=%s", method, ep.path, r.header.Get("Allow"), r.body)
		}
	}
}

func TestOversizeBodyAndBadInput(t *testing.T) {
	cfg := testConfig()
	cfg.Admin.Token = "tok"
	cfg.Admin.MaxBodyBytes = 64
	h := startHarness(t, cfg, nil)
	big := []byte(`{"relation": "` + strings.Repeat("x", 200) + `"}`)
	for _, path := range []string{"/api/v1/cache/purge", "/api/v1/reload"} {
		if r := h.do(t, "POST", path, "good", big); r.code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s oversize: %d %s", path, r.code, r.body)
		}
		// Without Content-Length (chunked) the limit still applies while reading.
		req, _ := http.NewRequest("POST", h.base+path, struct{ *bytes.Reader }{bytes.NewReader(big)})
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s chunked oversize: %d", path, res.StatusCode)
		}
	}
	if h.reloads != 0 || len(h.purges) != 0 {
		t.Errorf("oversize requests reached the handlers: reloads=%d purges=%v", h.reloads, h.purges)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{}`, 400},
		{`{"relation":"t","all":true}`, 400},
		{`{"nope":1}`, 400},
		{`not json`, 400},
		{`{"relation":"public.t"}`, 200},
		{`{"fingerprint":"00ab"}`, 200},
	} {
		if r := h.do(t, "POST", "/api/v1/cache/purge", "good", []byte(tc.body)); r.code != tc.code {
			t.Errorf("purge %s: %d %s, want %d", tc.body, r.code, r.body, tc.code)
		}
	}
	want := []monitor.PurgeRequest{{Relation: "public.t"}, {Fingerprint: "00ab"}}
	if fmt.Sprint(h.purges) != fmt.Sprint(want) {
		t.Errorf("purges = %v, want %v", h.purges, want)
	}
	for _, p := range []string{"/nope", "/api/v1", "/api/v1/queries/x", "/assets/index.html", "/assets/../server.go"} {
		if r := h.do(t, "GET", p, "good", nil); r.code != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
	for _, q := range []string{"sort=bogus", "limit=0", "limit=x", "limit=100000"} {
		if r := h.do(t, "GET", "/api/v1/queries?"+q, "good", nil); r.code != 400 {
			t.Errorf("queries?%s: %d, want 400", q, r.code)
		}
	}
}

func TestReloadAndReadiness(t *testing.T) {
	cfg := testConfig()
	failReload := errors.New("bad config: x")
	var reloadErr error
	h := startHarness(t, cfg, func(d *monitor.Deps) {
		d.Reload = func() error { return reloadErr }
		d.Ready = func(context.Context) map[string]error {
			return map[string]error{"app": nil, "reports": errors.New("connection refused")}
		}
		d.RedisStats = func(context.Context) (monitor.RedisStats, error) {
			return monitor.RedisStats{}, errors.New("dial tcp: refused")
		}
	})
	if r := h.do(t, "POST", "/api/v1/reload", "", nil); r.code != 200 {
		t.Errorf("reload: %d %s", r.code, r.body)
	}
	reloadErr = failReload
	if r := h.do(t, "POST", "/api/v1/reload", "", nil); r.code != 500 || !contains(string(r.body), "bad config") {
		t.Errorf("failing reload: %d %s", r.code, r.body)
	}
	r := h.do(t, "GET", "/readyz", "", nil)
	var st monitor.ReadyStatus
	r.json(t, &st)
	if r.code != 503 || st.Ready || !st.Databases["app"].OK || st.Databases["reports"].OK || st.Redis == nil || st.Redis.OK {
		t.Errorf("readyz = %d %s", r.code, r.body)
	}
}

func TestReadyWithRedisDownIsStillReady(t *testing.T) {
	h := startHarness(t, testConfig(), func(d *monitor.Deps) {
		d.RedisStats = func(context.Context) (monitor.RedisStats, error) { return monitor.RedisStats{}, errors.New("down") }
	})
	if r := h.do(t, "GET", "/readyz", "", nil); r.code != 200 || !contains(string(r.body), `"redis"`) {
		t.Errorf("readyz = %d %s", r.code, r.body)
	}
}

// TestReadyzRedisSubscribed: Redis is ok in /readyz only once connected
// and subscribed to invalidations; either way Sluice stays ready.
func TestReadyzRedisSubscribed(t *testing.T) {
	for _, tc := range []struct {
		st     monitor.RedisStats
		ok     bool
		reason string
	}{
		{monitor.RedisStats{Connected: true, Subscribed: true}, true, ""},
		{monitor.RedisStats{Connected: true}, false, "not subscribed"},
		{monitor.RedisStats{Subscribed: true}, false, "not connected"},
	} {
		h := startHarness(t, testConfig(), func(d *monitor.Deps) {
			d.RedisStats = func(context.Context) (monitor.RedisStats, error) { return tc.st, nil }
		})
		r := h.do(t, "GET", "/readyz", "", nil)
		var st monitor.ReadyStatus
		r.json(t, &st)
		if r.code != 200 || st.Redis == nil || st.Redis.OK != tc.ok || !strings.Contains(st.Redis.Error, tc.reason) {
			t.Errorf("%+v: readyz = %d %s", tc.st, r.code, r.body)
		}
	}
}

func TestQueriesEndpoint(t *testing.T) {
	h := startHarness(t, testConfig(), nil)
	rec := h.m.Recorder()
	for i := 0; i < 30; i++ {
		rec.Query(monitor.QueryEvent{Database: "app", User: "u", Fingerprint: 1, Normalized: "SELECT $1", Duration: time.Millisecond, Rows: 1})
	}
	for i := 0; i < 10; i++ {
		rec.Query(monitor.QueryEvent{Database: "app", User: "u", Fingerprint: 2, Normalized: "SELECT pg_sleep($1)", Duration: 20 * time.Millisecond, Rows: 100,
			Cacheable: true, CacheHit: i%2 == 0, Rules: []string{"cache-reads"}})
	}
	rec.Query(monitor.QueryEvent{Database: "app", Fingerprint: 3, Normalized: "SELECT broken", Duration: time.Microsecond, SQLState: "42P01"})
	rec.Query(monitor.QueryEvent{Database: "other", Fingerprint: 1, Normalized: "SELECT $1", Duration: time.Millisecond})
	get := func(q string) monitor.QueriesResponse {
		r := h.do(t, "GET", "/api/v1/queries?"+q, "", nil)
		if r.code != 200 {
			t.Fatalf("queries?%s: %d %s", q, r.code, r.body)
		}
		var out monitor.QueriesResponse
		r.json(t, &out)
		return out
	}
	if q := get("sort=calls&limit=1"); len(q.Queries) != 1 || q.Total != 4 || q.Queries[0].Calls != 30 || q.Queries[0].Database != "app" {
		t.Errorf("sort=calls: %+v", q)
	}
	q := get("sort=total_time")
	if len(q.Queries) != 4 || q.Queries[0].Fingerprint != "0000000000000002" {
		t.Fatalf("sort=total_time: %+v", q)
	}
	top := q.Queries[0]
	if top.Calls != 10 || top.Rows != 1000 || top.CacheHits != 5 || top.CacheHitRatio != 0.5 || len(top.Rules) != 1 ||
		top.MeanTimeMs < 19.9 || top.MeanTimeMs > 20.1 || top.P99Ms < 19.5 || top.P99Ms > 20.5 || top.Query != "SELECT pg_sleep($1)" {
		t.Errorf("top row = %+v", top)
	}
	if q := get("sort=errors&limit=1"); q.Queries[0].Errors != 1 || q.Queries[0].Fingerprint != "0000000000000003" {
		t.Errorf("sort=errors: %+v", q.Queries)
	}
	if q := get("database=other"); q.Total != 1 {
		t.Errorf("database filter: %+v", q)
	}
	for _, s := range []string{"mean_time", "p99", "rows"} {
		if q := get("sort=" + s + "&limit=1"); q.Queries[0].Fingerprint != "0000000000000002" {
			t.Errorf("sort=%s top = %s", s, q.Queries[0].Fingerprint)
		}
	}
}

func TestStatsAndHistoryEndpoints(t *testing.T) {
	h := startHarness(t, testConfig(), nil)
	var st monitor.StatsResponse
	h.do(t, "GET", "/api/v1/stats", "", nil).json(t, &st)
	if len(st.Pools) != 1 || st.Pools[0].Size != 4 || len(st.Clients) != 1 || st.MaxClientConn != 100 || st.Cache == nil || st.Cache.Hits != 5 {
		t.Errorf("stats = %+v", st)
	}
	h.m.Recorder().Query(monitor.QueryEvent{Database: "app", Fingerprint: 9, Duration: 3 * time.Millisecond, Cacheable: true, CacheHit: true})
	eventually(t, 5*time.Second, func() string {
		var tl struct {
			Samples []monitor.TrafficSample `json:"samples"`
		}
		h.do(t, "GET", "/api/v1/timeline", "", nil).json(t, &tl)
		for _, s := range tl.Samples {
			if s.QPS > 0 && s.P50Ms > 2.9 && s.P50Ms < 3.1 && s.CacheHitRatio == 1 && s.PoolSize == 4 {
				return ""
			}
		}
		return fmt.Sprintf("no timeline sample with the recorded query among %d samples", len(tl.Samples))
	})
	eventually(t, 5*time.Second, func() string {
		var hist struct {
			Samples []monitor.SystemSample `json:"samples"`
		}
		h.do(t, "GET", "/api/v1/system/history", "", nil).json(t, &hist)
		if len(hist.Samples) < 2 {
			return "fewer than 2 system samples"
		}
		s := hist.Samples[len(hist.Samples)-1]
		if s.CPU.Cores < 1 || len(s.CPU.PerCore) != s.CPU.Cores || s.Memory.Total == 0 || s.Process.RSS == 0 ||
			s.Process.Goroutines == 0 || len(s.Disks) != 1 || s.Disks[0].Total == 0 {
			return fmt.Sprintf("incomplete system sample: %+v", s)
		}
		return ""
	})
}

func TestDisabledMonitorStillServes(t *testing.T) {
	cfg := testConfig()
	cfg.Monitor.Enabled = false
	h := startHarness(t, cfg, nil)
	if _, ok := h.m.Recorder().(monitor.Nop); !ok {
		t.Fatalf("Recorder() = %T, want Nop", h.m.Recorder())
	}
	for _, p := range []string{"/healthz", "/metrics", "/api/v1/stats", "/api/v1/queries", "/api/v1/bottlenecks"} {
		if r := h.do(t, "GET", p, "", nil); r.code != 200 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
}

func TestStartCloseNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := testConfig()
	cfg.Monitor.IndexAdvice.Enabled = true
	m, err := monitor.New(cfg, monitor.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := m.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr.String() + "/healthz"); err == nil {
		t.Error("listener still open after Close")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	eventually(t, 5*time.Second, func() string {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Sprintf("goroutines: %d before Start, %d after Close", before, n)
		}
		return ""
	})
}

func TestReconfigureChangesTokenAndKeepsListener(t *testing.T) {
	cfg := testConfig()
	cfg.Admin.Token = "old"
	h := startHarness(t, cfg, nil)
	next := cfg
	next.Admin.Token = "new"
	next.Admin.Listen = "127.0.0.1:1" // needs a restart: ignored
	if err := h.m.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	if r := h.do(t, "GET", "/api/v1/stats", "old", nil); r.code != 401 {
		t.Errorf("old token after reload: %d", r.code)
	}
	if r := h.do(t, "GET", "/api/v1/stats", "new", nil); r.code != 200 {
		t.Errorf("new token after reload: %d", r.code)
	}
	bad := cfg
	bad.Admin.Token = ""
	bad.Admin.Listen = "0.0.0.0:9187"
	if err := h.m.Reconfigure(bad); err == nil {
		t.Error("Reconfigure accepted a public listener without token")
	}
}

func TestHistorySince(t *testing.T) {
	h := startHarness(t, testConfig(), nil)
	type hist struct {
		Capacity int                     `json:"capacity"`
		Samples  []monitor.TrafficSample `json:"samples"`
	}
	var all hist
	eventually(t, 5*time.Second, func() string {
		h.do(t, "GET", "/api/v1/timeline", "", nil).json(t, &all)
		if len(all.Samples) < 3 {
			return "fewer than 3 timeline samples"
		}
		return ""
	})
	if all.Capacity != 100 { // 10s history / 100ms samples
		t.Errorf("capacity = %d", all.Capacity)
	}
	since := all.Samples[1].Time.Format(time.RFC3339Nano)
	var newer hist
	h.do(t, "GET", "/api/v1/timeline?since="+since, "", nil).json(t, &newer)
	if len(newer.Samples) == 0 || !newer.Samples[0].Time.Equal(all.Samples[2].Time) {
		t.Errorf("since %s returned %d samples starting %v", since, len(newer.Samples), newer.Samples)
	}
	var sys struct {
		Samples []monitor.SystemSample `json:"samples"`
	}
	h.do(t, "GET", "/api/v1/system/history?since="+time.Now().Add(time.Hour).Format(time.RFC3339Nano), "", nil).json(t, &sys)
	if len(sys.Samples) != 0 {
		t.Errorf("future since returned %d samples", len(sys.Samples))
	}
	if r := h.do(t, "GET", "/api/v1/timeline?since=yesterday", "", nil); r.code != 400 {
		t.Errorf("bad since: %d", r.code)
	}
}
