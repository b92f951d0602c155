package rules_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// corpusDir is the rewrite package's statement corpus (rewrite/testdata).
const corpusDir = "../../rewrite/testdata"

// corpusCase is the part of a rewrite corpus entry this test reads.
type corpusCase struct {
	Name string `yaml:"name"`
	SQL  string `yaml:"sql"`
	Args []any  `yaml:"args"`
	Run  bool   `yaml:"run"`
	Want struct {
		Statements []struct {
			Reads  []string `yaml:"reads"`
			Writes []string `yaml:"writes"`
		} `yaml:"statements"`
	} `yaml:"want"`
}

// corpusRules: a global max_rows and per-relation rules, one of them only
// a hint that continues to the next rules.
const corpusRules = `
max_rows: 10
rules:
  - name: users-hint
    match: {relations_any: [users]}
    hint: "SeqScan(users)"
    continue: true
  - name: orders-cap
    match: {relations_any: [orders]}
    max_rows: 7
  - name: hr-unlimited
    match: {relations_any: [hr.employee]}
    max_rows: 0
`

// expectedLimit is the limit corpusRules give a statement touching rels,
// and the rule the truncation notice names.
func expectedLimit(rels []string) (int, string) {
	has := func(name string) bool {
		return slices.ContainsFunc(rels, func(r string) bool { return r == name || strings.HasSuffix(r, "."+name) })
	}
	switch {
	case has("orders"):
		return 7, "orders-cap"
	case slices.Contains(rels, "hr.employee"):
		return 0, ""
	}
	return 10, "max_rows"
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, "corpus", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", corpusDir, err)
	}
	var out []corpusCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []corpusCase
		if err := yaml.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, cases...)
	}
	return out
}

// TestCorpusThroughSluice runs every runnable SELECT of the rewrite corpus
// through Sluice (which rewrites it) and directly on PostgreSQL (the
// original), over the simple protocol (when it has no parameters) and the
// extended protocol. Where the limit does not bind the rows are the
// original's (in order when the query orders them); where it binds the
// client gets exactly the limit's rows, all from the original result, and a
// truncation notice naming the rule when rows were cut.
func TestCorpusThroughSluice(t *testing.T) {
	t.Parallel()
	schema, err := os.ReadFile(filepath.Join(corpusDir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, "transaction", string(schema), corpusRules)
	ctx := context.Background()
	ran, bound, noticed := 0, 0, 0
	for _, qm := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		s, n := e.sluice(t, withMode(qm))
		d, _ := e.direct(t, withMode(qm))
		for _, c := range loadCorpus(t) {
			if !c.Run || (qm == pgx.QueryExecModeSimpleProtocol && len(c.Args) > 0) {
				continue
			}
			var rels []string
			for _, st := range c.Want.Statements {
				rels = append(append(rels, st.Reads...), st.Writes...)
			}
			limit, rule := expectedLimit(rels)
			orig, err := rowsOf(ctx, d, c.SQL, c.Args...)
			if err != nil {
				t.Errorf("%s: %s directly: %v", qm, c.Name, err)
				continue
			}
			got, err := rowsOf(ctx, s, c.SQL, c.Args...)
			notes := n.take()
			if err != nil {
				t.Errorf("%s: %s through Sluice: %v", qm, c.Name, err)
				continue
			}
			ran++
			if limit == 0 || len(orig) < limit {
				ordered := strings.Contains(strings.ToUpper(c.SQL), "ORDER BY")
				if ordered && !slices.Equal(orig, got) || !slices.Equal(sorted(orig), sorted(got)) {
					t.Errorf("%s: %s: limit %d does not bind but rows differ\n%s\ndirectly:      %v\nthrough Sluice: %v", qm, c.Name, limit, c.SQL, orig, got)
				}
				if len(notes) > 0 {
					t.Errorf("%s: %s: notices %q but nothing was cut", qm, c.Name, notes)
				}
				continue
			}
			bound++
			withTies := strings.Contains(strings.ToUpper(c.SQL), "WITH TIES")
			if len(got) != limit && !(withTies && len(got) >= limit) {
				t.Errorf("%s: %s: limit %d binds (%d rows directly) but got %d rows\n%s", qm, c.Name, limit, len(orig), len(got), c.SQL)
			}
			pool := sorted(orig)
			for _, r := range got {
				i, ok := slices.BinarySearch(pool, r)
				if !ok {
					t.Errorf("%s: %s: row %q is not in the original result", qm, c.Name, r)
					break
				}
				pool = slices.Delete(pool, i, i+1)
			}
			if len(orig) > limit && !withTies {
				if !hasNotice(notes, rule) {
					t.Errorf("%s: %s: %d rows cut to %d but notices %q, want one naming %q", qm, c.Name, len(orig), limit, notes, rule)
				} else {
					noticed++
				}
			}
		}
	}
	if ran < 150 || bound < 30 || noticed < 30 {
		t.Errorf("ran %d corpus statements (want >= 150), %d with a binding limit (want >= 30), %d notices (want >= 30)", ran, bound, noticed)
	}
	t.Logf("ran %d corpus statements through Sluice, %d with a binding limit, %d truncation notices", ran, bound, noticed)
}
