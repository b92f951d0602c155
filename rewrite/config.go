package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the rewrite part of config.yaml. Rules and max_rows sit at the
// root of the file (the lead embeds this struct inline); engine settings sit
// under rewrite:.
type Config struct {
	// Rules are tried in order; the first match wins unless it says
	// continue: true.
	Rules []RuleConfig `yaml:"rules"`
	// MaxRows is the row limit for top-level SELECTs no rule sets a limit
	// for; 0 turns it off (the default).
	MaxRows int          `yaml:"max_rows"`
	Engine  EngineConfig `yaml:"rewrite"`
}

// EngineConfig holds the analyzer's own settings.
type EngineConfig struct {
	// AnalysisCacheBytes bounds the analysis cache (estimated bytes of text
	// and analysis). 0 disables caching (every statement is parsed).
	AnalysisCacheBytes int64 `yaml:"analysis_cache_bytes"`
	// MaxStatementBytes: longer texts are not parsed at all (passed
	// through, Statement.ParseError says why), bounding parse cost and
	// memory for huge bulk INSERTs.
	MaxStatementBytes int `yaml:"max_statement_bytes"`
	// TruncationNotice turns the NoticeResponse on truncation on or off.
	TruncationNotice bool `yaml:"truncation_notice"`
	// NoticeTemplate is the notice text; {rule} and {max_rows} are
	// replaced.
	NoticeTemplate string `yaml:"truncation_notice_template"`
	// BlockSQLState is the SQLSTATE of a block without its own sqlstate
	// (42501 insufficient_privilege by default).
	BlockSQLState string `yaml:"block_sqlstate"`
}

// RuleConfig is one entry of rules:.
type RuleConfig struct {
	Name     string      `yaml:"name"`
	Match    MatchConfig `yaml:"match"`
	Continue bool        `yaml:"continue"`

	// MaxRows limits a top-level SELECT; 0 means "no limit" for matched
	// statements (overrides the global max_rows); absent means not set.
	MaxRows     *int           `yaml:"max_rows"`
	Hint        string         `yaml:"hint"`
	Replace     *ReplaceConfig `yaml:"replace"`
	ReplaceWith string         `yaml:"replace_with"`
	Block       string         `yaml:"block"`
	SQLState    string         `yaml:"sqlstate"`
	Cache       *CacheAction   `yaml:"cache"`
	Route       string         `yaml:"route"`
	Log         bool           `yaml:"log"`
}

// MatchConfig selects statements; every key given must match (AND), a list
// matches when any entry does (OR). An empty match matches everything.
type MatchConfig struct {
	// Fingerprint is pg_query's fingerprint in hex (as the monitor shows it).
	Fingerprint string `yaml:"fingerprint"`
	// Pattern is a Go regexp (RE2) searched in the normalized text.
	Pattern      string   `yaml:"pattern"`
	RelationsAny []string `yaml:"relations_any"`
	RelationsAll []string `yaml:"relations_all"`
	Kind         []string `yaml:"kind"`
	// Database, User and ApplicationName entries are exact names, or a
	// regexp when they start with "/" (as in pg_hba.conf since Postgres 16).
	Database        []string `yaml:"database"`
	User            []string `yaml:"user"`
	ApplicationName []string `yaml:"application_name"`
	// ClientAddr entries are CIDR prefixes or single addresses.
	ClientAddr []string `yaml:"client_addr"`
}

// ReplaceConfig rewrites the normalized text: Pattern is a regexp on it,
// With the replacement where ${1} / ${name} are capture groups and $1, $2
// are the statement's parameters and constants.
type ReplaceConfig struct {
	Pattern string `yaml:"pattern"`
	With    string `yaml:"with"`
}

// CacheAction is `cache: off` or `cache: {ttl: 30s}`.
type CacheAction struct {
	Off bool
	TTL time.Duration
}

// UnmarshalYAML accepts the scalar off (or false) and a mapping with ttl.
func (c *CacheAction) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "off", "false", "no":
			c.Off = true
			return nil
		}
		return fmt.Errorf("line %d: cache: want off or {ttl: 30s}, got %q", n.Line, n.Value)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: cache: want off or {ttl: 30s}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "ttl":
			var d time.Duration
			if err := v.Decode(&d); err != nil {
				return fmt.Errorf("line %d: cache.ttl: %v", v.Line, err)
			}
			c.TTL = d
		case "off":
			if err := v.Decode(&c.Off); err != nil {
				return fmt.Errorf("line %d: cache.off: %v", v.Line, err)
			}
		default:
			return fmt.Errorf("line %d: cache: unknown key %q", k.Line, k.Value)
		}
	}
	return nil
}

// DefaultNoticeTemplate is the truncation notice unless configured.
const DefaultNoticeTemplate = `sluice: result limited to {max_rows} rows by rule "{rule}"`

// DefaultConfig has no rules and no global limit: Sluice changes nothing
// until told to.
func DefaultConfig() Config {
	return Config{Engine: EngineConfig{
		AnalysisCacheBytes: 64 << 20,
		MaxStatementBytes:  1 << 20,
		TruncationNotice:   true,
		NoticeTemplate:     DefaultNoticeTemplate,
		BlockSQLState:      "42501",
	}}
}

// Validate reports every problem, each prefixed by its YAML key path and,
// for rules, the rule's name, so an operator can find it.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxRows < 0 {
		errs = append(errs, errors.New("max_rows: must be >= 0"))
	}
	if c.Engine.AnalysisCacheBytes < 0 {
		errs = append(errs, errors.New("rewrite.analysis_cache_bytes: must be >= 0"))
	}
	if c.Engine.MaxStatementBytes <= 0 {
		errs = append(errs, errors.New("rewrite.max_statement_bytes: must be > 0"))
	}
	if !validSQLState(c.Engine.BlockSQLState) {
		errs = append(errs, fmt.Errorf("rewrite.block_sqlstate: %q is not a 5-character SQLSTATE", c.Engine.BlockSQLState))
	}
	if c.Engine.TruncationNotice && strings.TrimSpace(c.Engine.NoticeTemplate) == "" {
		errs = append(errs, errors.New("rewrite.truncation_notice_template: must not be empty when truncation_notice is on"))
	}
	seen := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Name != "" {
			if j, dup := seen[r.Name]; dup {
				errs = append(errs, fmt.Errorf("rules[%d].name (rule %q): duplicate of rules[%d]", i, r.Name, j))
			}
			seen[r.Name] = i
		}
		if _, err := compileRule(i, r, c.Engine); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validSQLState: five digits or upper-case letters (Postgres docs,
// Appendix A "PostgreSQL Error Codes").
func validSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < 5; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
