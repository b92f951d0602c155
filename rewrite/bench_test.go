package rewrite_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/sluice-proxy/sluice/rewrite"
)

// pgbenchSelect is pgbench -S's statement; pgbenchUpdate a tpcb-like one.
const (
	pgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
	pgbenchUpdate = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"
)

func benchEngine(b *testing.B, rules int, matching bool) *rewrite.Engine {
	b.Helper()
	cfg := rewrite.DefaultConfig()
	for i := 0; i < rules; i++ {
		n := 100
		rc := rewrite.RuleConfig{Name: "r" + strconv.Itoa(i), MaxRows: &n}
		switch i % 4 {
		case 0:
			rc.Match.RelationsAny = []string{fmt.Sprintf("table_%d", i)}
		case 1:
			rc.Match.Pattern = fmt.Sprintf(`FROM t%d WHERE`, i)
		case 2:
			rc.Match.User = []string{fmt.Sprintf("user_%d", i)}
		case 3:
			rc.Match.Kind = []string{"delete"}
			rc.Match.ApplicationName = []string{fmt.Sprintf("/^app_%d$", i)}
		}
		cfg.Rules = append(cfg.Rules, rc)
	}
	if matching {
		// The last rule matches pgbench's SELECT for this session.
		n := 100
		cfg.Rules[len(cfg.Rules)-1] = rewrite.RuleConfig{Name: "hit", MaxRows: &n, Hint: "IndexScan(pgbench_accounts)",
			Match: rewrite.MatchConfig{RelationsAny: []string{"pgbench_accounts"}, User: []string{"bench"}, Kind: []string{"select"}}}
	}
	e, err := rewrite.NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

var sink *rewrite.Decision

// BenchmarkProcessCacheHit: a repeated statement without rules, the cost
// every Query/Parse pays when rewriting is not configured.
func BenchmarkProcessCacheHit(b *testing.B) {
	e := benchEngine(b, 0, false)
	s := rewrite.Session{Database: "bench", User: "bench", ApplicationName: "pgbench"}
	e.Process(pgbenchSelect, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(pgbenchSelect, s)
	}
}

// BenchmarkProcessCacheHitParallel: the same from every core at once (the
// hit path takes no global lock).
func BenchmarkProcessCacheHitParallel(b *testing.B) {
	e := benchEngine(b, 0, false)
	s := rewrite.Session{Database: "bench", User: "bench"}
	e.Process(pgbenchSelect, s)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Process(pgbenchSelect, s)
		}
	})
}

// BenchmarkProcessColdParse: a new pgbench-size statement each time (parse,
// scan, fingerprint, normalize, limit plan, cache insert).
func BenchmarkProcessColdParse(b *testing.B) {
	cfg := rewrite.DefaultConfig()
	cfg.Engine.AnalysisCacheBytes = 16 << 20
	e, err := rewrite.NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := rewrite.Session{}
	texts := make([]string, b.N)
	for i := range texts {
		// A new identifier each time, so no shape is shared either.
		texts[i] = "SELECT abalance FROM pgbench_accounts_" + strconv.Itoa(i) + " WHERE aid = $1;"
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(texts[i], s)
	}
}

// BenchmarkRules100NoMatch: 100 rules of mixed kinds, none matching, on a
// cached statement.
func BenchmarkRules100NoMatch(b *testing.B) {
	e := benchEngine(b, 100, false)
	s := rewrite.Session{Database: "bench", User: "bench", ApplicationName: "pgbench"}
	e.Process(pgbenchSelect, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(pgbenchSelect, s)
	}
}

// BenchmarkRules100Match: 100 rules, the last one matching (limit + hint).
func BenchmarkRules100Match(b *testing.B) {
	e := benchEngine(b, 100, true)
	s := rewrite.Session{Database: "bench", User: "bench", ApplicationName: "pgbench"}
	if d := e.Process(pgbenchSelect, s); !d.Rewritten {
		b.Fatalf("rule did not match: %q", d.SQL)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(pgbenchSelect, s)
	}
}

// BenchmarkRules100MatchAlternatingSessions: two sessions that match
// different rules take turns, so the one-entry decision memo misses and the
// Decision is rebuilt (the worst case).
func BenchmarkRules100MatchAlternatingSessions(b *testing.B) {
	e := benchEngine(b, 100, true)
	s1 := rewrite.Session{User: "bench"}
	s2 := rewrite.Session{User: "user_2"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i&1 == 0 {
			sink = e.Process(pgbenchSelect, s1)
		} else {
			sink = e.Process(pgbenchSelect, s2)
		}
	}
}

// BenchmarkProcessShapeHit: a new text each time that differs from an
// analyzed one only in a literal (pgbench -S over the simple protocol):
// served from the shape cache without parsing.
func BenchmarkProcessShapeHit(b *testing.B) {
	cfg := rewrite.DefaultConfig()
	e, err := rewrite.NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, b.N+1)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i) + ";"
	}
	e.Process(texts[b.N], rewrite.Session{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(texts[i], rewrite.Session{})
	}
}

// BenchmarkProcessShapeHitRecent: the same through a client's Recent, as
// the proxy runs simple Queries: the shape is the remembered one.
func BenchmarkProcessShapeHitRecent(b *testing.B) {
	e, err := rewrite.NewEngine(rewrite.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, b.N+1)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i) + ";"
	}
	var rec rewrite.Recent
	e.ProcessRecent(texts[b.N], rewrite.Session{}, &rec)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.ProcessRecent(texts[i], rewrite.Session{}, &rec)
	}
}

// BenchmarkProcessShapeHit20Rules: the same with 20 non-matching rules (the
// issue's pgbench -S comparison).
func BenchmarkProcessShapeHit20Rules(b *testing.B) {
	e := benchEngine(b, 20, false)
	s := rewrite.Session{Database: "bench", User: "bench", ApplicationName: "pgbench"}
	texts := make([]string, b.N+1)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i) + ";"
	}
	e.Process(texts[b.N], s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink = e.Process(texts[i], s)
	}
}
