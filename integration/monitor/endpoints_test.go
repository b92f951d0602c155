package monitor_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

const baseAdmin = `admin: {listen: "127.0.0.1:0"}`

// withAdmin replaces the base config's admin: line.
func withAdmin(admin string) func(string) string {
	return func(base string) string {
		return strings.Replace(base, baseAdmin, admin, 1)
	}
}

// cacheRule is an L1-only result cache with one rule caching reads of t.
const cacheRule = `
cache: {mode: rules, default_ttl: 60s}
rules:
  - {name: cache-t, match: {relations_any: [t]}, cache: {ttl: 60s}}
monitor: {sample_interval: 200ms, analysis_interval: 200ms, window: 2s}
`

const tableT = `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`

// endpoint is one admin route and how a good request to it looks.
type endpoint struct {
	method string
	path   string
	body   string
	auth   bool // needs the token when one is set
	want   int  // status of a good request
	check  func(t *testing.T, r response)
}

func jsonHas(keys ...string) func(t *testing.T, r response) {
	return func(t *testing.T, r response) {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.body)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON has no %q: %s", k, r.body)
			}
		}
	}
}

var endpoints = []endpoint{
	{method: "GET", path: "/healthz", auth: false, want: 200, check: jsonHas("status", "uptime_s")},
	{method: "GET", path: "/readyz", auth: true, want: 200},
	{method: "GET", path: "/metrics", auth: true, want: 200, check: func(t *testing.T, r response) {
		if !strings.Contains(string(r.body), "sluice_proxy_client_connections") || !strings.Contains(string(r.body), "go_goroutines") {
			t.Errorf("/metrics lacks sluice_proxy_client_connections or go_goroutines")
		}
	}},
	{method: "GET", path: "/api/v1/stats", auth: true, want: 200, check: jsonHas("pools", "clients", "servers", "totals", "monitor_enabled", "cache")},
	{method: "GET", path: "/api/v1/queries?sort=calls&limit=5", auth: true, want: 200, check: func(t *testing.T, r response) {
		var q struct {
			Sort    string           `json:"sort"`
			Limit   int              `json:"limit"`
			Queries []map[string]any `json:"queries"`
		}
		if err := json.Unmarshal(r.body, &q); err != nil {
			t.Fatal(err)
		}
		if q.Sort != "calls" || q.Limit != 5 || len(q.Queries) == 0 || len(q.Queries) > 5 {
			t.Errorf("queries?sort=calls&limit=5: sort %q limit %d, %d rows", q.Sort, q.Limit, len(q.Queries))
		}
	}},
	{method: "GET", path: "/api/v1/system", auth: true, want: 200, check: jsonHas("cpu", "memory", "process")},
	{method: "GET", path: "/api/v1/system/history", auth: true, want: 200, check: jsonHas("samples", "capacity")},
	{method: "GET", path: "/api/v1/timeline", auth: true, want: 200, check: jsonHas("samples")},
	{method: "GET", path: "/api/v1/bottlenecks", auth: true, want: 200, check: jsonHas("generated_at", "enabled", "findings")},
	{method: "GET", path: "/api/v1/recommendations", auth: true, want: 200, check: jsonHas("generated_at", "recommendations")},
	{method: "POST", path: "/api/v1/cache/purge", body: `{"all":true}`, auth: true, want: 200, check: jsonHas("purged")},
	{method: "GET", path: "/", auth: false, want: 200, check: func(t *testing.T, r response) {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("dashboard Content-Type %q", ct)
		}
		if !strings.Contains(string(r.body), "/assets/app.js") {
			t.Errorf("dashboard page does not load /assets/app.js")
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") && !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("dashboard CSP %q does not restrict to own origin", csp)
		}
	}},
	{method: "GET", path: "/assets/app.js", auth: false, want: 200},
	{method: "GET", path: "/assets/style.css", auth: false, want: 200},
}

// waitSystem waits for the first system sample (503 before it).
func (e *env) waitSystem() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.request("GET", "/api/v1/system", nil); r.code == 200 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatal("/api/v1/system never answered 200")
}

// TestEndpoints calls every admin endpoint through a real Sluice with and
// without admin.token: good requests, missing and wrong tokens, wrong
// methods, oversize bodies and unknown paths.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		token string
	}{{"no token", ""}, {"token", "s3cret-token"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			admin := `admin: {listen: "127.0.0.1:0", max_body_bytes: 1024}`
			if tc.token != "" {
				admin = `admin: {listen: "127.0.0.1:0", max_body_bytes: 1024, token: "` + tc.token + `"}`
			}
			e := startYAML(t, tableT, func(b string) string { return withAdmin(admin)(b) + cacheRule })
			e.token = tc.token
			c := e.connect(pgx.QueryExecModeSimpleProtocol)
			count(t, c, "SELECT * FROM t WHERE id < 10")
			e.waitSystem()

			for _, ep := range endpoints {
				var body []byte
				if ep.body != "" {
					body = []byte(ep.body)
				}
				r := e.request(ep.method, ep.path, body)
				if r.code != ep.want {
					t.Errorf("%s %s: %d, want %d: %s", ep.method, ep.path, r.code, ep.want, r.body)
					continue
				}
				if ep.check != nil {
					ep.check(t, r)
				}
				// Without a token, or with a wrong one.
				for _, bad := range []string{"", "wrong-" + tc.token} {
					r := e.requestAuth(ep.method, ep.path, body, bad)
					want := ep.want
					if tc.token != "" && ep.auth {
						want = http.StatusUnauthorized
					}
					if r.code != want {
						t.Errorf("%s %s with token %q: %d, want %d", ep.method, ep.path, bad, r.code, want)
					}
					if want == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s %s 401 without WWW-Authenticate: Bearer", ep.method, ep.path)
					}
				}
				// Wrong method.
				wrong := "POST"
				if ep.method == "POST" {
					wrong = "GET"
				}
				if r := e.request(wrong, ep.path, nil); r.code != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", wrong, ep.path, r.code)
				} else if r.header.Get("Allow") == "" {
					t.Errorf("%s %s: 405 without Allow", wrong, ep.path)
				}
			}
			// Oversize bodies.
			big := []byte(`{"relation":"` + strings.Repeat("x", 4096) + `"}`)
			for _, p := range []string{"/api/v1/cache/purge", "/api/v1/reload"} {
				if r := e.request("POST", p, big); r.code != http.StatusRequestEntityTooLarge {
					t.Errorf("POST %s with %d bytes: %d, want 413: %s", p, len(big), r.code, r.body)
				}
			}
			if r := e.request("GET", "/api/v1/nope", nil); r.code != http.StatusNotFound {
				t.Errorf("GET /api/v1/nope: %d, want 404", r.code)
			}
			// Errors are JSON.
			r := e.request("DELETE", "/api/v1/stats", nil)
			var je struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(r.body, &je); err != nil || je.Status != r.code || je.Error == "" {
				t.Errorf("error body not JSON {error, status}: %d %s", r.code, r.body)
			}
			// Bad purge requests.
			for _, b := range []string{`{}`, `{"all":true,"relation":"t"}`, `not json`} {
				if r := e.request("POST", "/api/v1/cache/purge", []byte(b)); r.code != http.StatusBadRequest {
					t.Errorf("purge %s: %d, want 400", b, r.code)
				}
			}
		})
	}
}

// TestReadyzNotReady: /readyz is 503 when a configured database's server
// cannot be reached, while /healthz stays 200.
func TestReadyzNotReady(t *testing.T) {
	t.Parallel()
	e := startYAML(t, "", func(b string) string {
		// A second database entry pointing at a closed port.
		return strings.Replace(b, "databases:\n", "databases:\n  - {name: \"unreachable_db\", host: \"127.0.0.1\", port: 1, sslmode: disable}\n", 1)
	})
	if r := e.request("GET", "/readyz", nil); r.code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with an unreachable database: %d, want 503: %s", r.code, r.body)
	}
	if r := e.request("GET", "/healthz", nil); r.code != http.StatusOK {
		t.Errorf("/healthz: %d", r.code)
	}
}

// TestReload: POST /api/v1/reload runs the app's reload; a new rule and a
// new admin token take effect, and a refused config answers 500 and keeps
// the old one.
func TestReload(t *testing.T) {
	t.Parallel()
	pg, db := newDB(t, tableT)
	base := strings.Replace(sluiceBase(pg), baseAdmin, `admin: {listen: "127.0.0.1:0", token: "old-token"}`, 1)
	inst := startInst(t, base)
	e := &env{t: t, pg: pg, db: db, inst: inst, token: "old-token"}

	next := base
	inst.App.ReloadFunc = func() error {
		cfg, err := config.Parse([]byte(next), nil)
		if err != nil {
			return err
		}
		return inst.App.Reload(cfg)
	}
	// Without the hook wired by the binary the endpoint refuses.
	c := e.connect(pgx.QueryExecModeSimpleProtocol)
	if n := count(t, c, "SELECT * FROM t WHERE id <= 3"); n != 3 {
		t.Fatalf("before reload: %d rows", n)
	}

	next = strings.Replace(base, "old-token", "new-token", 1) + `
rules:
  - {name: block-t, match: {relations_any: [t], kind: [select]}, block: "reads of t are blocked"}
`
	if r := e.request("POST", "/api/v1/reload", nil); r.code != http.StatusOK {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	// The new token is in force, the old one is not.
	if r := e.requestAuth("GET", "/api/v1/stats", nil, "old-token"); r.code != http.StatusUnauthorized {
		t.Errorf("old token after reload: %d, want 401", r.code)
	}
	e.token = "new-token"
	if r := e.request("GET", "/api/v1/stats", nil); r.code != http.StatusOK {
		t.Errorf("new token after reload: %d, want 200", r.code)
	}
	// The new rule is in force.
	ctx := t.Context()
	if _, err := c.Exec(ctx, "SELECT * FROM t WHERE id <= 3"); err == nil || !strings.Contains(err.Error(), "reads of t are blocked") {
		t.Errorf("after reload the block rule did not apply: %v", err)
	}

	// A refused config: 500 with the reason, and the old config stays.
	next = strings.Replace(base, "old-token", "new-token", 1) + "\nrules:\n  - {name: broken, match: {pattern: '('}, block: x}\n"
	r := e.request("POST", "/api/v1/reload", nil)
	if r.code != http.StatusInternalServerError || !strings.Contains(string(r.body), "reload failed") {
		t.Errorf("invalid reload: %d %s, want 500 reload failed", r.code, r.body)
	}
	if _, err := c.Exec(ctx, "SELECT * FROM t WHERE id <= 3"); err == nil {
		t.Errorf("after a refused reload the block rule is gone")
	}

	// Without a ReloadFunc the endpoint says so.
	inst.App.ReloadFunc = nil
	if r := e.request("POST", "/api/v1/reload", nil); r.code != http.StatusInternalServerError {
		t.Errorf("reload without ReloadFunc: %d %s, want 500", r.code, r.body)
	}
}

// TestAdminNonLoopbackNeedsToken: the config is refused with the admin
// port on all interfaces (or any non-loopback address) and no token.
func TestAdminNonLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	pg := testenv.PG(t)
	base := sluiceBase(pg)
	for _, tc := range []struct {
		admin string
		ok    bool
	}{
		{`admin: {listen: "0.0.0.0:0"}`, false},
		{`admin: {listen: ":0"}`, false},
		{`admin: {listen: "0.0.0.0:0", token: "t0ken"}`, true},
		{`admin: {listen: "[::1]:0"}`, true},
		{`admin: {listen: "localhost:0"}`, true},
	} {
		_, err := config.Parse([]byte(strings.Replace(base, baseAdmin, tc.admin, 1)), nil)
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.admin, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "admin.token")) {
			t.Errorf("%s: %v, want an admin.token error", tc.admin, err)
		}
	}
}
