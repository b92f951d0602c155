package rewrite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/rewrite"
	"gopkg.in/yaml.v3"
)

// decode reads a YAML snippet the way the root config does: defaults first,
// unknown keys rejected.
func decode(t *testing.T, src string) (rewrite.Config, error) {
	t.Helper()
	cfg := rewrite.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	return cfg, err
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// decodeErr / validateErr are substrings; "" means no error.
		decodeErr   string
		validateErr []string
	}{
		{name: "defaults", yaml: "{}"},
		{name: "full rule", yaml: `
max_rows: 1000
rewrite:
  analysis_cache_bytes: 1048576
  block_sqlstate: "42501"
rules:
  - name: orders-limit
    match: {relations_any: [orders, public.lineitem], kind: [select], user: [app, /^report_.*$], client_addr: [10.0.0.0/8, "::1"]}
    max_rows: 100
    hint: "IndexScan(orders orders_status_idx) Leading((orders lineitem))"
    continue: true
  - name: no-delete
    match: {pattern: "^DELETE FROM users", database: [prod]}
    block: "deletes of users are not allowed"
    sqlstate: P0001
  - name: cache-me
    match: {fingerprint: "a0b1c2d3e4f50617"}
    cache: {ttl: 30s}
    route: replica
    log: true
  - name: nocache
    match: {application_name: [psql]}
    cache: off
  - name: swap
    match: {relations_all: [old_t]}
    replace: {pattern: "FROM old_t", with: "FROM new_t"}
  - name: fixed
    match: {fingerprint: "ffffffffffffffff"}
    replace_with: "SELECT 1 WHERE $1::int > 0"
`},
		{name: "unknown rule key", yaml: "rules:\n  - name: x\n    bogus: 1\n    log: true\n", decodeErr: "field bogus not found"},
		{name: "unknown match key", yaml: "rules:\n  - name: x\n    match: {tables: [a]}\n    log: true\n", decodeErr: "field tables not found"},
		{name: "bad regex", yaml: "rules:\n  - name: bad-re\n    match: {pattern: \"(\"}\n    log: true\n",
			validateErr: []string{`rules[0].match.pattern (rule "bad-re"): error parsing regexp`}},
		{name: "hint that is not a hint", yaml: "rules:\n  - name: h\n    hint: \"use the index please\"\n",
			validateErr: []string{`rules[0].hint (rule "h"): "use" is not a pg_hint_plan hint`}},
		{name: "hint with comment end", yaml: "rules:\n  - name: h\n    hint: \"SeqScan(t) */ DROP TABLE x; /*\"\n",
			validateErr: []string{`rules[0].hint (rule "h"): hint must not contain a comment delimiter`}},
		{name: "hint unbalanced", yaml: "rules:\n  - name: h\n    hint: \"SeqScan(t\"\n", validateErr: []string{"missing )"}},
		{name: "missing name", yaml: "rules:\n  - log: true\n", validateErr: []string{"rules[0].name: required"}},
		{name: "duplicate name", yaml: "rules:\n  - {name: a, log: true}\n  - {name: a, log: true}\n", validateErr: []string{`rules[1].name (rule "a"): duplicate of rules[0]`}},
		{name: "no action", yaml: "rules:\n  - name: idle\n    match: {kind: [select]}\n", validateErr: []string{`rule has no action`}},
		{name: "unknown kind", yaml: "rules:\n  - name: k\n    match: {kind: [selekt]}\n    log: true\n", validateErr: []string{`rules[0].match.kind[0] (rule "k"): unknown statement kind "selekt"`}},
		{name: "bad fingerprint", yaml: "rules:\n  - name: f\n    match: {fingerprint: xyz}\n    log: true\n", validateErr: []string{`match.fingerprint (rule "f")`}},
		{name: "bad cidr", yaml: "rules:\n  - name: c\n    match: {client_addr: [10.0.0.0/99]}\n    log: true\n", validateErr: []string{`match.client_addr[0] (rule "c")`}},
		{name: "bad relation", yaml: "rules:\n  - name: r\n    match: {relations_any: [a.b.c]}\n    log: true\n", validateErr: []string{`match.relations_any[0] (rule "r")`}},
		{name: "bad user regex", yaml: "rules:\n  - name: u\n    match: {user: [\"/(\"]}\n    log: true\n", validateErr: []string{`match.user[0] (rule "u")`}},
		{name: "bad route", yaml: "rules:\n  - name: r\n    route: standby\n", validateErr: []string{`rules[0].route (rule "r"): must be primary or replica`}},
		{name: "bad sqlstate", yaml: "rules:\n  - name: b\n    block: no\n    sqlstate: 4250\n", validateErr: []string{`rules[0].sqlstate (rule "b")`}},
		{name: "sqlstate without block", yaml: "rules:\n  - name: b\n    log: true\n    sqlstate: 42501\n", validateErr: []string{"only meaningful with block"}},
		{name: "negative max_rows", yaml: "max_rows: -1\nrules:\n  - name: m\n    max_rows: -5\n", validateErr: []string{"max_rows: must be >= 0", `rules[0].max_rows (rule "m")`}},
		{name: "replace and replace_with", yaml: "rules:\n  - name: r\n    replace: {pattern: a, with: b}\n    replace_with: SELECT 1\n", validateErr: []string{"not both"}},
		{name: "replace_with does not parse", yaml: "rules:\n  - name: r\n    replace_with: SELEC 1\n", validateErr: []string{`rules[0].replace_with (rule "r"): does not parse`}},
		{name: "replace_with two statements", yaml: "rules:\n  - name: r\n    replace_with: SELECT 1; SELECT 2\n", validateErr: []string{"exactly one statement"}},
		{name: "cache bad scalar", yaml: "rules:\n  - name: c\n    cache: sometimes\n", decodeErr: "want off or {ttl: 30s}"},
		{name: "cache unknown key", yaml: "rules:\n  - name: c\n    cache: {ttl: 1s, size: 3}\n", decodeErr: `unknown key "size"`},
		{name: "engine sqlstate", yaml: "rewrite:\n  block_sqlstate: nope\n", validateErr: []string{"rewrite.block_sqlstate"}},
		{name: "engine statement bytes", yaml: "rewrite:\n  max_statement_bytes: 0\n", validateErr: []string{"rewrite.max_statement_bytes: must be > 0"}},
		{name: "every problem reported", yaml: "rules:\n  - name: a\n    match: {pattern: \"[\"}\n    hint: Nope(x)\n  - name: b\n    route: x\n",
			validateErr: []string{`rules[0].match.pattern (rule "a")`, `rules[0].hint (rule "a")`, `rules[1].route (rule "b")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := decode(t, tt.yaml)
			if tt.decodeErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.decodeErr) {
					t.Fatalf("decode error = %v, want it to contain %q", err, tt.decodeErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			verr := cfg.Validate()
			_, eerr := rewrite.NewEngine(cfg)
			if len(tt.validateErr) == 0 {
				if verr != nil || eerr != nil {
					t.Fatalf("Validate = %v, NewEngine = %v; want no error", verr, eerr)
				}
				return
			}
			if verr == nil || eerr == nil {
				t.Fatalf("Validate = %v, NewEngine = %v; want errors containing %q", verr, eerr, tt.validateErr)
			}
			for _, want := range tt.validateErr {
				if !strings.Contains(verr.Error(), want) {
					t.Errorf("Validate error %q does not contain %q", verr, want)
				}
			}
		})
	}
}

func TestConfigCacheAction(t *testing.T) {
	cfg, err := decode(t, "rules:\n  - name: a\n    cache: {ttl: 45s}\n  - name: b\n    cache: off\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Rules[0].Cache; c == nil || c.Off || c.TTL != 45*time.Second {
		t.Errorf("rule a cache = %+v, want ttl 45s", c)
	}
	if c := cfg.Rules[1].Cache; c == nil || !c.Off {
		t.Errorf("rule b cache = %+v, want off", c)
	}
}
