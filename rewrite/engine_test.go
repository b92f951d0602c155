package rewrite_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sluice-proxy/sluice/rewrite"
)

func engine(t *testing.T, src string) *rewrite.Engine {
	t.Helper()
	cfg, err := decode(t, src)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	e, err := rewrite.NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

var app = rewrite.Session{Database: "shop", User: "app", ApplicationName: "web", ClientAddr: netip.MustParseAddr("10.1.2.3")}

func TestEngineRules(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		sql     string
		session *rewrite.Session // app when nil
		// want* are checked when non-zero; wantSQL "=" means unchanged.
		wantSQL     string
		wantMaxRows int
		wantRule    string
		wantBlock   string // SQLSTATE
		wantRules   []string
		wantNotice  string
		wantRoute   string
		wantLog     bool
		wantCache   *rewrite.CacheDirective
	}{
		{name: "no rules no change", config: "{}", sql: "SELECT * FROM orders", wantSQL: "="},
		{name: "global max_rows", config: "max_rows: 50", sql: "SELECT * FROM orders", wantSQL: "SELECT * FROM orders LIMIT 50", wantMaxRows: 50, wantRule: "max_rows",
			wantNotice: `sluice: result limited to 50 rows by rule "max_rows"`},
		{name: "rule limit by relation", config: "max_rows: 50\nrules:\n  - {name: small, match: {relations_any: [orders]}, max_rows: 5}",
			sql: "SELECT * FROM orders o JOIN lineitem l ON true", wantSQL: "SELECT * FROM orders o JOIN lineitem l ON true LIMIT 5", wantMaxRows: 5, wantRule: "small", wantRules: []string{"small"}},
		{name: "rule max_rows 0 lifts the global limit", config: "max_rows: 50\nrules:\n  - {name: reports, match: {user: [report]}, max_rows: 0}",
			sql: "SELECT * FROM orders", session: &rewrite.Session{User: "report"}, wantSQL: "=", wantRules: []string{"reports"}},
		{name: "relation not matched: global applies", config: "max_rows: 50\nrules:\n  - {name: small, match: {relations_any: [orders]}, max_rows: 5}",
			sql: "SELECT * FROM customer", wantSQL: "SELECT * FROM customer LIMIT 50", wantMaxRows: 50, wantRule: "max_rows"},
		{name: "schema-qualified rule matches unqualified and same schema", config: "rules:\n  - {name: q, match: {relations_any: [public.orders]}, max_rows: 5}",
			sql: "SELECT * FROM public.orders", wantSQL: "SELECT * FROM public.orders LIMIT 5"},
		{name: "schema-qualified rule skips other schema", config: "rules:\n  - {name: q, match: {relations_any: [public.orders]}, max_rows: 5}",
			sql: "SELECT * FROM archive.orders", wantSQL: "="},
		{name: "relations_all needs every relation", config: "rules:\n  - {name: both, match: {relations_all: [orders, lineitem]}, max_rows: 5}",
			sql: "SELECT * FROM orders", wantSQL: "="},
		{name: "relations through a CTE", config: "rules:\n  - {name: both, match: {relations_all: [orders, lineitem]}, max_rows: 5}",
			sql: "WITH x AS (SELECT * FROM lineitem) SELECT * FROM orders, x", wantSQL: "WITH x AS (SELECT * FROM lineitem) SELECT * FROM orders, x LIMIT 5"},
		{name: "first match wins", config: "rules:\n  - {name: a, match: {kind: [select]}, max_rows: 7}\n  - {name: b, match: {kind: [select]}, hint: SeqScan(t)}",
			sql: "SELECT * FROM t", wantSQL: "SELECT * FROM t LIMIT 7", wantRules: []string{"a"}},
		{name: "continue applies later rules", config: "rules:\n  - {name: a, match: {kind: [select]}, max_rows: 7, continue: true}\n  - {name: b, match: {kind: [select]}, hint: SeqScan(t), max_rows: 3}",
			sql: "SELECT * FROM t", wantSQL: "/*+ SeqScan(t) */ SELECT * FROM t LIMIT 7", wantRule: "a", wantRules: []string{"a", "b"}},
		{name: "kind does not match", config: "rules:\n  - {name: a, match: {kind: [update]}, block: no}", sql: "SELECT 1", wantSQL: "="},
		{name: "pattern on normalized text", config: "rules:\n  - {name: p, match: {pattern: 'WHERE status = \\$1'}, hint: IndexScan(orders)}",
			sql: "SELECT * FROM orders WHERE status = 'open'", wantSQL: "/*+ IndexScan(orders) */ SELECT * FROM orders WHERE status = 'open'"},
		{name: "database exact", config: "rules:\n  - {name: d, match: {database: [shop]}, route: replica}", sql: "SELECT 1", wantSQL: "=", wantRoute: "replica"},
		{name: "database other", config: "rules:\n  - {name: d, match: {database: [crm]}, route: replica}", sql: "SELECT 1", wantSQL: "=", wantRoute: ""},
		{name: "user regex", config: "rules:\n  - {name: u, match: {user: ['/^ap+$']}, log: true}", sql: "SELECT 1", wantLog: true, wantRules: []string{"u"}},
		{name: "application_name", config: "rules:\n  - {name: a, match: {application_name: [web]}, cache: off}", sql: "SELECT 1",
			wantCache: &rewrite.CacheDirective{Set: true, Off: true}},
		{name: "client_addr prefix", config: "rules:\n  - {name: c, match: {client_addr: [10.0.0.0/8]}, block: internal only}", sql: "SELECT 1", wantBlock: "42501", wantSQL: "="},
		{name: "client_addr other", config: "rules:\n  - {name: c, match: {client_addr: [192.168.0.0/16, '::1']}, block: x}", sql: "SELECT 1", wantSQL: "="},
		{name: "client_addr unix socket never matches", config: "rules:\n  - {name: c, match: {client_addr: [0.0.0.0/0]}, block: x}", sql: "SELECT 1",
			session: &rewrite.Session{User: "app"}, wantSQL: "="},
		{name: "client_addr v4-mapped v6", config: "rules:\n  - {name: c, match: {client_addr: [10.0.0.0/8]}, block: x}", sql: "SELECT 1",
			session: &rewrite.Session{ClientAddr: netip.MustParseAddr("::ffff:10.9.9.9")}, wantBlock: "42501"},
		{name: "block with sqlstate", config: "rules:\n  - {name: nodel, match: {kind: [delete]}, block: no deletes, sqlstate: P0001}",
			sql: "DELETE FROM users", wantBlock: "P0001", wantSQL: "="},
		{name: "block in multi-statement blocks all", config: "rules:\n  - {name: nodel, match: {kind: [delete]}, block: no deletes}",
			sql: "SELECT 1; DELETE FROM users", wantBlock: "42501", wantSQL: "="},
		{name: "hint merges into the client's hint comment", config: "rules:\n  - {name: h, match: {relations_any: [t]}, hint: SeqScan(t)}",
			sql: "/*+ NestLoop(t u) */ SELECT * FROM t JOIN u USING (id)", wantSQL: "/*+ NestLoop(t u) SeqScan(t) */ SELECT * FROM t JOIN u USING (id)"},
		{name: "hint goes before a plain leading comment", config: "rules:\n  - {name: h, match: {relations_any: [t]}, hint: SeqScan(t)}",
			sql: "/* app=web */ SELECT * FROM t", wantSQL: "/*+ SeqScan(t) */ /* app=web */ SELECT * FROM t"},
		{name: "hint and limit together", config: "rules:\n  - {name: h, match: {relations_any: [t]}, hint: 'IndexScan(t t_idx)', max_rows: 3}",
			sql: "SELECT * FROM t LIMIT $1", wantSQL: "/*+ IndexScan(t t_idx) */ SELECT * FROM t LIMIT LEAST($1, 3::bigint)", wantMaxRows: 3},
		{name: "replace keeps constants and params", config: "rules:\n  - {name: r, match: {relations_any: [old_t]}, replace: {pattern: 'FROM old_t WHERE a = (\\$\\d+)', with: 'FROM new_t WHERE b = ${1}'}}",
			sql: "SELECT x FROM old_t WHERE a = 5 AND c = $1", wantSQL: "SELECT x FROM new_t WHERE b = 5 AND c = $1"},
		{name: "replace that drops a client parameter is refused", config: "rules:\n  - {name: r, match: {relations_any: [old_t]}, replace: {pattern: ' AND c = \\$1', with: ''}}",
			sql: "SELECT x FROM old_t WHERE a = 5 AND c = $1", wantSQL: "=", wantRules: []string{"r"}},
		{name: "replace that does not parse is refused", config: "rules:\n  - {name: r, match: {relations_any: [old_t]}, replace: {pattern: 'SELECT', with: 'SELEC'}}",
			sql: "SELECT x FROM old_t", wantSQL: "="},
		{name: "replace result gets the limit", config: "max_rows: 4\nrules:\n  - {name: r, match: {relations_any: [old_t]}, replace: {pattern: old_t, with: new_t}, continue: true}",
			sql: "SELECT * FROM old_t LIMIT 100", wantSQL: "SELECT * FROM new_t LIMIT 4", wantMaxRows: 4},
		{name: "replace_with keeps parameters", config: "rules:\n  - {name: w, match: {relations_any: [slow_view]}, replace_with: 'SELECT * FROM fast_table WHERE id = $1'}",
			sql: "SELECT * FROM slow_view WHERE id = $1", wantSQL: "SELECT * FROM fast_table WHERE id = $1"},
		{name: "replace_with missing a parameter is refused", config: "rules:\n  - {name: w, match: {relations_any: [slow_view]}, replace_with: 'SELECT * FROM fast_table'}",
			sql: "SELECT * FROM slow_view WHERE id = $1", wantSQL: "="},
		{name: "replace in one statement of several", config: "rules:\n  - {name: r, match: {relations_any: [old_t]}, replace: {pattern: old_t, with: new_t}}",
			sql: "SELECT 1; SELECT * FROM old_t WHERE k = 'x'; SELECT 3", wantSQL: "SELECT 1; SELECT * FROM new_t WHERE k = 'x'; SELECT 3"},
		{name: "cache ttl from rule and comment", config: "rules:\n  - {name: c, match: {kind: [select]}, cache: {ttl: 30s}}",
			sql: "SELECT 1 /* sluice:cache ttl=5s */", wantCache: &rewrite.CacheDirective{Set: true, TTL: 30 * time.Second}},
		{name: "nocache comment wins over rule ttl", config: "rules:\n  - {name: c, match: {kind: [select]}, cache: {ttl: 30s}}",
			sql: "SELECT 1 /* sluice:nocache */", wantCache: &rewrite.CacheDirective{Set: true, Off: true, TTL: 30 * time.Second}},
		{name: "cache comment without rules", config: "{}", sql: "/* sluice:cache ttl=60s */ SELECT 1", wantCache: &rewrite.CacheDirective{Set: true, TTL: time.Minute}},
		{name: "parse error passes through", config: "max_rows: 5\nrules:\n  - {name: any, match: {kind: [select]}, block: x}", sql: "SELEC 1", wantSQL: "="},
		{name: "parse error meets session-only block", config: "rules:\n  - {name: banned, match: {user: [app]}, block: banned}", sql: "SELEC 1", wantBlock: "42501"},
		{name: "fingerprint ignores constants", config: "rules:\n  - {name: fp, match: {fingerprint: FP}, max_rows: 2}",
			sql: "SELECT * FROM orders WHERE id = 42", wantSQL: "SELECT * FROM orders WHERE id = 42 LIMIT 2"},
		{name: "truncation notice template", config: "rewrite:\n  truncation_notice_template: 'capped at {max_rows} ({rule})'\nrules:\n  - {name: cap, max_rows: 9}",
			sql: "SELECT * FROM t", wantNotice: "capped at 9 (cap)", wantMaxRows: 9},
		{name: "truncation notice off", config: "rewrite:\n  truncation_notice: false\nrules:\n  - {name: cap, max_rows: 9}",
			sql: "SELECT * FROM t", wantNotice: "", wantMaxRows: 9},
	}
	fp := rewrite.DefaultConfig()
	fpe, _ := rewrite.NewEngine(fp)
	fingerprint := fpe.Analyze("SELECT * FROM orders WHERE id = 1")[0].Fingerprint
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := strings.ReplaceAll(tt.config, "fingerprint: FP", "fingerprint: '"+hex(fingerprint)+"'")
			e := engine(t, cfg)
			s := app
			if tt.session != nil {
				s = *tt.session
			}
			d := e.Process(tt.sql, s)
			want := tt.wantSQL
			if want == "=" {
				want = tt.sql
			}
			if want != "" && d.SQL != want {
				t.Errorf("SQL = %q, want %q", d.SQL, want)
			}
			if d.Rewritten != (d.SQL != tt.sql) {
				t.Errorf("Rewritten = %v but SQL changed = %v", d.Rewritten, d.SQL != tt.sql)
			}
			if tt.wantMaxRows != 0 && d.MaxRows != tt.wantMaxRows {
				t.Errorf("MaxRows = %d, want %d", d.MaxRows, tt.wantMaxRows)
			}
			if tt.wantRule != "" && d.LimitRule != tt.wantRule {
				t.Errorf("LimitRule = %q, want %q", d.LimitRule, tt.wantRule)
			}
			if (d.Block != nil) != (tt.wantBlock != "") || (d.Block != nil && d.Block.Code != tt.wantBlock) {
				t.Errorf("Block = %+v, want code %q", d.Block, tt.wantBlock)
			}
			if tt.wantRules != nil && !slices.Equal(d.Rules, tt.wantRules) {
				t.Errorf("Rules = %v, want %v", d.Rules, tt.wantRules)
			}
			if (tt.wantNotice != "" || strings.Contains(tt.name, "notice")) && d.Notice != tt.wantNotice {
				t.Errorf("Notice = %q, want %q", d.Notice, tt.wantNotice)
			}
			if d.Route != tt.wantRoute {
				t.Errorf("Route = %q, want %q", d.Route, tt.wantRoute)
			}
			if d.Log != tt.wantLog {
				t.Errorf("Log = %v, want %v", d.Log, tt.wantLog)
			}
			if tt.wantCache != nil && d.Cache != *tt.wantCache {
				t.Errorf("Cache = %+v, want %+v", d.Cache, *tt.wantCache)
			}
		})
	}
}

func hex(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b)
}

// TestEngineRepeatIsShared: a repeat in the same situation returns the very
// same Decision (no parse, no allocation), and a session that matches other
// rules gets its own.
func TestEngineRepeatIsShared(t *testing.T) {
	e := engine(t, "max_rows: 10\nrules:\n  - {name: bob, match: {user: [bob]}, max_rows: 2}")
	sql := "SELECT * FROM orders"
	a := e.Process(sql, app)
	b := e.Process(sql, app)
	if a != b {
		t.Error("repeat returned a different Decision")
	}
	c := e.Process(sql, rewrite.Session{User: "bob"})
	if c.MaxRows != 2 || a.MaxRows != 10 {
		t.Errorf("MaxRows app=%d bob=%d, want 10 and 2", a.MaxRows, c.MaxRows)
	}
	if d := e.Process(sql, app); d.MaxRows != 10 {
		t.Errorf("after bob, app MaxRows = %d, want 10", d.MaxRows)
	}
	if &a.Statements[0] == nil || a.Statements[0] != c.Statements[0] {
		t.Error("analysis not shared between decisions")
	}
}

// TestEngineReload: a reload applies the new rules to cached texts and keeps
// the analysis cache.
func TestEngineReload(t *testing.T) {
	e1 := engine(t, "max_rows: 10")
	sql := "SELECT * FROM reload_t"
	if d := e1.Process(sql, app); d.MaxRows != 10 {
		t.Fatalf("MaxRows = %d", d.MaxRows)
	}
	cfg, _ := decode(t, "rules:\n  - {name: blk, match: {relations_any: [reload_t]}, block: gone}")
	e2, err := e1.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	misses := metricMisses()
	d := e2.Process(sql, app)
	if d.Block == nil || d.Block.Message != "gone" {
		t.Errorf("after reload Block = %+v", d.Block)
	}
	if got := metricMisses(); got != misses {
		t.Errorf("reload re-parsed the text: misses %v -> %v", misses, got)
	}
	bad, _ := decode(t, "rules:\n  - {name: bad, match: {pattern: '('}, log: true}")
	if _, err := e2.Reload(bad); err == nil || !strings.Contains(err.Error(), `rule "bad"`) {
		t.Errorf("invalid reload error = %v", err)
	}
	if d := e1.Process(sql, app); d.MaxRows != 10 || d.Block != nil {
		t.Error("the old engine changed")
	}
}

func TestEngineLargeTextNotAnalyzed(t *testing.T) {
	e := engine(t, "max_rows: 5\nrewrite:\n  max_statement_bytes: 64")
	sql := "SELECT * FROM t WHERE x IN (" + strings.Repeat("1,", 100) + "1)"
	d := e.Process(sql, app)
	if d.SQL != sql || len(d.Statements) != 1 || !strings.Contains(d.Statements[0].ParseError, "max_statement_bytes") {
		t.Errorf("large text: SQL changed=%v statements=%+v", d.SQL != sql, d.Statements)
	}
}

func TestEngineMetrics(t *testing.T) {
	e := engine(t, "rules:\n  - {name: m-limit, match: {relations_any: [metric_t], kind: [select]}, max_rows: 3}\n  - {name: m-block, match: {kind: [delete]}, block: no}")
	rw := rewriteCounter("m-limit")
	bl := blockCounter("m-block")
	pe := parseErrorCounter()
	for i := 0; i < 3; i++ {
		e.Process("SELECT * FROM metric_t", app)
		e.Process("DELETE FROM metric_t", app)
		e.Process("SELEC nope", app)
	}
	if got := rewriteCounter("m-limit") - rw; got != 3 {
		t.Errorf("rewrites{m-limit} += %v, want 3", got)
	}
	if got := blockCounter("m-block") - bl; got != 3 {
		t.Errorf("blocks{m-block} += %v, want 3", got)
	}
	if got := parseErrorCounter() - pe; got != 3 {
		t.Errorf("parse_errors += %v, want 3", got)
	}
}

var (
	metricMisses      = rewrite.MetricMisses
	rewriteCounter    = rewrite.RewriteCounter
	blockCounter      = rewrite.BlockCounter
	parseErrorCounter = rewrite.ParseErrorCounter
)

// TestDecisionLog: the proxy logs a decision with EmbedObject; the rule
// names, SQL and limit must be in the event.
func TestDecisionLog(t *testing.T) {
	e := engine(t, "rules:\n  - {name: logged, match: {kind: [select]}, log: true, max_rows: 3}")
	d := e.Process("SELECT * FROM t", app)
	if !d.Log {
		t.Fatal("Log not set")
	}
	var buf strings.Builder
	log := zerolog.New(&buf)
	log.Info().EmbedObject(d).Msg("rewrite rule")
	for _, want := range []string{`"rules":["logged"]`, `"sql":"SELECT * FROM t LIMIT 3"`, `"max_rows":3`, `"limit_rule":"logged"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
	if pe := e.Process("SELEC", app); !pe.ParseError() || d.ParseError() {
		t.Error("ParseError() wrong")
	}
}
